/**
 * The database side: the `auth` schema, roles and grants, tamper-proof claims, providers, and the
 * embedded Postgres for development and tests.
 *
 * @module
 */
export * from './session.js'
export * from './setup.js'
export * from './migrations.js'
export * from './providers.js'
export * from './context.js'
export * from './watch.js'
export { connectOwner, maskUrl, parseDatabaseUrl, withDatabase, withUser } from './connect.js'
export { startEmbeddedPostgres, freePort } from './embedded.js'
export type { EmbeddedOptions, EmbeddedPostgresHandle } from './embedded.js'
