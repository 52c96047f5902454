/**
 * Verifying JWTs: providers (JWKS URL, OIDC discovery or inline keys, issuer, audience, authorized
 * parties, algorithm allow-list, roles and the claim that picks one), a remote-JWKS cache that follows
 * HTTP caching, and a verified-token cache.
 *
 * @module
 */
export { Verifier, verify } from './verifier.js'
export { normalizeProvider, discoveryUrl, DEFAULT_ALGORITHMS } from './provider.js'
export { DEFAULT_PROVIDER_ROLES } from './types.js'
export { chooseRole } from './role-choice.js'
export { parseClaimPath, selectClaim } from './claim-path.js'
export { discover } from './discovery.js'
export type { ProviderConfig, VerifiedToken, VerifierOptions, VerifierEvent, JwksFetchReason } from './types.js'
export { usableKeys } from './keyset.js'
export type { Algorithm } from '../keys/algorithms.js'
