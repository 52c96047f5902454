/**
 * The web console: providers, roles and set-up, a token inspector, an impersonation playground and the
 * policy matrix, served by the gateway at `/console` behind an admin token.
 *
 * @module
 */
export { createConsoleApp } from './app.js'
export type { ConsoleApp, ConsoleEnv, ConsoleOptions } from './app.js'
export { createConsoleHandler } from './handler.js'
export type { ConsoleHandler } from './handler.js'
export type { ConsoleBackend, ConsoleDatabase, ConsoleGatewayVerifier, ConsoleServed } from './backend.js'
export type { ConsoleEndpoints } from './roles.js'
export { newAdminToken } from './session.js'
