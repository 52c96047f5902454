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
  const kid = typeof jwk.kid === 'string' ? jwk.kid : await calculateJwkThumbprint(toPublicJwk(jwk) as never, 'sha256')
  const key = await importJWK(jwk as never, alg)
  try {
    return await new SignJWT(payload).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key)
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'the claims cannot be signed (a registered claim has the wrong type)', { cause: err })
  }
}
