/**
 * Errors of the Data API in PostgREST's shape, `{code, message, details, hint}` (all four present).
 *
 * Our own failures are mapped through the one table of `src/errors.ts` (its `rest` column holds the PGRST
 * code and status); Postgres errors keep their SQLSTATE and get PostgREST's status for it (`Error.hs`
 * `mapSQLtoHTTP`). Anything else is a generic 500: only errors raised on purpose reach a client.
 *
 * @module
 */
import pg from 'pg'
import { ERROR_TABLE, isPgAuthorizeError } from '../../errors.js'

export interface RestErrorResponse {
  status: number
  body: string
  headers: Record<string, string>
}

function body(code: string, message: string, details: string | null | undefined, hint: string | null | undefined): string {
  return JSON.stringify({ code, message, details: details ?? null, hint: hint ?? null })
}

/** PostgREST's HTTP status for a SQLSTATE (specific codes before the families they belong to). */
export function statusOfSqlstate(code: string, message: string, anonymous: boolean): number {
  if (code === '42501') return anonymous ? 401 : 403
  if (code === '23503' || code === '23505') return 409
  if (code === '25006') return 405
  if (code === '42883') return message.startsWith('function xmlagg(') ? 406 : 404
  if (code === '42P01') return 404
  if (code === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500
  if (code === '22023') return /^role .* does not exist/.test(message) ? 401 : 400
  if (code === 'P0001') return 400
  if (code === '53400' || code === '42P17') return 500
  if (/^PT\d{3}$/.test(code)) return Number(code.slice(2))
  const family = code.slice(0, 2)
  if (family === '08' || family === '53' || code === '57P01') return 503
  if (['09', '25', '2D', '38', '39', '3B', '40', '54', '55', '57', '58', 'F0', 'HV', 'P0', 'XX'].includes(family)) return 500
  if (family === '0L' || family === '0P' || family === '28') return 403
  return 400
}

/** The response for a failure; `anonymous`: the request ran without an identity (42501 is then 401). */
export function restError(err: unknown, anonymous: boolean): RestErrorResponse {
  const headers: Record<string, string> = {}
  if (isPgAuthorizeError(err)) {
    const m = ERROR_TABLE[err.code]
    const status = m.rest?.status ?? m.status
    const code = m.rest?.code ?? m.sqlstate
    if (status === 401) {
      headers['www-authenticate'] = code === 'PGRST302' ? 'Bearer' : `Bearer error="invalid_token", error_description="${err.message.replace(/["\\]/g, '')}"`
    }
    if (m.status === 429 || status === 503) headers['retry-after'] = '1'
    return { status, body: body(code, err.message, err.detail, err.hint), headers }
  }
  if (err instanceof pg.DatabaseError && err.code) {
    const status = statusOfSqlstate(err.code, err.message, anonymous)
    if (status === 401) headers['www-authenticate'] = 'Bearer'
    return { status, body: body(err.code, err.message, err.detail, err.hint), headers }
  }
  return { status: 500, body: body('PGRSTX00', 'internal error', null, null), headers }
}
