/**
 * The `/sql` handler's responses in Neon's shapes: JSON with CORS, errors as `{ message, code, ...fields }`
 * with every field Neon returns present (null when absent), our own errors mapped through the one table.
 *
 * @module
 */
import { ERROR_TABLE, type PgAuthorizeError } from '../../errors.js'
import type { SqlResponse } from './request.js'

export const JSON_HEADERS = { 'content-type': 'application/json', 'access-control-allow-origin': '*' } as const
export const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  allow: 'OPTIONS, POST',
  'access-control-allow-methods': 'OPTIONS, POST',
  'access-control-allow-headers':
    'Authorization, Content-Type, Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, ' +
    'Neon-Pool-Opt-In, Neon-Batch-Read-Only, Neon-Batch-Isolation-Level, Neon-Batch-Deferrable, X-Neon-Query-ID',
  'access-control-max-age': '86400',
} as const

/** The PG error fields Neon returns (all present, null when absent). */
const PG_ERROR_FIELDS = [
  'severity',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const

export function jsonResponse(status: number, body: string, extra?: Record<string, string>): SqlResponse {
  return { status, headers: extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS, body }
}

export function errorBody(message: string, code: string, fields?: Record<string, unknown>): string {
  const out: Record<string, unknown> = { message, code }
  for (const k of PG_ERROR_FIELDS) out[k] = fields?.[k] ?? null
  return JSON.stringify(out)
}

export function ownError(err: PgAuthorizeError): SqlResponse {
  const m = ERROR_TABLE[err.code]
  // 429 (past the identity's fair share): its share frees as soon as one of its own requests ends.
  const extra = m.status === 429 ? RETRY_AFTER : undefined
  return jsonResponse(m.status, errorBody(err.message, m.sqlstate, { detail: err.detail, hint: err.hint }), extra)
}

const RETRY_AFTER = { 'retry-after': '1' } as const

/** A request whose client went away (Neon's wording). */
export function cancelled(): SqlResponse {
  return jsonResponse(400, errorBody('Query cancelled, connection was terminated', '08P01'))
}
