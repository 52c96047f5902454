/**
 * The JWKS endpoint as a Web-standard `(Request) => Promise<Response>` handler, so the same code runs
 * on Node (see `serve.ts`), Cloudflare Workers, Deno and Bun. No `node:*` imports in this file.
 *
 * Serves `GET`/`HEAD /.well-known/jwks.json` with `Cache-Control`, a strong `ETag` (304 on
 * `If-None-Match`) and open CORS (a JWKS is public by design; browsers and edge verifiers fetch it
 * cross-origin). Every key goes through {@link toPublicJwk} on the way out, so a private member is
 * never served even if the key source hands over a private key.
 *
 * @example
 * // Cloudflare Worker
 * const handler = createJwksHandler({ jwks: { keys: [publicJwk] } })
 * export default { fetch: handler }
 *
 * @module
 */
import { toPublicJwk } from '../keys/public.js'

export const JWKS_PATH = '/.well-known/jwks.json'

type JwkSet = { keys: Array<Record<string, unknown>> }

export interface JwksHandlerOptions {
  /** A fixed key set. Give this or `keys`. */
  jwks?: JwkSet
  /** Called per request for the current key set (cache inside it; see `serve.ts`). */
  keys?: () => JwkSet | Promise<JwkSet>
  /** `Cache-Control: public, max-age=N`, in seconds. Default 300. */
  maxAge?: number
  /** Path served. Default `/.well-known/jwks.json`. */
  path?: string
}

const ALLOW = 'GET, HEAD, OPTIONS'

function corsHeaders(): Record<string, string> {
  return { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'ETag, Cache-Control' }
}

function errorResponse(status: number, code: string, message: string, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ code, message }) + '\n', {
    status,
    headers: { 'content-type': 'application/json', ...corsHeaders(), ...extra },
  })
}

async function strongEtag(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(body)))
  let hex = ''
  for (const b of digest.subarray(0, 16)) hex += b.toString(16).padStart(2, '0')
  return `"${hex}"`
}

/** RFC 9110 13.1.2: If-None-Match uses the weak comparison; `*` matches any current representation. */
function matchesEtag(ifNoneMatch: string, etag: string): boolean {
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag)
}

/** Creates the handler. */
export function createJwksHandler(options: JwksHandlerOptions): (req: Request) => Promise<Response> {
  const path = options.path ?? JWKS_PATH
  const maxAge = options.maxAge ?? 300
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError('maxAge must be a whole number of seconds >= 0')
  const source = options.keys ?? (() => options.jwks ?? { keys: [] })
  let last: { body: string; etag: string } | undefined

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url)
    if (url.pathname !== path) return errorResponse(404, 'ERR_NOT_FOUND', 'not found')
    if (req.method === 'OPTIONS') {
      return new Response(null, {
        status: 204,
        headers: {
          ...corsHeaders(),
          'access-control-allow-methods': ALLOW,
          'access-control-allow-headers': req.headers.get('access-control-request-headers') ?? '*',
          'access-control-max-age': '86400',
          allow: ALLOW,
        },
      })
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return errorResponse(405, 'ERR_METHOD_NOT_ALLOWED', 'method not allowed', { allow: ALLOW })
    }
    let set: JwkSet
    try {
      set = await source()
    } catch {
      // Never echo the failure: it may name files or hold key material.
      return errorResponse(500, 'ERR_INTERNAL', 'the key set is unavailable', { 'cache-control': 'no-store' })
    }
    const keys = (Array.isArray(set?.keys) ? set.keys : []).map((k) => toPublicJwk(k)).filter((k) => k !== undefined)
    const body = JSON.stringify({ keys })
    if (last?.body !== body) last = { body, etag: await strongEtag(body) }
    const headers: Record<string, string> = {
      ...corsHeaders(),
      'content-type': 'application/json',
      'cache-control': `public, max-age=${maxAge}`,
      etag: last.etag,
      'x-content-type-options': 'nosniff',
    }
    const inm = req.headers.get('if-none-match')
    if (inm !== null && matchesEtag(inm, last.etag)) return new Response(null, { status: 304, headers })
    headers['content-length'] = String(new TextEncoder().encode(body).byteLength)
    return new Response(req.method === 'HEAD' ? null : body, { status: 200, headers })
  }
}
