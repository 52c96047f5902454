/**
 * A reader for Postgres' stored expression trees (`pg_policy.polqual`, `pg_node_tree` text), enough to
 * walk function calls, sublinks and variables. Hand-written because no maintained npm package reads
 * this internal format (libpg-query parses SQL text, not stored trees) and the subset needed is small:
 * `{NODE :field value ...}` nodes, `( ... )` lists and atoms, with backslash escapes.
 *
 * @module
 */

export interface TreeNode {
  type: string
  fields: Record<string, TreeValue>
}
export type TreeValue = TreeNode | TreeValue[] | string

function tokenize(text: string): string[] {
  const tokens: string[] = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r') {
      i++
      continue
    }
    if (ch === '{' || ch === '}' || ch === '(' || ch === ')') {
      tokens.push(ch)
      i++
      continue
    }
    let tok = ''
    while (i < text.length && !' \n\t\r{}()'.includes(text[i]!)) {
      if (text[i] === '\\' && i + 1 < text.length) i++
      tok += text[i++]
    }
    tokens.push(tok)
  }
  return tokens
}

/** Parses the text form of a `pg_node_tree`. */
export function parseNodeTree(text: string): TreeValue {
  const tokens = tokenize(text)
  let pos = 0
  const value = (): TreeValue => {
    const tok = tokens[pos++]
    if (tok === '{') {
      const node: TreeNode = { type: tokens[pos++] ?? '', fields: {} }
      while (pos < tokens.length && tokens[pos] !== '}') {
        const key = tokens[pos++]!
        if (!key.startsWith(':')) continue
        // A field holds one value, except a Const's `:constvalue 4 [ 1 0 0 0 ]`: keep every atom up to the next field.
        const parts: TreeValue[] = []
        while (pos < tokens.length && tokens[pos] !== '}' && !tokens[pos]!.startsWith(':')) parts.push(value())
        node.fields[key.slice(1)] = parts.length === 1 ? parts[0]! : parts
      }
      pos++
      return node
    }
    if (tok === '(') {
      const list: TreeValue[] = []
      while (pos < tokens.length && tokens[pos] !== ')') list.push(value())
      pos++
      return list
    }
    return tok ?? ''
  }
  return value()
}

export function isNode(v: TreeValue | undefined, type?: string): v is TreeNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (type === undefined || v.type === type)
}

/** Every direct child value of a node or list. */
function children(v: TreeValue): TreeValue[] {
  if (Array.isArray(v)) return v
  if (isNode(v)) return Object.values(v.fields)
  return []
}

/**
 * True when some variable inside `query` refers to a query outside it (a correlated subquery): a Var
 * whose `varlevelsup` reaches past the nesting depth at which it sits.
 */
export function isCorrelated(query: TreeNode): boolean {
  const walk = (v: TreeValue, depth: number): boolean => {
    if (isNode(v, 'VAR') && Number(v.fields.varlevelsup) > depth) return true
    return children(v).some((c) => walk(c, isNode(c, 'QUERY') ? depth + 1 : depth))
  }
  return children(query).some((c) => walk(c, isNode(c, 'QUERY') ? 1 : 0))
}

/**
 * The calls to any of `funcOids` in an expression tree, each with whether it is evaluated once per
 * statement: inside a sublink whose subquery is not correlated (Postgres runs it as an InitPlan),
 * rather than once per row (directly in the expression, or in a correlated SubPlan).
 */
export function findCalls(tree: TreeValue, funcOids: ReadonlySet<string>): { funcOid: string; once: boolean }[] {
  const out: { funcOid: string; once: boolean }[] = []
  const walk = (v: TreeValue, once: boolean) => {
    if (isNode(v, 'FUNCEXPR') && funcOids.has(String(v.fields.funcid))) out.push({ funcOid: String(v.fields.funcid), once })
    if (isNode(v, 'SUBLINK') && isNode(v.fields.subselect, 'QUERY')) {
      const sub = v.fields.subselect
      for (const [k, c] of Object.entries(v.fields)) walk(c, k === 'subselect' ? once || !isCorrelated(sub) : once)
      return
    }
    for (const c of children(v)) walk(c, once)
  }
  walk(tree, false)
  return out
}

/**
 * Calls `visit` on every node, with the number of subqueries it sits in (a Var belongs to the policy's
 * own row when its `varlevelsup` equals that depth).
 */
export function walkTree(tree: TreeValue, visit: (node: TreeNode, depth: number) => void): void {
  const walk = (v: TreeValue, depth: number) => {
    if (isNode(v)) visit(v, depth)
    for (const c of children(v)) walk(c, isNode(c, 'QUERY') ? depth + 1 : depth)
  }
  walk(tree, 0)
}

/** True when some node under `tree` (itself included) satisfies `test`. */
export function someNode(tree: TreeValue, test: (node: TreeNode) => boolean): boolean {
  let found = false
  walkTree(tree, (n) => {
    if (!found && test(n)) found = true
  })
  return found
}

/** The list held by a field, `<>` (an empty list) as []. */
export function listField(node: TreeNode, field: string): TreeValue[] {
  const v = node.fields[field]
  return Array.isArray(v) ? v : []
}

/**
 * The text of a `text`/`varchar` Const, or undefined for any other node. Its `:constvalue` is the
 * datum's bytes: a varlena with a 4-byte header (a 1-byte one when the low bit is set), then UTF-8.
 */
export function constText(v: TreeValue | undefined): string | undefined {
  if (!isNode(v, 'CONST') || v.fields.constisnull === 'true' || !['25', '1043'].includes(String(v.fields.consttype))) return undefined
  const raw = v.fields.constvalue
  if (!Array.isArray(raw)) return undefined
  // Tokens: the length, '[', the bytes, ']'.
  const bytes = Uint8Array.from(raw.slice(raw.indexOf('[') + 1, raw.indexOf(']')).map((x) => Number(x)))
  const header = (bytes[0]! & 1) === 1 ? 1 : 4
  return new TextDecoder().decode(bytes.subarray(header))
}

/** A node with the casts around it removed (CoerceViaIO, RelabelType, and cast function calls). */
export function stripCasts(v: TreeValue | undefined): TreeValue | undefined {
  let cur = v
  for (;;) {
    if (isNode(cur, 'COERCEVIAIO') || isNode(cur, 'RELABELTYPE')) cur = cur.fields.arg
    // funcformat 1 and 2: an explicit or an implicit cast written as a function call.
    else if (isNode(cur, 'FUNCEXPR') && ['1', '2'].includes(String(cur.fields.funcformat)) && listField(cur, 'args').length === 1) cur = listField(cur, 'args')[0]
    else return cur
  }
}
