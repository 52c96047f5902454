/**
 * The JWT claims checks (RFC 7519 4.1), on a payload whose signature has been checked: those of jose's
 * `jwtVerify` (its jwt_claims_set.ts), in its order and with its rules (presence of `iss`/`aud` when the
 * provider names them and of `exp` always, `iss` equal, `aud` (string or array) naming one of the
 * provider's audiences, `iat`, `nbf` and `exp` numbers, `nbf` not after now + leeway, `exp` after
 * now - leeway), plus three jose does not make:
 *
 * - no number anywhere in the payload may be non-finite (`1e400`);
 * - `azp` must be one of the provider's authorized parties, when it names any;
 * - with `strictAudience`, a token carrying `aud` is refused by a provider that names no audience
 *   (PostgREST #4134: a token minted for another API must not pass just because this one forgot to say).
 *
 * Messages name claims, never their values.
 *
 * @module
 */
import type { JWTPayload } from 'jose'
import { PgAuthorizeError, type ErrorCode } from '../errors.js'
import type { ProviderConfig } from './types.js'

const fail = (code: ErrorCode, message: string) => new PgAuthorizeError(code, message)

/** Throws the first failed check's PgAuthorizeError. `nowS` in epoch seconds, `tolerance` in seconds. */
export function checkClaims(claims: JWTPayload, provider: ProviderConfig, nowS: number, tolerance: number): void {
  const issuer = provider.issuer
  const audience = provider.audience
  for (const claim of [issuer !== undefined && 'iss', audience !== undefined && 'aud', 'exp']) {
    if (claim && !Object.hasOwn(claims, claim)) {
      if (claim === 'iss') throw fail('ERR_JWT_ISSUER_MISMATCH', `the token has no "iss"; provider '${provider.name}' requires one`)
      if (claim === 'aud') throw fail('ERR_JWT_AUDIENCE_MISMATCH', `the token has no "aud"; provider '${provider.name}' requires one`)
      throw fail('ERR_JWT_CLAIM_INVALID', `invalid "${claim}" claim: missing required "${claim}" claim`)
    }
  }
  if (issuer !== undefined && claims.iss !== issuer) {
    throw fail('ERR_JWT_ISSUER_MISMATCH', `"iss" does not match the issuer of provider '${provider.name}'`)
  }
  if (audience !== undefined) {
    const wanted = typeof audience === 'string' ? [audience] : audience
    const aud = claims.aud
    const ok = typeof aud === 'string' ? wanted.includes(aud) : Array.isArray(aud) && wanted.some((a) => aud.includes(a))
    if (!ok) throw fail('ERR_JWT_AUDIENCE_MISMATCH', `"aud" does not match the audience of provider '${provider.name}'`)
  } else if (provider.strictAudience && Object.hasOwn(claims, 'aud')) {
    throw fail('ERR_JWT_AUDIENCE_MISMATCH', `the token has an "aud", and provider '${provider.name}' names no audience and is strict about it`)
  }
  if (provider.authorizedParties !== undefined) {
    const azp = (claims as { azp?: unknown }).azp
    if (typeof azp !== 'string' || !provider.authorizedParties.includes(azp)) {
      throw fail('ERR_JWT_AZP_MISMATCH', azp === undefined
        ? `the token has no "azp"; provider '${provider.name}' requires one`
        : `"azp" is not an authorized party of provider '${provider.name}'`)
    }
  }
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    if (claims[claim] !== undefined && typeof claims[claim] !== 'number') {
      throw fail('ERR_JWT_CLAIM_INVALID', `invalid "${claim}" claim: "${claim}" claim must be a number`)
    }
    // JSON.parse reads 1e400 as Infinity: an `exp` that never passes (jose accepts it; we do not).
    if (claims[claim] !== undefined && !Number.isFinite(claims[claim])) {
      throw fail('ERR_JWT_CLAIM_INVALID', `invalid "${claim}" claim: "${claim}" claim must be a finite number`)
    }
  }
  if (hasNonFinite(claims)) throw fail('ERR_JWT_CLAIM_INVALID', 'a claim holds a number too large to represent (not finite)')
  if (claims.nbf !== undefined && claims.nbf > nowS + tolerance) {
    throw fail('ERR_JWT_NOT_YET_VALID', 'token not yet valid ("nbf" is in the future)')
  }
  if (claims.exp! <= nowS - tolerance) throw fail('ERR_JWT_EXPIRED', 'token expired ("exp" is in the past)')
}

/**
 * Whether any number in the payload is not finite. Re-serialized, Infinity becomes `null`, so the
 * policies would see another value than the one signed: refuse rather than change it. Iterative (a
 * signed payload may nest a few thousand levels within the length cap).
 */
export function hasNonFinite(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true
    } else if (v !== null && typeof v === 'object') {
      for (const child of Object.values(v)) stack.push(child)
    }
  }
  return false
}
