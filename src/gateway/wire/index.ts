/**
 * The Postgres wire-protocol gateway (TCP, TLS, WebSocket) with the JWT as password.
 *
 * @module
 */
export { createWireGateway, isLoopbackAddress, passwordAllowed } from './server.js'
export type { WireAuthRequest, WireEvent, WireGateway, WireGatewayOptions, WireIdentity } from './server.js'
