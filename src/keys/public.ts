/**
 * Turning any JWK into its public form. Web-standard only (no `node:*`): the JWKS handler uses it on
 * every runtime, defensively, even when its key source already hands it public keys.
 *
 * @module
 */

/** JWK members that carry private or secret key material (RFC 7518 6.2.2, 6.3.2, 6.4.1). */
export const PRIVATE_MEMBERS: readonly string[] = Object.freeze(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'])

/** A JWK as plain JSON (jose's `JWK` type is looser than we need for checks). */
export type Jwk = Record<string, unknown> & { kty?: string; kid?: string; alg?: string; use?: string }

/** Whether a JWK holds private key material. */
export function isPrivateJwk(jwk: Record<string, unknown>): boolean {
  return PRIVATE_MEMBERS.some((m) => m in jwk)
}

/**
 * The public half of a JWK, or `undefined` for a key that has none (a symmetric `oct` key is all
 * secret, and a key of unknown type might be). Never returns a private member.
 */
export function toPublicJwk(jwk: Record<string, unknown>): Jwk | undefined {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return undefined
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') return undefined
  const out: Jwk = {}
  for (const [name, value] of Object.entries(jwk)) {
    if (!PRIVATE_MEMBERS.includes(name)) out[name] = value
  }
  return out
}
