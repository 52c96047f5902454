/**
 * The SQL-over-HTTP gateway (Neon-compatible `POST /sql`) and its connection pools.
 *
 * @module
 */
export { createSqlHttpHandler, createSqlCore, webRequest } from './handler.js'
export type { AbortLike, HttpAuthRequest, HttpIdentity, HttpRequestInfo, SqlHttpHandlerOptions, SqlRequest, SqlResponse } from './handler.js'
export { parseConnectionString } from './connection-string.js'
export type { NeonConnectionInfo } from './connection-string.js'
export { createNodeListener, createNodeSqlListener, serveHttp } from './node.js'
export type { FetchHandler, HttpServerHandle, ServeHttpOptions } from './node.js'
export { GatewayPools } from '../pool.js'
export type { GatewayPoolsOptions, Lease, PoolStats } from '../pool.js'
