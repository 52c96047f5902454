/**
 * Node adapter for the Web-standard handler: a `node:http` request listener, and a tiny server around it.
 *
 * `@hono/node-server`'s `getRequestListener` is used as is: it builds the `Request` lazily and aborts
 * `request.signal` when the response closes before it finished (`outgoing.on('close')`, "Client connection
 * prematurely closed"), which is what lets the handler cancel the backend query when the client goes away
 * (checked by test/gateway/http/cancel.test.ts). `overrideGlobalObjects: false` keeps it from replacing the
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
import { rememberClientAddress } from '../../lib/client-address.js'
import { tooLarge, type AbortLike, type FetchHandler, type SqlRequest, type SqlResponse } from './request.js'

export type { FetchHandler } from './request.js'

/**
 * A minimal abort signal: the SQL handler only reads `aborted` and (un)registers one 'abort' listener, and
 * a real AbortSignal costs a measurable share of a request (it is a transferable platform object).
 */
class ClientGone implements AbortLike {
  aborted = false
  #listeners: Array<(e: Event) => void> = []
  addEventListener(_type: string, fn: EventListenerOrEventListenerObject | null): void {
    if (typeof fn === 'function') this.#listeners.push(fn)
  }
  removeEventListener(_type: string, fn: EventListenerOrEventListenerObject | null): void {
    this.#listeners = this.#listeners.filter((l) => l !== fn)
  }
  abort(): void {
    if (this.aborted) return
    this.aborted = true
    const listeners = this.#listeners
    this.#listeners = []
    for (const l of listeners) l(new Event('abort'))
  }
}

/** Reads a Node request body with the cap enforced as it arrives; past it, reading stops. */
function readNodeBody(req: http.IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > max) return Promise.reject(tooLarge(max))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (total > max) {
        req.off('data', onData)
        req.pause()
        reject(tooLarge(max))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)))
    req.once('error', reject)
  })
}

/**
 * A `node:http` listener running the SQL handler's core straight on IncomingMessage/ServerResponse: the
 * hot path of `POST /sql` without building a Web Request, AbortSignal and Response per request (about a
 * tenth of the gateway's CPU per request in a profile). Same behaviour as the Web handler: the client
 * going away cancels the backend query; an oversized body is refused without being read to the end.
 */
export function createNodeSqlListener(
  core: (req: SqlRequest) => Promise<SqlResponse>,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const gone = new ClientGone()
    res.once('close', () => {
      if (!res.writableFinished) gone.abort()
    })
    let bodyRefused = false
    let bodyRead = false
    const out = await core({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      header: (name) => {
        const v = req.headers[name]
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
      },
      body: (max) => {
        bodyRead = true
        return readNodeBody(req, max).catch((err: unknown) => {
          bodyRefused = true
          throw err
        })
      },
      signal: gone,
    })
    if (res.destroyed) return
    const headers: Record<string, string | number> = { ...out.headers }
    if (out.body !== null) headers['content-length'] = Buffer.byteLength(out.body)
    res.writeHead(out.status, headers)
    res.end(out.body ?? undefined)
    // After a refused body (or one never read: refused before it, e.g. without a token) Node discards what
    // the client still sends, so the client can read the answer before it stops; a client that never stops
    // sending is cut off after two seconds.
    if (bodyRefused || !bodyRead) {
      setTimeout(() => {
        if (!req.complete) req.socket.destroy()
      }, 2000).unref()
    }
  }
}

/** A `node:http` request listener running `handler`; mount it in any server next to other routes. */
export function createNodeListener(
  handler: FetchHandler,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  // The socket's address has no place on a Request; the console's login limit reads it from here.
  return getRequestListener((req, env) => {
    rememberClientAddress(req, env.incoming.socket?.remoteAddress)
    return handler(req)
  }, { overrideGlobalObjects: false })
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
