/**
 * The JWS algorithms pg-authorize signs and verifies with, and which key types suit each one.
 * Web-standard only (no `node:*`), so the JWKS handler and the verifier can use it on any runtime.
 *
 * @module
 */

/** An asymmetric JWS algorithm. HMAC (`HS*`) and `none` are deliberately absent: a shared secret cannot be published. */
export type Algorithm =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'

export const ALGORITHMS: readonly Algorithm[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
])

export function isAlgorithm(value: unknown): value is Algorithm {
  return typeof value === 'string' && (ALGORITHMS as readonly string[]).includes(value)
}

const EC_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

/**
 * Whether a key can check signatures made with `alg`: the key type and curve must fit, and a key
 * that names its own `alg` is used with that algorithm only (RFC 7517 4.4), so an RSA key published
 * for RS256 cannot be used to accept a PS256 token.
 */
export function keySuitsAlgorithm(jwk: { kty?: unknown; crv?: unknown; alg?: unknown }, alg: string): boolean {
  if (!isAlgorithm(alg)) return false
  if (jwk.alg !== undefined && jwk.alg !== alg) return false
  switch (jwk.kty) {
    case 'RSA':
      return alg.startsWith('RS') || alg.startsWith('PS')
    case 'EC':
      return EC_CURVE[alg] !== undefined && jwk.crv === EC_CURVE[alg]
    case 'OKP':
      return alg === 'EdDSA' && jwk.crv === 'Ed25519'
    default:
      return false
  }
}

/** The algorithm a key is used with: its own `alg`, else the usual one for its type. */
export function algorithmForKey(jwk: { kty?: unknown; crv?: unknown; alg?: unknown }): Algorithm | undefined {
  if (jwk.alg !== undefined) return isAlgorithm(jwk.alg) && keySuitsAlgorithm(jwk, jwk.alg) ? jwk.alg : undefined
  if (jwk.kty === 'RSA') return 'RS256'
  if (jwk.kty === 'EC') return (Object.keys(EC_CURVE) as Algorithm[]).find((a) => EC_CURVE[a] === jwk.crv)
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  return undefined
}
