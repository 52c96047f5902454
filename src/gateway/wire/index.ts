/**
 * The Postgres wire-protocol gateway (TCP, TLS, WebSocket) with the JWT as password.
 *
 * @module
 */
export { createWireGateway, isLoopbackAddress, passwordAllowed } from './server.js'
export type { Upstream, WireAuthRequest, WireGateway, WireGatewayOptions, WireLimits, WireLogin } from './server.js'
