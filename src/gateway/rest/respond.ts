/**
 * Turns the one result row of a Data API statement into PostgREST's response: status, `Content-Range`,
 * `Location`, content type. The body is Postgres's own text, passed through unchanged.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'
import type { MediaType } from './headers.js'

export interface RestResponse {
  status: number
  headers: Record<string, string>
  body: string | null
}

export const CORS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit, Preference-Applied',
}

export const CONTENT_TYPE: Readonly<Record<MediaType, string>> = {
  json: 'application/json; charset=utf-8',
  object: 'application/vnd.pgrst.object+json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  openapi: 'application/openapi+json; charset=utf-8',
}

/** The result row of a statement (text, as Postgres sent it). */
export interface ResultRow {
  total: string | null
  page: number
  body: string
  inserted: number | undefined
  location: string | null
  /** The body's size when Postgres kept it back for being past the cap. */
  tooLarge: number | undefined
}

export function resultRow(fields: (string | null)[] | undefined): ResultRow {
  const f = fields ?? []
  return {
    tooLarge: f[2] === null && f[5] !== null && f[5] !== undefined ? Number(f[5]) : undefined,
    total: f[0] ?? null,
    page: Number(f[1] ?? 0),
    body: f[2] ?? '',
    inserted: f[3] === null || f[3] === undefined ? undefined : Number(f[3]),
    location: f[4] ?? null,
  }
}

/** PGRST116 unless exactly one row. */
export function checkSingular(row: ResultRow): void {
  if (row.page !== 1) {
    throw new PgAuthorizeError('ERR_REST_SINGULAR', 'Cannot coerce the result to a single JSON object', { detail: `The result contains ${row.page} rows` })
  }
}

/** A read (GET/HEAD, RPC): 200, 206 when the page is less than the total, 416 past the end. */
export function readResponse(row: ResultRow, offset: number, media: MediaType, head: boolean, headers: Record<string, string>): RestResponse {
  const total = row.total === null ? undefined : Number(row.total)
  if (total !== undefined && offset > total) {
    throw new PgAuthorizeError('ERR_REST_RANGE', 'Requested range not satisfiable', { detail: `An offset of ${offset} was requested, but there are only ${total} rows.` })
  }
  const range = row.page === 0 ? '*' : `${offset}-${offset + row.page - 1}`
  const status = total !== undefined && row.page < total ? 206 : 200
  return {
    status,
    headers: { ...headers, 'content-type': CONTENT_TYPE[media], 'content-range': `${range}/${total ?? '*'}` },
    body: head ? null : row.body,
  }
}
