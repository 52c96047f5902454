/**
 * The SQL-over-HTTP transport (Neon-compatible `POST /sql`) as a Web-standard handler, for embedding it
 * with your own `authenticate` and pools.
 *
 * @module
 */
export { createSqlHttpHandler } from './handler.js'
export type { HttpAuthRequest, SqlHttpHandlerOptions } from './handler.js'
export { GatewayPools } from './pool.js'
export type { GatewayPoolsOptions, Lease, PoolStats } from './pool.js'
