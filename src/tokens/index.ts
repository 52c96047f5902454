/**
 * Tokens: sign custom JWTs from a private JWK, and parse the CLI's claim, duration and time arguments.
 *
 * @module
 */
export { signToken } from './sign.js'
export type { SignOptions } from './sign.js'
export { parseDuration, parseTime } from './time.js'
export { buildClaims, parseClaimArg, parseClaimsJson } from './claims.js'
export { readSigningKey, PRIVATE_KEY_ENV } from './key-source.js'
