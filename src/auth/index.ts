/**
 * The authenticator every transport shares: a credential and a target (database, role) become one
 * {@link Identity} with sealed claims, and a login as the restricted role.
 *
 * @module
 */
export { Authenticator } from './authenticator.js'
export type { AuthenticatorOptions } from './authenticator.js'
export { identityKey, subjectHash } from './identity.js'
export type { AuthRequest, Identity, Transport } from './identity.js'
