/**
 * The gateway: `startGateway` runs SQL over HTTP (Neon's `/sql`), the Postgres wire protocol (TCP, TLS,
 * WebSocket) and the console on one authenticator; `gateway.fetch` is its HTTP port as a Web-standard
 * `(Request) => Promise<Response>` handler. The transports are exported too, for embedding them alone.
 *
 * @example
 * import { startGateway } from 'pg-authorize/gateway'
 * const gw = await startGateway({ databaseUrl: process.env.DATABASE_URL!, port: 4444, pgPort: 5433 })
 * await gw.close()
 *
 * @module
 */
export { startGateway } from './gateway.js'
export type { Gateway, GatewayOptions } from './gateway.js'
export { createSqlHttpHandler, GatewayPools } from './http/index.js'
export type { GatewayPoolsOptions, HttpAuthRequest, Lease, PoolStats, SqlHttpHandlerOptions } from './http/index.js'
export { createWireGateway, isLoopbackAddress, passwordAllowed } from './wire/index.js'
export type { Upstream, WireAuthRequest, WireGateway, WireGatewayOptions, WireLimits, WireLogin } from './wire/index.js'
export type { GatewayEvent, HttpRequestInfo } from '../observability/events.js'
