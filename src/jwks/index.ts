/**
 * The JWKS endpoint: a Web-standard handler for any runtime, and a Node server over a key directory.
 *
 * @module
 */
export { createJwksHandler, JWKS_PATH } from './handler.js'
export type { JwksHandlerOptions } from './handler.js'
export { serveJwks, keyDirSource } from './serve.js'
export type { ServeJwksOptions, JwksServer } from './serve.js'
