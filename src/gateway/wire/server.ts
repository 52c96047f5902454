/**
 * The Postgres wire-protocol gateway: the JWT is the password, over TCP (optionally TLS) and WebSocket.
 *
 * A session goes through two phases:
 *
 * 1. **Startup**, spoken by the gateway itself: SSLRequest/GSSENCRequest/CancelRequest, the
 *    StartupMessage (user = role, database), a cleartext password request whose answer is the JWT, and the
 *    `authenticate` hook. Nothing is opened upstream until the hook accepts. This phase is hand-written
 *    (protocol.ts) because it is tiny and because after it the gateway splices raw bytes: a full
 *    message-parsing server library would sit in the hot path of every query.
 * 2. **Relay**: the gateway logs in upstream *as the role itself* (pg.Client does SCRAM/md5), installs the
 *    sealed claims, replays the upstream's ParameterStatus messages to the client with a BackendKeyData of
 *    its own, then takes over pg's socket and splices bytes (relay.ts) until either side ends or the token
 *    expires.
 *
 * The WebSocket transport (`/v1`, `/v2`, any `?address=`, as `@neondatabase/serverless` `Pool`/`Client`
 * use) carries the same byte stream in binary frames, including the pipelined connect where the startup
 * message, the password and the first query arrive before the password is asked for.
 *
 * @module
 */
import { randomInt, timingSafeEqual } from 'node:crypto'
import type http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import pg from 'pg'
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws'
import { installClaimsParamSql } from '../../database/session.js'
import { RoleTaintedError, checkSession, loginWithRepair } from '../../database/role-repair.js'
import { ERROR_TABLE, isPgAuthorizeError, PgAuthorizeError } from '../../errors.js'
import {
  authenticationMessage,
  backendKeyData,
  cancelRequest,
  CANCEL_REQUEST,
  errorResponse,
  GSSENC_REQUEST,
  MAX_PASSWORD_LENGTH,
  MAX_STARTUP_LENGTH,
  negotiateProtocolVersion,
  parameterStatus,
  parseOptionsParameter,
  parseStartupParameters,
  readyForQuery,
  SSL_REQUEST,
  type ErrorFields,
} from './protocol.js'
import { Relay, endClient, type RelayEndReason } from './relay.js'
import { isCompactJws } from '../../verify/verifier.js'
import { identityKey, subjectHash } from '../fair-share.js'

export interface WireAuthRequest {
  /** The startup message's user: the role asked for. */
  user: string
  database: string
  /** The password: the JWT. Never log it. */
  password: string
  transport: 'tcp' | 'tls' | 'websocket'
  remoteAddress: string | undefined
  /** The other startup parameters (application_name, client_encoding, ...). */
  startupParameters: Record<string, string>
}

export interface WireIdentity {
  role: string
  database: string
  /** Who this is, for the per-identity session limit (provider + `sub`; none: the shared anonymous key). */
  provider?: string | undefined
  subject?: string | undefined
  /** Sealed claims installed with `installClaimsParamSql(false)`; null for no identity. */
  envelope: string | null
  /** Epoch seconds; the session is ended with FATAL when it passes. */
  expiresAt: number | undefined
  /** How to log in upstream AS THE ROLE ITSELF (never privileged + SET ROLE). */
  upstream: pg.ClientConfig
  /**
   * Undoes `ALTER ROLE CURRENT_USER PASSWORD/SET` a client may have run (through the owner). When given, the
   * upstream connection is checked with `checkSession` before it serves anything; a failed login or stored
   * role defaults discard it, repair the role and log in again (bounded, with backoff). Resolves true when
   * this call ran the repair.
   */
  repair?: () => Promise<boolean>
  /**
   * Terminates the upstream backend `pid` (named with its `backend_start`) through the owner after a grace
   * period, unless it has exited: called when a session ends for any reason but the upstream closing, since
   * a statement that catches the cancel would otherwise keep running after the session is over.
   */
  reap?: (pid: number, backendStart: string) => void
  /** The same identity sealed again with the database's current key (after a rotation). */
  reseal?: () => string
}

export type WireEvent = { kind: string; [k: string]: unknown }

/**
 * Bounds on wire and WebSocket sessions (issue 22). Each holds its own upstream connection, so without
 * them one identity could open enough sessions to exhaust the cluster's `max_connections` for everyone.
 * A login past a limit is refused with FATAL 53300 before anything is opened upstream.
 */
export interface WireLimits {
  /** Most sessions one identity (provider + `sub`) may have open or opening at once. Default 20; 0: no limit. */
  maxSessionsPerIdentity?: number
  /** Most sessions in all, open or opening. Default 500; 0: no limit. */
  maxSessions?: number
  /**
   * Most connections from one client address still in the startup phase (before a login succeeds); one
   * more is refused at once with 53300, before its startup packet is read. Default 20; 0: no limit.
   */
  maxStartupPerAddress?: number
}

export interface WireGatewayOptions {
  /** Verifies the password (a JWT) for the role; throws PgAuthorizeError on failure. */
  authenticate(req: WireAuthRequest): Promise<WireIdentity>
  /** Certificate and key (PEM) to answer SSLRequest with TLS. Without it SSLRequest is answered `N`. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** Accept cleartext passwords without TLS from non-loopback addresses. Default false. */
  allowInsecurePassword?: boolean
  /** Observability hook; events never carry tokens or passwords. */
  onEvent?: (e: WireEvent) => void
  /** Time allowed from connect to an established session, in ms. Default 60000 (Postgres' default). */
  startupTimeoutMs?: number
  /**
   * Largest WebSocket message once a credential has arrived, in bytes. Default 10 MiB (the `/sql` body's).
   * Before that a message may be at most `PRE_AUTH_WS_MESSAGE_BYTES` (1 MiB): ws refuses a larger frame
   * from its header (close 1009), before buffering any of it. The limit is raised once a JWT-shaped
   * password has been read, and at login in any case.
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

/**
 * The largest WebSocket message before a credential has arrived. A startup packet and a password message
 * take at most ~42 kB, but the Neon driver's pipelined connect (its default) sends them and the first query
 * in one message, before the login is answered; 1 MiB lets that query be a sizeable one while a
 * connection that never authenticates holds at most 1 MiB (ws's default is 100 MiB). A larger first query
 * needs `neonConfig.pipelineConnect = false`.
 */
export const PRE_AUTH_WS_MESSAGE_BYTES = 1024 * 1024

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

type Transport = WireAuthRequest['transport']

/** While a client is in the startup phase, at most this much is buffered before reading pauses. */
const STARTUP_BUFFER_HIGH_WATER = 64 * 1024

/** Startup parameters that never become upstream settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication', 'fallback_application_name'])

const EMPTY = Buffer.alloc(0)

/** Reads exact byte counts from a stream during startup, buffering whatever else arrives (pipelining). */
class StartupReader {
  private buf: Buffer = EMPTY
  private wake: (() => void) | null = null
  private ended = false
  private readonly stream: Duplex

  constructor(stream: Duplex) {
    this.stream = stream
    stream.on('data', this.onData)
    stream.on('end', this.onEnd)
    stream.on('close', this.onEnd)
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    if (this.buf.length > STARTUP_BUFFER_HIGH_WATER) this.stream.pause()
    this.wake?.()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.wake?.()
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error('client closed the connection during startup')
      this.stream.resume()
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = null
    }
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return out
  }

  /** Stops reading and hands back what was buffered beyond the last read. */
  detach(): Buffer {
    this.stream.pause()
    this.stream.off('data', this.onData)
    this.stream.off('end', this.onEnd)
    this.stream.off('close', this.onEnd)
    const rest = this.buf
    this.buf = EMPTY
    return rest
  }
}

/** A startup failure that ends the connection with a FATAL ErrorResponse. */
class Fatal extends Error {
  readonly fields: ErrorFields
  constructor(code: string, message: string, extra: { detail?: string; hint?: string } = {}) {
    super(message)
    this.fields = { severity: 'FATAL', code, message, detail: extra.detail, hint: extra.hint }
  }
}

/** Where to send a CancelRequest for an upstream session. */
interface CancelTarget {
  host: string
  port: number
  processId: number
  secretKey: number
}

interface LiveSession {
  secretKey: Buffer
  cancel: CancelTarget
  relay: Relay
  database: string
  reseal: (() => string) | undefined
}

/** pg.Client internals the gateway relies on to take over the upstream socket after login. */
interface PgClientInternals {
  processID: number | null
  secretKey: number | null
  host: string
  port: number
  connection: import('node:events').EventEmitter & { stream: net.Socket }
}

/** True for loopback peers, where a cleartext password never leaves the machine. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'))
}

/**
 * Whether a cleartext password may be asked for: over TLS always, in the clear only from loopback unless
 * explicitly allowed (the password is a JWT, a bearer credential).
 */
export function passwordAllowed(secure: boolean, remoteAddress: string | undefined, allowInsecure: boolean): boolean {
  return secure || allowInsecure || isLoopbackAddress(remoteAddress)
}

function sendCancel(target: CancelTarget): void {
  const sock =
    target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect(target.port, target.host)
  sock.on('error', () => sock.destroy())
  sock.setTimeout(10_000, () => sock.destroy())
  // The server answers a cancel by closing the connection.
  sock.end(cancelRequest(target.processId, target.secretKey))
}

function fatalFor(err: unknown): ErrorFields {
  if (err instanceof Fatal) return err.fields
  if (isPgAuthorizeError(err)) {
    const m = ERROR_TABLE[err.code]
    return { severity: 'FATAL', code: m.authSqlstate ?? m.sqlstate, message: err.message, detail: err.detail, hint: err.hint }
  }
  return { severity: 'FATAL', code: 'XX000', message: 'internal error in the gateway' }
}

/** Creates a wire gateway; see the module docs. */
export function createWireGateway(options: WireGatewayOptions): WireGateway {
  const secureContext = options.tls ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key }) : undefined
  const startupTimeoutMs = options.startupTimeoutMs ?? 60_000
  /** Every client stream, authenticated or not, so close() can end them. */
  const connections = new Set<Duplex>()
  /** Established sessions by the process id the gateway gave the client. */
  const live = new Map<number, LiveSession>()
  const servers: net.Server[] = []
  let wss: WebSocketServer | undefined
  let closing = false
  const maxWsMessage = options.maxWebSocketMessageBytes ?? 10 * 1024 * 1024
  /** What to run once a stream's credential arrives (a WebSocket raises its message limit). */
  const onCredential = new WeakMap<Duplex, () => void>()
  const maxPerIdentity = options.limits?.maxSessionsPerIdentity ?? 20
  const maxSessions = options.limits?.maxSessions ?? 500
  const maxStartupPerAddress = options.limits?.maxStartupPerAddress ?? 20
  /** Sessions open or opening, in all and by identity key; each is counted until its client stream closes. */
  let sessionCount = 0
  const sessionsByIdentity = new Map<string, number>()
  /** Connections still in the startup phase, by client address. */
  const startingByAddress = new Map<string, number>()

  /**
   * Counts a verified session against the limits, before anything is opened upstream, until `stream`
   * closes (however the session ends). Throws ERR_TOO_MANY_SESSIONS past a limit.
   */
  function admitSession(stream: Duplex, identity: WireIdentity, transport: Transport): void {
    const key = identityKey(identity.provider, identity.subject)
    const held = sessionsByIdentity.get(key) ?? 0
    const reason = maxPerIdentity > 0 && held >= maxPerIdentity ? 'identity' : maxSessions > 0 && sessionCount >= maxSessions ? 'total' : undefined
    if (reason !== undefined) {
      emit({
        kind: 'limit-refused', transport, reason: reason === 'identity' ? 'wire-identity' : 'wire-total',
        database: identity.database, role: identity.role, provider: identity.provider, subjectHash: subjectHash(identity.subject),
      })
      throw new PgAuthorizeError(
        'ERR_TOO_MANY_SESSIONS',
        reason === 'identity'
          ? `too many sessions for this identity: ${held} open (the limit is ${maxPerIdentity})`
          : `too many sessions: the gateway's limit of ${maxSessions} is reached`,
        { hint: reason === 'identity' ? 'close sessions you no longer use, or share one through a client-side pool' : 'retry later' },
      )
    }
    sessionCount++
    sessionsByIdentity.set(key, held + 1)
    let counted = true
    const release = (): void => {
      if (!counted) return
      counted = false
      sessionCount--
      const n = (sessionsByIdentity.get(key) ?? 1) - 1
      if (n <= 0) sessionsByIdentity.delete(key)
      else sessionsByIdentity.set(key, n)
    }
    if (stream.destroyed) release()
    else stream.once('close', release)
  }

  const emit = (e: WireEvent): void => {
    try {
      options.onEvent?.(e)
    } catch {
      // an observer's failure must not break a session
    }
  }

  const shard = options.shard
  function newProcessId(): number {
    for (;;) {
      const id = shard ? randomInt(1, Math.floor(0x7fffffff / shard.count)) * shard.count + shard.index : randomInt(1, 0x7fffffff)
      if (!live.has(id)) return id
    }
  }

  function accept(stream: Duplex, transport: Transport, remoteAddress: string | undefined, secure: boolean): void {
    if (closing) {
      stream.destroy()
      return
    }
    // Bounded per address before anything is read: a client cannot hold many half-open logins.
    const address = remoteAddress ?? ''
    const starting = startingByAddress.get(address) ?? 0
    if (maxStartupPerAddress > 0 && starting >= maxStartupPerAddress) {
      emit({ kind: 'limit-refused', transport, reason: 'startup-address', remoteAddress })
      stream.on('error', () => stream.destroy())
      // Tracked until it closes, so close() can end it.
      connections.add(stream)
      stream.on('close', () => connections.delete(stream))
      endClient(stream, errorResponse({
        severity: 'FATAL', code: ERROR_TABLE.ERR_TOO_MANY_SESSIONS.sqlstate,
        message: `too many connections from this address still logging in (the limit is ${maxStartupPerAddress})`,
      }))
      return
    }
    startingByAddress.set(address, starting + 1)
    let started = true
    const startupOver = (): void => {
      if (!started) return
      started = false
      const n = (startingByAddress.get(address) ?? 1) - 1
      if (n <= 0) startingByAddress.delete(address)
      else startingByAddress.set(address, n)
    }
    connections.add(stream)
    stream.on('close', () => connections.delete(stream))
    stream.once('close', startupOver)
    // Until the relay installs its own handlers, any stream error just ends the connection.
    stream.on('error', () => stream.destroy())
    const timer = setTimeout(() => {
      emit({ kind: 'startup-timeout', transport, remoteAddress })
      stream.destroy()
    }, startupTimeoutMs)
    timer.unref()
    startup(stream, transport, remoteAddress, secure)
      .catch((err: unknown) => emit({ kind: 'error', message: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        clearTimeout(timer)
        startupOver()
      })
  }

  async function startup(
    stream: Duplex,
    transport: Transport,
    remoteAddress: string | undefined,
    secure: boolean,
  ): Promise<void> {
    let reader = new StartupReader(stream)
    const fail = (err: unknown): void => {
      reader.detach()
      if (stream.destroyed) return
      endClient(stream, errorResponse(fatalFor(err)))
    }
    let params: Record<string, string>
    let protocolMinor: number
    try {
      for (;;) {
        const head = await reader.read(8)
        const len = head.readInt32BE(0)
        const code = head.readInt32BE(4)
        if (len < 8 || len > MAX_STARTUP_LENGTH) throw new Fatal('08P01', 'invalid startup packet length')
        const body = await reader.read(len - 8)
        if (code === SSL_REQUEST) {
          if (secureContext && transport === 'tcp') {
            // The client sends nothing more until it reads 'S', so nothing is lost by swapping streams here.
            if (reader.detach().length > 0) throw new Fatal('08P01', 'unexpected data after SSLRequest')
            stream.write('S')
            const tlsSocket = new tls.TLSSocket(stream as net.Socket, { isServer: true, secureContext })
            tlsSocket.on('error', () => tlsSocket.destroy())
            tlsSocket.on('close', () => stream.destroy())
            connections.delete(stream)
            connections.add(tlsSocket)
            tlsSocket.on('close', () => connections.delete(tlsSocket))
            stream = tlsSocket
            transport = 'tls'
            secure = true
            reader = new StartupReader(stream)
          } else {
            stream.write('N')
          }
          continue
        }
        if (code === GSSENC_REQUEST) {
          stream.write('N')
          continue
        }
        if (code === CANCEL_REQUEST) {
          reader.detach()
          if (body.length === 8) handleCancel(body.readInt32BE(0), body.subarray(4, 8))
          stream.end()
          return
        }
        if (code >>> 16 !== 3) throw new Fatal('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`)
        protocolMinor = code & 0xffff
        const parsed = parseStartupParameters(body)
        if (!parsed) throw new Fatal('08P01', 'invalid startup packet layout')
        params = parsed
        break
      }
      if (!params.user) throw new Fatal('28000', 'no role name specified in the startup packet (user)')
      if ('replication' in params && params.replication !== 'false' && params.replication !== '0') {
        throw new Fatal('0A000', 'replication connections are not supported by the gateway')
      }
      const unknownProtocolOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'))
      if (protocolMinor > 0 || unknownProtocolOptions.length > 0) {
        stream.write(negotiateProtocolVersion(unknownProtocolOptions))
      }
      if (!passwordAllowed(secure, remoteAddress, options.allowInsecurePassword === true)) {
        throw new PgAuthorizeError('ERR_TLS_REQUIRED', 'TLS is required: the password is a JWT, a bearer credential', {
          hint: 'connect with sslmode=require (or start the gateway with --allow-insecure-password)',
        })
      }
      stream.write(authenticationMessage(3))
      const ph = await reader.read(5)
      if (ph[0] !== 0x70 /* 'p' */) throw new Fatal('08P01', 'expected a password message')
      const plen = ph.readInt32BE(1)
      if (plen < 5 || plen - 4 > MAX_PASSWORD_LENGTH) {
        throw new PgAuthorizeError('ERR_TOKEN_TOO_LARGE', 'the password (JWT) is too large')
      }
      const pbody = await reader.read(plen - 4)
      const nul = pbody.indexOf(0)
      const password = pbody.toString('utf8', 0, nul < 0 ? pbody.length : nul)
      if (password === '') throw new PgAuthorizeError('ERR_TOKEN_MISSING', 'no password given: the password must be a JWT')
      // Messages pipelined behind the password may be large; what they can hold is bounded by the
      // verification's time (a failed one ends the connection). Not even JWT-shaped: wait for the login.
      if (isCompactJws(password)) onCredential.get(stream)?.()
      const startupParameters: Record<string, string> = {}
      for (const [k, v] of Object.entries(params)) if (k !== 'user' && k !== 'database') startupParameters[k] = v
      const request: WireAuthRequest = {
        user: params.user,
        database: params.database || params.user,
        password,
        transport,
        remoteAddress,
        startupParameters,
      }
      let identity: WireIdentity
      try {
        identity = await options.authenticate(request)
      } catch (err) {
        emit({
          kind: 'auth-failed',
          transport,
          remoteAddress,
          user: request.user,
          database: request.database,
          code: isPgAuthorizeError(err) ? err.code : 'ERR_INTERNAL',
        })
        if (!isPgAuthorizeError(err)) {
          emit({ kind: 'error', message: err instanceof Error ? err.message : String(err) })
        }
        throw err
      }
      admitSession(stream, identity, transport)
      const pending = reader.detach()
      await openSession(stream, request, identity, pending, transport, remoteAddress)
    } catch (err) {
      fail(err)
    }
  }

  /** The settings the client asked for at startup, applied upstream with the role's own rights. */
  function startupSettings(params: Record<string, string>): Array<[string, string]> {
    const settings: Array<[string, string]> = []
    if (params.options) {
      const parsed = parseOptionsParameter(params.options)
      if (!parsed) throw new Fatal('0A000', 'only -c name=value settings are supported in the options parameter')
      settings.push(...parsed)
    }
    for (const [k, v] of Object.entries(params)) {
      if (!NOT_SETTINGS.has(k) && !k.startsWith('_pq_.')) settings.push([k, v])
    }
    if (!('application_name' in params) && params.fallback_application_name) {
      settings.push(['application_name', params.fallback_application_name])
    }
    return settings
  }

  async function openSession(
    client: Duplex,
    request: WireAuthRequest,
    identity: WireIdentity,
    pending: Buffer,
    transport: Transport,
    remoteAddress: string | undefined,
  ): Promise<void> {
    const settings = startupSettings({ ...request.startupParameters })
    if (identity.expiresAt !== undefined && identity.expiresAt * 1000 <= Date.now()) {
      throw new PgAuthorizeError('ERR_SESSION_EXPIRED', "the JWT's exp has passed")
    }
    if (client.destroyed) return
    let upstream!: pg.Client
    let internals!: PgClientInternals
    let status!: Map<string, string>
    let backendStart: string | null = null
    try {
      const login = async (): Promise<void> => {
        const c = new pg.Client(identity.upstream)
        const ci = c as unknown as PgClientInternals
        const seen = new Map<string, string>()
        ci.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
          seen.set(m.parameterName, m.parameterValue)
        })
        // Errors surface through connect()/query(); this keeps a late socket error from going unhandled.
        c.on('error', () => {})
        upstream = c
        internals = ci
        status = seen
        await c.connect()
        if (!identity.repair && !identity.reap) return
        // The session's own settings, before it serves anything: stored role defaults are already in force.
        const check = await checkSession(c)
        if (identity.repair && check.tainted.length > 0) {
          c.end().catch(() => {})
          throw new RoleTaintedError(check.tainted)
        }
        backendStart = check.backendStart
      }
      if (!identity.repair) await login()
      else {
        await loginWithRepair(login, identity.repair, {
          onRepair: (reason, led) => emit({ kind: 'role-repair', role: identity.role, database: identity.database, reason, led, transport }),
        })
      }
      if (settings.length > 0) {
        const list = settings.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, false)`)
        await upstream.query(`select ${list.join(', ')}`, settings.flat())
      }
      // As a bind parameter: SQL text shows in pg_stat_activity to other sessions of the role (replayable).
      if (identity.envelope !== null) await upstream.query(installClaimsParamSql(false), [identity.envelope])
    } catch (err) {
      upstream.end().catch(() => {})
      emit({ kind: 'upstream-failed', role: identity.role, database: identity.database, message: (err as Error).message })
      if (isPgAuthorizeError(err) || err instanceof Fatal) throw err
      const sqlstate = (err as { code?: unknown }).code
      // XX000 is Postgres' internal error (e.g. "tuple concurrently updated"): not the client's business.
      if (typeof sqlstate === 'string' && /^[0-9A-Z]{5}$/.test(sqlstate) && sqlstate !== 'XX000') {
        throw new Fatal(sqlstate, (err as Error).message)
      }
      throw new PgAuthorizeError('ERR_DB_CONNECT', 'could not connect to the database as the role')
    }
    // Take over pg's socket: from here on its bytes are spliced, not parsed.
    const socket = internals.connection.stream
    socket.removeAllListeners('data')
    socket.removeAllListeners('end')
    socket.removeAllListeners('close')
    socket.removeAllListeners('error')
    internals.connection.removeAllListeners()
    internals.connection.on('error', () => {})
    socket.pause()
    socket.setNoDelay(true)
    if (client.destroyed || closing) {
      socket.destroy()
      return
    }
    const cancel: CancelTarget = {
      host: internals.host,
      port: internals.port,
      processId: internals.processID ?? 0,
      secretKey: internals.secretKey ?? 0,
    }
    const processId = newProcessId()
    const secretKey = randomInt(-0x80000000, 0x7fffffff)
    const keyBytes = Buffer.alloc(4)
    keyBytes.writeInt32BE(secretKey)
    let expiryTimer: NodeJS.Timeout | undefined
    const startedAt = Date.now()
    const upstreamPid = internals.processID
    const relay = new Relay(client, socket, (reason: RelayEndReason) => {
      clearTimeout(expiryTimer)
      live.delete(processId)
      // Only a backend that closed its own socket is known to be gone; any other end may leave a statement
      // running that ignores the cancel (expiry, a client that went away mid-statement, shutdown).
      if (reason !== 'upstream-closed' && identity.reap && upstreamPid !== null && backendStart !== null) {
        identity.reap(upstreamPid, backendStart)
      }
      emit({ kind: 'session-end', role: identity.role, database: identity.database, transport, reason, ms: Date.now() - startedAt })
    }, (ok) => emit({ kind: ok ? 'session-resealed' : 'reseal-failed', role: identity.role, database: identity.database, transport }))
    live.set(processId, {
      secretKey: keyBytes, cancel, relay, database: identity.database,
      reseal: identity.envelope !== null ? identity.reseal : undefined,
    })
    const hello: Buffer[] = [authenticationMessage(0)]
    for (const [k, v] of status) hello.push(parameterStatus(k, v))
    hello.push(backendKeyData(processId, secretKey), readyForQuery('I'))
    client.removeAllListeners('error')
    connections.delete(client) // from now on the relay owns it (close() ends it with a FATAL)
    client.write(Buffer.concat(hello))
    onCredential.get(client)?.()
    relay.start(pending)
    emit({ kind: 'session-start', role: identity.role, database: identity.database, transport, remoteAddress })
    if (identity.expiresAt !== undefined) {
      const expire = (): void => {
        const left = identity.expiresAt! * 1000 - Date.now()
        // setTimeout caps at ~24.8 days; re-arm until the real deadline.
        if (left > 0) {
          expiryTimer = setTimeout(expire, Math.min(left, 0x7fffffff))
          expiryTimer.unref()
          return
        }
        emit({ kind: 'session-expired', role: identity.role, database: identity.database, transport })
        sendCancel(cancel)
        relay.end({ severity: 'FATAL', code: '28000', message: "session expired: the JWT's exp has passed" })
      }
      expire()
    }
  }

  function handleCancel(processId: number, secret: Buffer): void {
    if (shard && processId % shard.count !== shard.index) {
      shard.forwardCancel(processId, secret)
      return
    }
    const s = live.get(processId)
    const matched = s !== undefined && timingSafeEqual(s.secretKey, secret)
    emit({ kind: 'cancel', matched })
    if (matched) sendCancel(s.cancel)
  }

  function handleWebSocket(ws: WebSocket, req: http.IncomingMessage): void {
    ws.binaryType = 'nodebuffer'
    const stream = createWebSocketStream(ws)
    // Once a credential arrives, messages may be as large as a /sql body. ws reads its limit from the
    // receiver on every frame; it has no public setter (the server-wide maxPayload is the pre-credential bound).
    const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
    if (receiver && typeof receiver._maxPayload === 'number') {
      const raise = () => {
        receiver._maxPayload = maxWsMessage
      }
      onCredential.set(stream, raise)
    }
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true
    accept(stream, 'websocket', req.socket.remoteAddress, secure)
  }

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

    handleWebSocket,

    attachWebSocket(server) {
      wss ??= new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: PRE_AUTH_WS_MESSAGE_BYTES })
      const sockets = wss
      server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        const path = (req.url ?? '').split('?', 1)[0]
        if (path === '/v1' || path === '/v2') {
          sockets.handleUpgrade(req, socket, head, (ws) => handleWebSocket(ws, req))
        } else if (server.listenerCount('upgrade') === 1) {
          // Nobody else serves other upgrade paths on this server.
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
        }
      })
    },

    sessions: () => live.size,

    cancel: handleCancel,

    reseal(database) {
      let n = 0
      for (const s of live.values()) {
        if (s.database !== database || !s.reseal || s.relay.closed) continue
        try {
          s.relay.reseal(s.reseal())
          n++
        } catch (err) {
          emit({ kind: 'reseal-failed', database, message: err instanceof Error ? err.message : String(err) })
        }
      }
      return n
    },

    async close() {
      closing = true
      const stopped = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
      for (const s of live.values()) {
        sendCancel(s.cancel)
        s.relay.end({ severity: 'FATAL', code: '57P01', message: 'terminating connection because the gateway is shutting down' })
      }
      // What is left is still in startup: nothing to flush.
      for (const c of connections) c.destroy()
      wss?.close()
      await Promise.all(stopped)
    },
  }
}
