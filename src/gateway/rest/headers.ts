/**
 * The Data API's request headers: `Prefer`, `Range`, `Accept`, `Accept-Profile` / `Content-Profile`.
 *
 * `Prefer` values are matched against fixed lists: an unknown one is ignored (PostgREST's lenient handling)
 * or refused with `handling=strict`; none ever reaches SQL.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'

export interface Preferences {
  return: 'minimal' | 'headers-only' | 'representation' | undefined
  count: 'exact' | 'planned' | 'estimated' | undefined
  resolution: 'merge-duplicates' | 'ignore-duplicates' | undefined
  missing: 'default' | 'null' | undefined
  tx: 'commit' | 'rollback' | undefined
  handling: 'lenient' | 'strict' | undefined
  maxAffected: number | undefined
}

const KNOWN: Record<string, readonly string[]> = {
  return: ['minimal', 'headers-only', 'representation'],
  count: ['exact', 'planned', 'estimated'],
  resolution: ['merge-duplicates', 'ignore-duplicates'],
  missing: ['default', 'null'],
  tx: ['commit', 'rollback'],
  handling: ['lenient', 'strict'],
}

/** Parses every `Prefer` header (comma-separated, the first of each kind wins). */
export function parsePrefer(header: string | null): Preferences {
  const p: Preferences = { return: undefined, count: undefined, resolution: undefined, missing: undefined, tx: undefined, handling: undefined, maxAffected: undefined }
  if (header === null) return p
  if (header.length > 4096) throw new PgAuthorizeError('ERR_REST_BODY', 'the Prefer header is too long')
  const invalid: string[] = []
  for (const raw of header.split(',')) {
    const item = raw.trim()
    if (item === '') continue
    const eq = item.indexOf('=')
    const key = eq < 0 ? item : item.slice(0, eq).trim()
    const value = eq < 0 ? '' : item.slice(eq + 1).trim()
    if (key === 'max-affected' && /^\d{1,9}$/.test(value)) {
      p.maxAffected ??= Number(value)
      continue
    }
    const allowed = Object.hasOwn(KNOWN, key) ? KNOWN[key]! : undefined
    if (!allowed || !allowed.includes(value)) {
      // `timezone=` and `params=` are not supported; like every unknown value, ignored unless strict.
      invalid.push(item.slice(0, 64))
      continue
    }
    const k = key as keyof Omit<Preferences, 'maxAffected'>
    if (p[k] === undefined) (p as unknown as Record<string, unknown>)[k] = value
  }
  if (p.handling === 'strict' && invalid.length > 0) {
    throw new PgAuthorizeError('ERR_REST_BODY', 'Invalid preferences given with handling=strict', { detail: `Invalid preferences: ${invalid.join(', ')}` })
  }
  return p
}

/** The `Preference-Applied` header PostgREST sends for the preferences it honoured. */
export function preferenceApplied(p: Preferences, method: string): string | undefined {
  const out: string[] = []
  if (p.resolution && method === 'POST') out.push(`resolution=${p.resolution}`)
  if (p.missing && (method === 'POST' || method === 'PATCH')) out.push(`missing=${p.missing}`)
  if (p.return && method !== 'GET' && method !== 'HEAD') out.push(`return=${p.return}`)
  if (p.count) out.push(`count=${p.count}`)
  if (p.tx) out.push(`tx=${p.tx}`)
  if (p.handling) out.push(`handling=${p.handling}`)
  return out.length ? out.join(', ') : undefined
}

/** `Range: 0-19` or `10-` (items); anything else is ignored, as PostgREST does. */
export function parseRange(header: string | null): { offset: number; limit: number | undefined } | undefined {
  if (header === null) return undefined
  const m = /^(?:items=)?(\d{1,15})-(\d{0,15})$/.exec(header.trim())
  if (!m) return undefined
  const lower = Number(m[1])
  if (m[2] === '') return { offset: lower, limit: undefined }
  const upper = Number(m[2])
  if (lower > upper) throw new PgAuthorizeError('ERR_REST_RANGE', 'Requested range not satisfiable', { detail: 'The lower boundary must be lower than or equal to the upper boundary in the Range header.' })
  return { offset: lower, limit: upper - lower + 1 }
}

export type MediaType = 'json' | 'object' | 'csv' | 'openapi'

/** The first producible type of `Accept` (q-values honoured); none or `*` means JSON. */
export function negotiate(accept: string | null, root: boolean): { type: MediaType; stripNulls: boolean } {
  if (accept === null || accept.trim() === '') return { type: root ? 'openapi' : 'json', stripNulls: false }
  const entries = accept.split(',').map((part, i) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    let q = 1
    let nulls = false
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim())
      if (k === 'q' && v !== undefined && Number.isFinite(Number(v))) q = Number(v)
      if (k === 'nulls' && v === 'stripped') nulls = true
    }
    return { type, q, nulls, i }
  }).filter((e) => e.q > 0).sort((a, b) => b.q - a.q || a.i - b.i)
  for (const e of entries) {
    switch (e.type) {
      case '*/*':
      case 'application/*':
        return { type: root ? 'openapi' : 'json', stripNulls: false }
      case 'application/json':
        return { type: root ? 'openapi' : 'json', stripNulls: false }
      case 'application/vnd.pgrst.array+json':
        return { type: 'json', stripNulls: e.nulls }
      case 'application/vnd.pgrst.object+json':
      case 'application/vnd.pgrst.object':
        return { type: 'object', stripNulls: e.nulls }
      case 'text/csv':
        if (!root) return { type: 'csv', stripNulls: false }
        break
      case 'application/openapi+json':
        if (root) return { type: 'openapi', stripNulls: false }
        break
    }
  }
  throw new PgAuthorizeError('ERR_REST_ACCEPT', `None of these media types are available: ${accept.slice(0, 200)}`)
}

/** The schema a request targets: its profile header, or the first exposed schema. */
export function pickSchema(header: string | null, exposed: readonly string[]): { schema: string; explicit: boolean } {
  if (header === null || header === '') return { schema: exposed[0]!, explicit: false }
  if (!exposed.includes(header)) {
    throw new PgAuthorizeError('ERR_REST_SCHEMA', `Invalid schema: ${header.slice(0, 63)}`, {
      hint: `Only the following schemas are exposed: ${exposed.join(', ')}`,
    })
  }
  return { schema: header, explicit: true }
}
