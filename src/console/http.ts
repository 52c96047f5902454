/**
 * The console's HTTP hygiene: security headers on every response, the cross-site request check, capped
 * body reading, and JSON responses with errors that never echo what was sent.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { PgAuthorizeError, isPgAuthorizeError, type ErrorCode } from '../errors.js'
import { csrfMatches, type AdminSession } from './session.js'
import { readCapped } from '../lib/body.js'
import { clientAddress } from '../lib/client-address.js'

/** The hash of an inline `<style>` block, for the CSP (the login page styles itself before any session). */
export function styleHash(css: string): string {
  return `'sha256-${createHash('sha256').update(css, 'utf8').digest('base64')}'`
}

/**
 * Headers every console response carries. The CSP allows no inline script at all: the page's code is
 * in separate modules under `/console/static/`.
 */
export function securityHeaders(extraStyle?: string): Record<string, string> {
  return {
    'content-security-policy': [
      "default-src 'none'",
      "script-src 'self'",
      `style-src 'self'${extraStyle ? ' ' + extraStyle : ''}`,
      "img-src 'self' data:",
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  })
}

/** The JSON error body: a stable code and a message that holds nothing the client sent. */
export function errorJson(err: unknown): Response {
  if (isPgAuthorizeError(err)) {
    return json(err.status, { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } })
  }
  return json(500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } })
}

export const fail = (code: ErrorCode, message: string) => new PgAuthorizeError(code, message)

/**
 * Why a state-changing request looks cross-site, or undefined when it does not. `Sec-Fetch-Site` is
 * set by the browser and cannot be forged by a page, so it decides when present. Without it, an
 * `Origin` must be ours; `Origin: null` is what browsers send under `Referrer-Policy: no-referrer`,
 * and is let through here because the per-session CSRF token (which no other page can read) is still
 * required.
 */
export function crossSiteReason(req: Request, ownOrigin: string = new URL(req.url).origin): string | undefined {
  const site = req.headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin') return `the request is ${site}`
  const origin = req.headers.get('origin')
  if (origin !== null && origin !== 'null' && origin !== ownOrigin) return 'the request comes from another origin'
  return undefined
}

/** Refuses a state-changing request unless it is same-origin and carries the session's CSRF token. */
export function checkCsrf(req: Request, session: AdminSession, formToken?: string, ownOrigin?: string): void {
  const why = crossSiteReason(req, ownOrigin)
  if (why) throw fail('ERR_FORBIDDEN', `cross-site request refused: ${why}`)
  if (!csrfMatches(session, req.headers.get('x-csrf-token') ?? formToken)) {
    throw fail('ERR_FORBIDDEN', 'cross-site request refused: missing or wrong CSRF token')
  }
}

const headerValues = (req: Request, name: string) =>
  (req.headers.get(name) ?? '').split(',').map((v) => v.trim()).filter(Boolean)

/**
 * The origin the browser used. With `trustProxy`, the scheme is the proxy's `X-Forwarded-Proto` (its
 * first value: the scheme the client used at the outermost proxy); without it, the header is ignored.
 */
export function publicOrigin(req: Request, trustProxy: boolean): string {
  const url = new URL(req.url)
  if (trustProxy) {
    const proto = headerValues(req, 'x-forwarded-proto')[0]?.toLowerCase()
    if (proto === 'https' || proto === 'http') url.protocol = `${proto}:`
  }
  return url.origin
}

/**
 * The client address the login limit counts. With `trustProxy`, the last `X-Forwarded-For` value: the
 * address the one trusted proxy saw and appended (values before it are the client's own to write).
 */
export function loginAddress(req: Request, trustProxy: boolean): string | undefined {
  return (trustProxy ? headerValues(req, 'x-forwarded-for').at(-1) : undefined) ?? clientAddress(req)
}

/** Reads a body up to `max` bytes, enforced while reading. */
export async function readBody(req: Request, max: number): Promise<string> {
  const bytes = await readCapped(req, max, () => fail('ERR_REQUEST_TOO_LARGE', `request body larger than ${max} bytes`))
  return new TextDecoder().decode(bytes)
}

/** A JSON object body (API calls must say `application/json`, which a plain HTML form cannot send). */
export async function readJson(req: Request, max = 256 * 1024): Promise<Record<string, unknown>> {
  const type = req.headers.get('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) throw fail('ERR_BAD_REQUEST', 'the body must be application/json')
  const text = await readBody(req, max)
  let value: unknown
  try {
    value = text === '' ? {} : JSON.parse(text)
  } catch {
    throw fail('ERR_BAD_REQUEST', 'the body is not valid JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail('ERR_BAD_REQUEST', 'the body must be a JSON object')
  return value as Record<string, unknown>
}

/** A urlencoded form body (the login and logout forms). */
export async function readForm(req: Request, max = 4096): Promise<URLSearchParams> {
  const type = req.headers.get('content-type') ?? ''
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) return new URLSearchParams()
  return new URLSearchParams(await readBody(req, max))
}

/** An optional string field of a JSON body, trimmed; '' counts as absent. */
export function str(body: Record<string, unknown>, key: string, max = 4096): string | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw fail('ERR_INVALID_ARGUMENT', `"${key}" must be a string`)
  if (v.length > max) throw fail('ERR_INVALID_ARGUMENT', `"${key}" is longer than ${max} characters`)
  const t = v.trim()
  return t === '' ? undefined : t
}

/** A list field given as an array of strings or a comma-separated string. */
export function list(body: Record<string, unknown>, key: string): string[] | undefined {
  const v = body[key]
  if (v === undefined || v === null || v === '') return undefined
  const items = typeof v === 'string' ? v.split(',') : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined
  if (!items) throw fail('ERR_INVALID_ARGUMENT', `"${key}" must be a list of strings`)
  const out = items.map((s) => s.trim()).filter(Boolean)
  return out.length ? out : undefined
}
