/**
 * The Postgres wire-protocol gateway: the JWT is the password, over TCP (optionally TLS) and WebSocket.
 *
 * A connection goes through:
 *
 * 1. **Startup** (startup.ts), spoken by the gateway itself, bounded per client address (limits.ts);
 * 2. **Login**: the `authenticate` hook (the authenticator) turns the credential into an Identity and says
 *    how to reach Postgres as its role; the session is counted against the limits, then the upstream logs
 *    in as the role itself with the sealed claims (upstream.ts). Nothing is opened upstream before the hook
 *    accepts;
 * 3. **Relay** (relay.ts): the upstream's ParameterStatus messages are replayed to the client with a
 *    BackendKeyData of the gateway's own (sessions.ts), and bytes are spliced until either side ends or
 *    the token expires.
 *
 * The WebSocket transport (ws/websocket.ts) feeds the same `accept` with a stream per socket.
 *
 * @module
 */
import type http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import type { WebSocket } from 'ws'
import { ERROR_TABLE, isPgAuthorizeError, PgAuthorizeError } from '../../errors.js'
import type { Identity, Transport } from '../../auth/identity.js'
import type { EventSink, GatewayEvent } from '../../observability/events.js'
import { authenticationMessage, backendKeyData, errorResponse, parameterStatus, readyForQuery, sendCancelRequest } from '../protocol.js'
import { createWebSocketTransport } from '../ws/websocket.js'
import { SessionLimits, type WireLimits } from './limits.js'
import { Relay, endClient, type RelayEndReason } from './relay.js'
import { LiveSessions } from './sessions.js'
import { StartupReader, fatalFor, readStartup, type StartupState, type WireAuthRequest } from './startup.js'
import { openUpstream, startupSettings, type Upstream } from './upstream.js'

export type { WireAuthRequest } from './startup.js'
export type { Upstream } from './upstream.js'
export type { WireLimits } from './limits.js'
export { isLoopbackAddress, passwordAllowed } from './startup.js'
export { PRE_AUTH_WS_MESSAGE_BYTES } from '../ws/websocket.js'

/** Who a session runs as, and how it reaches Postgres as that role. */
export interface WireLogin {
  identity: Identity
  upstream: Upstream
}

export interface WireGatewayOptions {
  /** Verifies the password (a JWT) for the role; throws PgAuthorizeError on failure. */
  authenticate(req: WireAuthRequest): Promise<WireLogin>
  /** Certificate and key (PEM) to answer SSLRequest with TLS. Without it SSLRequest is answered `N`. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** Accept cleartext passwords without TLS from non-loopback addresses. Default false. */
  allowInsecurePassword?: boolean
  /** Observability hook; events never carry tokens or passwords. */
  onEvent?: EventSink
  /** Time allowed from connect to an established session, in ms. Default 60000 (Postgres' default). */
  startupTimeoutMs?: number
  /**
   * Largest WebSocket message once a credential has arrived, in bytes. Default 10 MiB (the `/sql` body's).
   * Before that a message may be at most `PRE_AUTH_WS_MESSAGE_BYTES` (1 MiB): ws refuses a larger frame
   * from its header (close 1009), before buffering any of it.
   */
  maxWebSocketMessageBytes?: number
  /** Session limits; see {@link WireLimits}. */
  limits?: WireLimits
  /**
   * One of `count` processes sharing the port (`serve --workers`, gateway/cluster.ts): this one hands out
   * process ids `≡ index (mod count)`, and a CancelRequest for another's id goes to `forwardCancel`.
   */
  shard?: { index: number; count: number; forwardCancel(processId: number, secret: Buffer): void }
}

export interface WireGateway {
  /** Starts a TCP listener. */
  listen(port: number, host: string): Promise<net.AddressInfo>
  /** Serves one accepted WebSocket (binary frames carrying the wire protocol). */
  handleWebSocket(ws: WebSocket, req: http.IncomingMessage): void
  /** For an existing node:http server: accepts upgrades at /v1 and /v2 (any ?address=). */
  attachWebSocket(server: http.Server): void
  /** Number of established (authenticated) sessions. */
  sessions(): number
  /** Answers a CancelRequest (a forwarded one, with `shard`): cancels the session's query if the secret matches. */
  cancel(processId: number, secret: Buffer): void
  /**
   * Reseals every live session of `database` that holds an envelope, each at its next idle moment (after a
   * key rotation, so sessions keep working once the old key retires). Returns how many were asked.
   */
  reseal(database: string): number
  /** Stops listening and ends every connection (sessions get FATAL 57P01). */
  close(): Promise<void>
}

/** Creates a wire gateway; see the module docs. */
export function createWireGateway(options: WireGatewayOptions): WireGateway {
  const secureContext = options.tls ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key }) : undefined
  const startupTimeoutMs = options.startupTimeoutMs ?? 60_000
  /** Every client stream still in startup, so close() can end them (the relay owns established ones). */
  const connections = new Set<Duplex>()
  const live = new LiveSessions(options.shard)
  const shard = options.shard
  const cancel = (processId: number, secret: Buffer): void => {
    if (shard && processId % shard.count !== shard.index) shard.forwardCancel(processId, secret)
    else emit({ kind: 'cancel', matched: live.cancel(processId, secret) })
  }
  const servers: net.Server[] = []
  let closing = false
  /** What to run once a stream's credential arrives (a WebSocket raises its message limit). */
  const onCredential = new WeakMap<Duplex, () => void>()
  const emit = (e: GatewayEvent): void => {
    try {
      options.onEvent?.(e)
    } catch {
      // an observer's failure must not break a session
    }
  }
  const limits = new SessionLimits(options.limits, emit)
  const track = (stream: Duplex): void => {
    connections.add(stream)
    stream.on('close', () => connections.delete(stream))
  }

  function accept(stream: Duplex, transport: Transport, remoteAddress: string | undefined, secure: boolean): void {
    if (closing) {
      stream.destroy()
      return
    }
    // Until the relay installs its own handlers, any stream error just ends the connection.
    stream.on('error', () => stream.destroy())
    // Tracked until it closes, so close() can end it.
    track(stream)
    // Bounded per address before anything is read: a client cannot hold many half-open logins.
    const startupOver = limits.enterStartup(stream, remoteAddress ?? '')
    if (!startupOver) {
      emit({ kind: 'limit-refused', transport, reason: 'startup-address', remoteAddress })
      endClient(stream, errorResponse({
        severity: 'FATAL', code: ERROR_TABLE.ERR_TOO_MANY_SESSIONS.sqlstate,
        message: `too many connections from this address still logging in (the limit is ${limits.maxStartupPerAddress})`,
      }))
      return
    }
    const timer = setTimeout(() => {
      emit({ kind: 'startup-timeout', transport, remoteAddress })
      stream.destroy()
    }, startupTimeoutMs)
    timer.unref()
    login(stream, transport, remoteAddress, secure)
      .catch((err: unknown) => emit({ kind: 'error', message: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        clearTimeout(timer)
        startupOver()
      })
  }

  async function login(stream: Duplex, transport: Transport, remoteAddress: string | undefined, secure: boolean): Promise<void> {
    const state: StartupState = { stream, reader: new StartupReader(stream) }
    try {
      const started = await readStartup(state, transport, remoteAddress, secure, {
        secureContext,
        allowInsecurePassword: options.allowInsecurePassword === true,
        onTls: (plain, secured) => {
          connections.delete(plain)
          track(secured)
        },
        onCredential: (s) => onCredential.get(s)?.(),
      })
      if (started.kind === 'cancel') {
        if (started.key) cancel(started.key.processId, started.key.secret)
        return
      }
      const { request } = started
      let admitted: WireLogin
      try {
        admitted = await options.authenticate(request)
      } catch (err) {
        emit({
          kind: 'auth-failed', transport: request.transport, remoteAddress, user: request.user, database: request.database,
          code: isPgAuthorizeError(err) ? err.code : 'ERR_INTERNAL',
        })
        if (!isPgAuthorizeError(err)) emit({ kind: 'error', message: err instanceof Error ? err.message : String(err) })
        throw err
      }
      limits.admit(state.stream, admitted.identity, request.transport)
      const pending = state.reader.detach()
      await openSession(state.stream, request, admitted, pending)
    } catch (err) {
      state.reader.detach()
      if (!state.stream.destroyed) endClient(state.stream, errorResponse(fatalFor(err)))
    }
  }

  async function openSession(client: Duplex, request: WireAuthRequest, admitted: WireLogin, pending: Buffer): Promise<void> {
    const { identity, upstream } = admitted
    const { transport, remoteAddress } = request
    const settings = startupSettings({ ...request.startupParameters })
    if (identity.expiresAt !== undefined && identity.expiresAt * 1000 <= Date.now()) {
      throw new PgAuthorizeError('ERR_SESSION_EXPIRED', "the JWT's exp has passed")
    }
    if (client.destroyed) return
    const opened = await openUpstream(identity, upstream, settings, (message) =>
      emit({ kind: 'upstream-failed', role: identity.role, database: identity.database, message }))
    const { socket } = opened
    if (client.destroyed || closing) {
      socket.destroy()
      return
    }
    let expiryTimer: NodeJS.Timeout | undefined
    const startedAt = Date.now()
    const target = { role: identity.role, database: identity.database }
    let key: { processId: number } | undefined
    const relay = new Relay(client, socket, (reason: RelayEndReason) => {
      clearTimeout(expiryTimer)
      if (key) live.remove(key.processId)
      // Only a backend that closed its own socket is known to be gone; any other end may leave a statement
      // running that ignores the cancel (expiry, a client that went away mid-statement, shutdown).
      if (reason !== 'upstream-closed' && upstream.reap && opened.key && opened.backendStart !== null) {
        upstream.reap(opened.key.processId, opened.backendStart)
      }
      emit({ kind: 'session-end', ...target, transport, reason, ms: Date.now() - startedAt })
    }, (ok) => emit({ kind: ok ? 'session-resealed' : 'reseal-failed', ...target, transport }))
    const clientKey = live.add({
      relay, database: identity.database, upstream: opened.key,
      reseal: identity.envelope !== null ? identity.reseal : undefined,
    })
    key = clientKey
    const hello: Buffer[] = [authenticationMessage(0)]
    for (const [k, v] of opened.status) hello.push(parameterStatus(k, v))
    hello.push(backendKeyData(clientKey.processId, clientKey.secretKey), readyForQuery('I'))
    client.removeAllListeners('error')
    connections.delete(client) // from now on the relay owns it (close() ends it with a FATAL)
    client.write(Buffer.concat(hello))
    onCredential.get(client)?.()
    relay.start(pending)
    emit({ kind: 'session-start', ...target, transport, remoteAddress })
    if (identity.expiresAt !== undefined) {
      const expire = (): void => {
        const left = identity.expiresAt! * 1000 - Date.now()
        // setTimeout caps at ~24.8 days; re-arm until the real deadline.
        if (left > 0) {
          expiryTimer = setTimeout(expire, Math.min(left, 0x7fffffff))
          expiryTimer.unref()
          return
        }
        emit({ kind: 'session-expired', ...target, transport })
        if (opened.key) void sendCancelRequest(opened.key)
        relay.end({ severity: 'FATAL', code: '28000', message: "session expired: the JWT's exp has passed" })
      }
      expire()
    }
  }

  const ws = createWebSocketTransport({
    maxMessageBytes: options.maxWebSocketMessageBytes ?? 10 * 1024 * 1024,
    accept(stream, remoteAddress, secure, raiseLimit) {
      if (raiseLimit) onCredential.set(stream, raiseLimit)
      accept(stream, 'websocket', remoteAddress, secure)
    },
  })

  return {
    listen(port, host) {
      const server = net.createServer((socket) => {
        socket.setNoDelay(true)
        accept(socket, 'tcp', socket.remoteAddress, false)
      })
      servers.push(server)
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve(server.address() as net.AddressInfo)
        })
      })
    },

    handleWebSocket: ws.handle,
    attachWebSocket: ws.attach,
    sessions: () => live.size,

    cancel,

    reseal(database) {
      return live.reseal(database, (err) =>
        emit({ kind: 'reseal-failed', database, message: err instanceof Error ? err.message : String(err) }))
    },

    async close() {
      closing = true
      const stopped = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
      live.endAll({ severity: 'FATAL', code: '57P01', message: 'terminating connection because the gateway is shutting down' })
      // What is left is still in startup: nothing to flush.
      for (const c of connections) c.destroy()
      ws.close()
      await Promise.all(stopped)
    },
  }
}
