/**
 * Verifying JWTs: providers (JWKS URL or inline keys, issuer, audience, algorithm allow-list, roles),
 * a remote-JWKS cache and a verified-token cache.
 *
 * @module
 */
export { Verifier, verify, normalizeProvider, DEFAULT_ALGORITHMS, DEFAULT_ROLES } from './verifier.js'
export type { ProviderConfig, VerifiedToken, VerifierOptions, VerifierEvent, JwksFetchReason } from './types.js'
export { usableKeys } from './keyset.js'
export type { Algorithm } from '../keys/algorithms.js'
