/**
 * The WebSocket transport: the same Postgres wire byte stream in binary frames, at `/v1` and `/v2` (any
 * `?address=`), as `@neondatabase/serverless` `Pool`/`Client` use it, including the pipelined connect where
 * the startup message, the password and the first query arrive before the password is asked for. Each
 * accepted socket becomes a stream handed to the wire gateway's `accept`.
 *
 * @module
 */
import type http from 'node:http'
import type { Duplex } from 'node:stream'
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws'

/**
 * The largest WebSocket message before a credential has arrived. A startup packet and a password message
 * take at most ~42 kB, but the Neon driver's pipelined connect (its default) sends them and the first query
 * in one message, before the login is answered; 1 MiB lets that query be a sizeable one while a
 * connection that never authenticates holds at most 1 MiB (ws's default is 100 MiB). A larger first query
 * needs `neonConfig.pipelineConnect = false`.
 */
export const PRE_AUTH_WS_MESSAGE_BYTES = 1024 * 1024

export interface WebSocketTransportOptions {
  /** Largest message once a credential has arrived, bytes. */
  maxMessageBytes: number
  /** Serves one stream (the wire gateway); `raiseLimit` lifts the message limit once a credential arrives. */
  accept(stream: Duplex, remoteAddress: string | undefined, secure: boolean, raiseLimit: (() => void) | undefined): void
}

export interface WebSocketTransport {
  /** Serves one accepted WebSocket. */
  handle(ws: WebSocket, req: http.IncomingMessage): void
  /** Accepts upgrades at /v1 and /v2 on `server`; other paths get 404 unless someone else serves them. */
  attach(server: http.Server): void
  close(): void
}

export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  let wss: WebSocketServer | undefined
  const handle = (ws: WebSocket, req: http.IncomingMessage): void => {
    ws.binaryType = 'nodebuffer'
    const stream = createWebSocketStream(ws)
    // Once a credential arrives, messages may be as large as a /sql body. ws reads its limit from the
    // receiver on every frame; it has no public setter (the server-wide maxPayload is the pre-credential bound).
    const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
    const raise = receiver && typeof receiver._maxPayload === 'number'
      ? () => { receiver._maxPayload = options.maxMessageBytes }
      : undefined
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true
    options.accept(stream, req.socket.remoteAddress, secure, raise)
  }
  return {
    handle,
    attach(server) {
      wss ??= new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: PRE_AUTH_WS_MESSAGE_BYTES })
      const sockets = wss
      server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        const path = (req.url ?? '').split('?', 1)[0]
        if (path === '/v1' || path === '/v2') {
          sockets.handleUpgrade(req, socket, head, (ws) => handle(ws, req))
        } else if (server.listenerCount('upgrade') === 1) {
          // Nobody else serves other upgrade paths on this server.
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
        }
      })
    },
    close() {
      wss?.close()
    },
  }
}
