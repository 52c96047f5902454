/**
 * pg-authorize: bring your own JWTs, and let Postgres enforce authorization with Row-Level Security.
 * This file only re-exports; each part lives in its own folder.
 *
 * @module
 */
export * from './errors.js'
export * from './keys/index.js'
export * from './tokens/index.js'
export * from './jwks/index.js'
export * from './verify/index.js'
export * from './auth/index.js'
export * from './gateway/index.js'
export * from './testing/index.js'
