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
export { createAuthorizer } from './authorizer.js'
export type { Authorizer, AuthorizerOptions, AuthorizedClient, ClaimsOptions, TransactionOptions } from './authorizer.js'
export { authorizePostgresJs } from './postgres-js.js'
export type { PostgresJsAdapterOptions, PostgresJsAuthorizer, PostgresJsSql, PostgresJsTransaction } from './postgres-js.js'
