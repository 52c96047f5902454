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

async function readText(res: Response, maxBytes: number, provider: string): Promise<string> {
  const bytes = await readCapped(res, maxBytes, () => failed(provider, `response larger than ${maxBytes} bytes`))
  return new TextDecoder().decode(bytes)
}

/** Fetches and parses a JWKS document (the key filtering happens in the key set). */
export async function fetchJwks(url: string, options: FetchJwksOptions): Promise<unknown> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), options.timeoutMs)
  let text: string
  try {
    let res: Response
    try {
      res = await options.fetch(url, {
        redirect: 'manual',
        signal: controller.signal,
        headers: { accept: 'application/jwk-set+json, application/json' },
      })
    } catch (err) {
      throw failed(options.provider, controller.signal.aborted ? `timed out after ${options.timeoutMs} ms` : 'network error', err)
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {})
      const why = res.status >= 300 && res.status < 400 || res.type === 'opaqueredirect'
        ? `HTTP ${res.status} redirect (redirects are not followed)`
        : `HTTP ${res.status}`
      throw failed(options.provider, why)
    }
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
    throw new PgAuthorizeError('ERR_JWKS_INVALID', `the JWKS of provider '${options.provider}' is not valid JSON`)
  }
}
