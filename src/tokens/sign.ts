/**
 * Signing custom JWTs with a private JWK, as the Neon guide does with jose `SignJWT`: `kid` and `alg`
 * in the header (taken from the key), `sub`, `iat` and `exp` in the payload, plus any custom claims.
 *
 * @module
 */
import { calculateJwkThumbprint, importJWK, SignJWT, type JWTPayload } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { parseJwk } from '../keys/jwk-file.js'
import { toPublicJwk, type Jwk } from '../keys/public.js'
import { parseDuration, parseTime } from './time.js'

export interface SignOptions {
  /** The private JWK (its `alg` and `kid` go into the header; a missing `kid` becomes the thumbprint). */
  privateJwk: Jwk
  /** The `sub` claim. */
  sub?: string
  /** Custom claims, e.g. `{ tenant_id: 'abc', role: 'authenticated', permissions: ['read'] }`. */
  claims?: Record<string, unknown>
  /** Lifetime: seconds, or `30s`/`15m`/`1h`/`7d`. Default `1h`, unless `claims.exp` is given. */
  expiresIn?: string | number
  issuer?: string
  audience?: string | string[]
  /** `nbf`: a duration from now, epoch seconds, ISO date or Date. */
  notBefore?: string | number | Date
  /** Clock seam, epoch milliseconds. */
  now?: number
}

/**
 * Signs one JWT and returns it in compact form.
 *
 * @example
 * const token = await signToken({ privateJwk, sub: 'user-1', claims: { tenant_id: 'acme' }, expiresIn: '15m' })
 */
export async function signToken(options: SignOptions): Promise<string> {
  const { jwk, alg } = await parseJwk(JSON.stringify(options.privateJwk ?? null), 'the signing key', 'private')
  const claims = options.claims ?? {}
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'claims must be an object')
  }
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000)
  const payload: JWTPayload = { ...claims }
  if (options.sub !== undefined) payload.sub = options.sub
  if (options.issuer !== undefined) payload.iss = options.issuer
  if (options.audience !== undefined) payload.aud = options.audience
  payload.iat = nowSeconds
  if (options.expiresIn !== undefined || payload.exp === undefined) {
    payload.exp = nowSeconds + parseDuration(options.expiresIn ?? '1h', 'expires-in')
  }
  if (options.notBefore !== undefined) payload.nbf = parseTime(options.notBefore, nowSeconds, 'not-before')
  checkRegisteredClaims(payload)
  const kid = typeof jwk.kid === 'string' ? jwk.kid : await calculateJwkThumbprint(toPublicJwk(jwk) as never, 'sha256')
  const key = await importJWK(jwk as never, alg)
  return new SignJWT(payload).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key)
}

/** RFC 7519 4.1 types; jose signs whatever it is given, and verifiers would then refuse the token. */
function checkRegisteredClaims(payload: JWTPayload): void {
  const wrong = (name: string, type: string) =>
    new PgAuthorizeError('ERR_INVALID_CLAIMS', `claim "${name}" has the wrong type (must be ${type})`)
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (payload[name] !== undefined && !(typeof payload[name] === 'number' && Number.isFinite(payload[name]))) throw wrong(name, 'a number of seconds')
  }
  for (const name of ['sub', 'iss', 'jti'] as const) {
    if (payload[name] !== undefined && typeof payload[name] !== 'string') throw wrong(name, 'a string')
  }
  const aud = payload.aud
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    throw wrong('aud', 'a string or strings')
  }
}
