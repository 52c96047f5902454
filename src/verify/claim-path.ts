/**
 * The JSONPath subset a provider's `roleClaim` is written in (RFC 9535 syntax, a small part of it):
 * `$` followed by member names (`.role`, `["https://example.com/claims"]`, `['cognito:groups']`),
 * indexes (`[0]`) and wildcards (`[*]`). Enough for every provider in docs/providers.md
 * (`$.realm_access.roles[*]`, `$["cognito:groups"][*]`, `$.o.rol`), and nothing that costs more than a
 * walk down the payload: no filters, no recursive descent, no slices.
 *
 * Paths are parsed when a provider is configured ({@link parseClaimPath} throws on a bad one), so a token
 * can only ever select values, never make the gateway parse anything.
 *
 * @module
 */

/** One step of a parsed path. */
export type PathSegment = { kind: 'name'; name: string } | { kind: 'index'; index: number } | { kind: 'wildcard' }

const MAX_PATH = 256
const MAX_SEGMENTS = 16
const NAME = /^[A-Za-z_][A-Za-z0-9_-]*/

/**
 * Parses `path`; throws a plain Error saying what is wrong (the caller names the provider). Member
 * names with characters other than letters, digits, `_` and `-` (such as `:` or `/`) need the bracket
 * form: `$["cognito:groups"]`.
 *
 * @example
 * parseClaimPath('$.realm_access.roles[*]') // [{ kind: 'name', name: 'realm_access' }, { kind: 'name', name: 'roles' }, { kind: 'wildcard' }]
 */
export function parseClaimPath(path: string): PathSegment[] {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_PATH) {
    throw new Error(`a claim path is a string of 1 to ${MAX_PATH} characters`)
  }
  if (path[0] !== '$') throw new Error('a claim path starts with $ (for example $.role)')
  const out: PathSegment[] = []
  let i = 1
  while (i < path.length) {
    if (out.length >= MAX_SEGMENTS) throw new Error(`a claim path has at most ${MAX_SEGMENTS} steps`)
    const c = path[i]
    if (c === '.') {
      const m = NAME.exec(path.slice(i + 1))
      if (!m) throw new Error(`expected a member name after "." at position ${i + 1} (use ["..."] for other characters)`)
      out.push({ kind: 'name', name: m[0] })
      i += 1 + m[0].length
    } else if (c === '[') {
      const rest = path.slice(i + 1)
      if (rest.startsWith('*]')) {
        out.push({ kind: 'wildcard' })
        i += 3
        continue
      }
      const index = /^(0|[1-9][0-9]{0,5})\]/.exec(rest)
      if (index) {
        out.push({ kind: 'index', index: Number(index[1]) })
        i += 1 + index[0].length
        continue
      }
      const quote = rest[0]
      if (quote !== '"' && quote !== "'") throw new Error(`expected "name", 'name', a number or * inside [ ] at position ${i}`)
      let name = ''
      let j = 1
      for (; j < rest.length && rest[j] !== quote; j++) {
        if (rest[j] === '\\') {
          const next = rest[j + 1]
          if (next !== quote && next !== '\\') throw new Error(`only \\${quote} and \\\\ are escapes in a bracketed name`)
          name += next
          j++
        } else name += rest[j]
      }
      if (rest[j] !== quote || rest[j + 1] !== ']') throw new Error(`unterminated bracketed name at position ${i}`)
      out.push({ kind: 'name', name })
      i += 1 + j + 2
    } else {
      throw new Error(`unexpected "${c}" at position ${i} (steps are .name, ["name"], [0] or [*])`)
    }
  }
  return out
}

/**
 * The values `segments` select in `value`, in document order. A selected array is unwrapped once, so
 * `$.roles` and `$.roles[*]` select the same values. Only own members are read (`__proto__` is a name
 * like any other).
 */
export function selectClaim(value: unknown, segments: readonly PathSegment[]): unknown[] {
  let nodes: unknown[] = [value]
  for (const s of segments) {
    const next: unknown[] = []
    for (const n of nodes) {
      if (s.kind === 'name') {
        if (n !== null && typeof n === 'object' && !Array.isArray(n) && Object.hasOwn(n, s.name)) next.push((n as Record<string, unknown>)[s.name])
      } else if (s.kind === 'index') {
        if (Array.isArray(n) && s.index < n.length) next.push(n[s.index])
      } else if (Array.isArray(n)) next.push(...n)
      else if (n !== null && typeof n === 'object') next.push(...Object.values(n))
    }
    nodes = next
  }
  return nodes.flatMap((n) => (Array.isArray(n) ? n : [n]))
}
