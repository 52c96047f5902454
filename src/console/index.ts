/**
 * The web console: providers, roles and set-up, a token inspector, an impersonation playground and the
 * policy matrix, served by the gateway at `/console` behind an admin token.
 *
 * @module
 */
export { createConsoleHandler } from './handler.js'
export type { ConsoleHandler, ConsoleOptions } from './handler.js'
export type { ConsoleEndpoints } from './roles.js'
export { newAdminToken } from './session.js'
