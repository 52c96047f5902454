/**
 * Node adapter for the Web-standard handler: a `node:http` request listener, and a tiny server around it.
 *
 * `@hono/node-server`'s `getRequestListener` is used as is: it builds the `Request` lazily and aborts
 * `request.signal` when the response closes before it finished (`outgoing.on('close')`, "Client connection
 * prematurely closed"), which is what lets the handler cancel the backend query when the client goes away
 * (checked by test/gateway-http/cancel.test.ts). `overrideGlobalObjects: false` keeps it from replacing the
 * global Request/Response of the whole process.
 *
 * @example
 * const server = await serveHttp(createSqlHttpHandler(opts), { port: 4444 })
 * // ... mount other routes instead with: http.createServer((req, res) => route(req) ? other(req, res) : listener(req, res))
 * await server.close()
 *
 * @module
 */
import http from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { listen, urlHost } from '../../lib/listen.js'

export type FetchHandler = (req: Request) => Promise<Response> | Response

/** A `node:http` request listener running `handler`; mount it in any server next to other routes. */
export function createNodeListener(
  handler: FetchHandler,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return getRequestListener(handler, { overrideGlobalObjects: false })
}

export interface ServeHttpOptions {
  /** Port to listen on; 0 picks a free one. Default 4444. */
  port?: number
  /** Address to bind. Default 127.0.0.1 (loopback only). */
  host?: string
}

export interface HttpServerHandle {
  server: http.Server
  port: number
  host: string
  /** `http://host:port` */
  url: string
  /** Stops accepting, closes idle keep-alive sockets, and resolves when the server is closed. */
  close(): Promise<void>
}

/** Serves `handler` on a new `node:http` server. */
export async function serveHttp(handler: FetchHandler, options: ServeHttpOptions = {}): Promise<HttpServerHandle> {
  const host = options.host ?? '127.0.0.1'
  const server = http.createServer(createNodeListener(handler))
  const { port } = await listen(server, options.port ?? 4444, host)
  return {
    server,
    port,
    host,
    url: `http://${urlHost(host)}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeIdleConnections()
      }),
  }
}
