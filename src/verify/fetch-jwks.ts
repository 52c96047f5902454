/**
 * One JWKS fetch, hardened: no redirects (a 3xx is a failure, so a compromised or misconfigured
 * endpoint cannot point the verifier at keys elsewhere), a timeout, and a cap on the response size
 * that is enforced while reading, not only from `Content-Length`.
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'
import { readCapped } from '../lib/body.js'

export interface FetchJwksOptions {
  fetch: typeof fetch
  timeoutMs: number
  maxBytes: number
  /** Names the provider in messages. */
  provider: string
}

function failed(provider: string, why: string, cause?: unknown): PgAuthorizeError {
  return new PgAuthorizeError('ERR_JWKS_FETCH_FAILED', `fetching the JWKS of provider '${provider}' failed: ${why}`, { cause })
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

async function readText(res: Response, maxBytes: number, provider: string): Promise<string> {
  const bytes = await readCapped(res, maxBytes, () => failed(provider, `response larger than ${maxBytes} bytes`))
  return new TextDecoder().decode(bytes)
}

/** Fetches and parses a JWKS document (the key filtering happens in the key set). */
export async function fetchJwks(url: string, options: FetchJwksOptions): Promise<unknown> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), options.timeoutMs)
  let text: string
  let contentType: string | undefined
  try {
    let res: Response
    try {
      res = await options.fetch(url, {
        redirect: 'manual',
        signal: controller.signal,
        headers: { accept: 'application/jwk-set+json, application/json' },
      })
    } catch (err) {
      throw failed(options.provider, controller.signal.aborted ? `timed out after ${options.timeoutMs} ms` : networkReason(url, err), err)
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {})
      const why = res.status >= 300 && res.status < 400 || res.type === 'opaqueredirect'
        ? `HTTP ${res.status} redirect (redirects are not followed)`
        : `HTTP ${res.status}`
      throw failed(options.provider, why)
    }
    contentType = res.headers.get('content-type')?.split(';')[0]?.trim() || undefined
    try {
      text = await readText(res, options.maxBytes, options.provider)
    } catch (err) {
      if (err instanceof PgAuthorizeError) throw err
      throw failed(options.provider, controller.signal.aborted ? `timed out after ${options.timeoutMs} ms` : 'reading the response failed', err)
    }
  } finally {
    clearTimeout(timer)
  }
  try {
    return JSON.parse(text)
  } catch {
    // The content type often tells (an HTML login or error page); the body is never echoed.
    const type = contentType ? ` (content-type ${contentType.slice(0, 100)})` : ''
    throw new PgAuthorizeError('ERR_JWKS_INVALID', `the JWKS of provider '${options.provider}' is not valid JSON${type}`)
  }
}
