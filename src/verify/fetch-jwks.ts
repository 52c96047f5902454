/**
 * One fetch of a provider's JSON document (its JWKS, or its OIDC discovery document), hardened: no
 * redirects (a 3xx is a failure, so a compromised or misconfigured endpoint cannot point the verifier at
 * keys elsewhere), a timeout, and a cap on the response size that is enforced while reading, not only
 * from `Content-Length`. It returns what HTTP caching needs too: the response's freshness
 * (cache-headers.ts) and `ETag`, and it revalidates with `If-None-Match` (a 304 is "unchanged").
 *
 * @module
 */
import { PgAuthorizeError, type ErrorCode } from '../errors.js'
import { readCapped } from '../lib/body.js'
import { freshnessMs } from './cache-headers.js'

export interface FetchJwksOptions {
  fetch: typeof fetch
  timeoutMs: number
  maxBytes: number
  /** Names the provider in messages. */
  provider: string
}

export interface FetchDocumentOptions extends FetchJwksOptions {
  /** What is fetched, for messages and codes. Default `jwks`. */
  kind?: 'jwks' | 'discovery'
  /** The `ETag` of the copy held: sent as `If-None-Match`, and a 304 answers `{ notModified: true }`. */
  etag?: string
  /** Clock seam for `Expires` without `Date`, epoch ms. Default `Date.now`. */
  now?: () => number
}

/** A fetched document, or the server's word that the copy held is still current. */
export type FetchedDocument =
  | { notModified: false; body: unknown; etag: string | undefined; freshnessMs: number | undefined }
  | { notModified: true; etag: string | undefined; freshnessMs: number | undefined }

const WHAT = { jwks: 'the JWKS', discovery: 'the discovery document' } as const
const CODES: Record<'jwks' | 'discovery', { failed: ErrorCode; invalid: ErrorCode }> = {
  jwks: { failed: 'ERR_JWKS_FETCH_FAILED', invalid: 'ERR_JWKS_INVALID' },
  discovery: { failed: 'ERR_DISCOVERY_FAILED', invalid: 'ERR_DISCOVERY_INVALID' },
}

/** The first error in a cause chain that carries a system or TLS code (fetch wraps them, sometimes twice). */
function rootCause(err: unknown): { code?: string; message?: string } | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return { code, message: e.message }
    // Happy eyeballs: one error per address tried.
    e = e instanceof AggregateError && e.errors.length ? e.errors[0] : e.cause
  }
  return e instanceof Error ? { message: e.message } : undefined
}

/**
 * What went wrong, in words, for a fetch that rejected without an HTTP response. Built from the error
 * codes and the URL's host only: the OS's message is not echoed.
 */
export function networkReason(url: string, err: unknown): string {
  const u = new URL(url)
  const at = u.host
  const c = rootCause(err)
  const code = c?.code ?? ''
  if (code === 'ECONNREFUSED') return `connection refused by ${at}`
  if (code === 'ENOTFOUND') return `DNS lookup of ${u.hostname} failed (no such host)`
  if (code === 'EAI_AGAIN') return `DNS lookup of ${u.hostname} failed (temporary failure; is a resolver reachable?)`
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `the connection to ${at} was closed before a response`
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return `connecting to ${at} timed out`
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `${at} is unreachable (no route)`
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME/.test(code)) return `the TLS certificate of ${at} was not accepted (${code})`
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS handshake with ${at} failed (${code}; is it really https?)`
  // undici refuses the Fetch standard's "bad ports" (1, 22, 25, ...) before connecting.
  if (!code && c?.message === 'bad port') return `port ${u.port} is a port fetch refuses to connect to`
  return code ? `network error (${code})` : 'network error'
}

/** Fetches and parses a JWKS document (the key filtering happens in the key set). */
export async function fetchJwks(url: string, options: FetchJwksOptions): Promise<unknown> {
  const r = await fetchDocument(url, options)
  return r.notModified ? undefined : r.body
}

/**
 * Fetches and parses a JSON document; with `etag`, a 304 answers `{ notModified: true }`. Failures are
 * ERR_JWKS_FETCH_FAILED / ERR_JWKS_INVALID, or ERR_DISCOVERY_FAILED / ERR_DISCOVERY_INVALID for
 * `kind: 'discovery'`; messages name the provider and what went wrong, never the response body.
 */
export async function fetchDocument(url: string, options: FetchDocumentOptions): Promise<FetchedDocument> {
  const kind = options.kind ?? 'jwks'
  const what = `${WHAT[kind]} of provider '${options.provider}'`
  const failed = (why: string, cause?: unknown) =>
    new PgAuthorizeError(CODES[kind].failed, `fetching ${what} failed: ${why}`, { cause })
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), options.timeoutMs)
  let text: string
  let contentType: string | undefined
  let res: Response
  try {
    try {
      res = await options.fetch(url, {
        redirect: 'manual',
        signal: controller.signal,
        headers: {
          accept: kind === 'jwks' ? 'application/jwk-set+json, application/json' : 'application/json',
          ...(options.etag !== undefined ? { 'if-none-match': options.etag } : {}),
        },
      })
    } catch (err) {
      throw failed(controller.signal.aborted ? `timed out after ${options.timeoutMs} ms` : networkReason(url, err), err)
    }
    const now = (options.now ?? Date.now)()
    if (res.status === 304 && options.etag !== undefined) {
      await res.body?.cancel().catch(() => {})
      return { notModified: true, etag: res.headers.get('etag') ?? options.etag, freshnessMs: freshnessMs(res.headers, now) }
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {})
      const why = res.status >= 300 && res.status < 400 || res.type === 'opaqueredirect'
        ? `HTTP ${res.status} redirect (redirects are not followed)`
        : `HTTP ${res.status}`
      throw failed(why)
    }
    contentType = res.headers.get('content-type')?.split(';')[0]?.trim() || undefined
    try {
      const bytes = await readCapped(res, options.maxBytes, () => failed(`response larger than ${options.maxBytes} bytes`))
      text = new TextDecoder().decode(bytes)
    } catch (err) {
      if (err instanceof PgAuthorizeError) throw err
      throw failed(controller.signal.aborted ? `timed out after ${options.timeoutMs} ms` : 'reading the response failed', err)
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      // The content type often tells (an HTML login or error page); the body is never echoed.
      const type = contentType ? ` (content-type ${contentType.slice(0, 100)})` : ''
      throw new PgAuthorizeError(CODES[kind].invalid, `${what} is not valid JSON${type}`)
    }
    return { notModified: false, body, etag: res.headers.get('etag') ?? undefined, freshnessMs: freshnessMs(res.headers, now) }
  } finally {
    clearTimeout(timer)
  }
}
