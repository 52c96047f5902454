/**
 * What the `/sql` handler reads from a request and answers, independent of the runtime: a Web `Request`
 * gives it (`webRequest`), and so does a Node `IncomingMessage` directly (node.ts), which spares the hot
 * path the Web object allocations.
 *
 * @module
 */
import { readCapped } from '../../lib/body.js'
import { PgAuthorizeError } from '../../errors.js'

/** The subset of AbortSignal the handler uses, so a Node adapter need not build a real one per request. */
export type AbortLike = Pick<AbortSignal, 'aborted' | 'addEventListener' | 'removeEventListener'>

/** What the handler needs from one request. */
export interface SqlRequest {
  method: string
  /** Absolute URL or path, with any query. */
  url: string
  /** A header's value, or null; names are lowercase. */
  header(name: string): string | null
  /** The body, refused with ERR_REQUEST_TOO_LARGE past `max` bytes (declared or read). */
  body(max: number): Promise<Uint8Array>
  /** Aborts when the client goes away. */
  signal: AbortLike
}

/** What the handler answers: a status, headers and a body (JSON text, or none). */
export interface SqlResponse {
  status: number
  headers: Readonly<Record<string, string>>
  body: string | null
}

/** A Web `Request` as the handler reads it. */
export function webRequest(req: Request): SqlRequest {
  return {
    method: req.method,
    url: req.url,
    header: (name) => req.headers.get(name),
    body: (max) => readCapped(req, max, () => tooLarge(max)),
    signal: req.signal,
  }
}

/** The ERR_REQUEST_TOO_LARGE of a body past `max` bytes (both adapters raise it). */
export function tooLarge(max: number): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REQUEST_TOO_LARGE', `request is too large (max is ${max} bytes)`)
}

/** A Web-standard handler, as every runtime serves one. */
export type FetchHandler = (req: Request) => Promise<Response> | Response
