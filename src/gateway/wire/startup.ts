/**
 * The startup phase of a wire connection, spoken by the gateway itself: SSLRequest (answered with TLS when
 * configured), GSSENCRequest, CancelRequest, the StartupMessage (user = role, database), and a cleartext
 * password request whose answer is the JWT. Nothing is opened upstream here.
 *
 * Hand-written (protocol.ts) because it is a handful of fixed-layout messages and because after it the
 * gateway splices raw bytes: a full message-parsing server library would sit in the hot path of every query.
 *
 * @module
 */
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { ERROR_TABLE, PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { isCompactJws } from '../../verify/verifier.js'
import type { Transport } from '../../auth/identity.js'
import {
  authenticationMessage,
  CANCEL_REQUEST,
  GSSENC_REQUEST,
  MAX_PASSWORD_LENGTH,
  MAX_STARTUP_LENGTH,
  negotiateProtocolVersion,
  parseStartupParameters,
  SSL_REQUEST,
  type ErrorFields,
} from '../protocol.js'

/** What a client asks for at login. */
export interface WireAuthRequest {
  /** The startup message's user: the role asked for. */
  user: string
  database: string
  /** The password: the JWT. Never log it. */
  password: string
  transport: Transport
  remoteAddress: string | undefined
  /** The other startup parameters (application_name, client_encoding, ...). */
  startupParameters: Record<string, string>
}

/** While a client is in the startup phase, at most this much is buffered before reading pauses. */
const STARTUP_BUFFER_HIGH_WATER = 64 * 1024

const EMPTY = Buffer.alloc(0)

/** Reads exact byte counts from a stream during startup, buffering whatever else arrives (pipelining). */
export class StartupReader {
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
export class Fatal extends Error {
  readonly fields: ErrorFields
  constructor(code: string, message: string, extra: { detail?: string; hint?: string } = {}) {
    super(message)
    this.fields = { severity: 'FATAL', code, message, detail: extra.detail, hint: extra.hint }
  }
}

/** The FATAL a failed login ends with: our errors by the one table (auth SQLSTATEs), anything else XX000. */
export function fatalFor(err: unknown): ErrorFields {
  if (err instanceof Fatal) return err.fields
  if (isPgAuthorizeError(err)) {
    const m = ERROR_TABLE[err.code]
    return { severity: 'FATAL', code: m.authSqlstate ?? m.sqlstate, message: err.message, detail: err.detail, hint: err.hint }
  }
  return { severity: 'FATAL', code: 'XX000', message: 'internal error in the gateway' }
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

export interface StartupOptions {
  /** Answers SSLRequest with TLS (TCP only); without it SSLRequest is answered `N`. */
  secureContext: tls.SecureContext | undefined
  allowInsecurePassword: boolean
  /** The stream became a TLS socket: track the new one instead. */
  onTls(plain: Duplex, secure: tls.TLSSocket): void
  /** A JWT-shaped password arrived (a WebSocket raises its message limit). */
  onCredential(stream: Duplex): void
}

/** How a startup phase ended: a login to authenticate, or a CancelRequest (the stream is already ended). */
export type StartupResult =
  | { kind: 'login'; stream: Duplex; request: WireAuthRequest; reader: StartupReader }
  | { kind: 'cancel'; key: { processId: number; secret: Buffer } | undefined }

/** The connection as the startup phase goes: after a TLS upgrade, another stream and reader. */
export interface StartupState {
  stream: Duplex
  reader: StartupReader
}

/**
 * Reads the startup phase of `state.stream`. Throws Fatal or PgAuthorizeError for the connection to end
 * with; `state` then holds the stream and reader in use (after a TLS upgrade, new ones).
 */
export async function readStartup(
  state: StartupState,
  transport: Transport,
  remoteAddress: string | undefined,
  secure: boolean,
  options: StartupOptions,
): Promise<StartupResult> {
  let { stream, reader } = state
  let params: Record<string, string>
  let protocolMinor: number
  for (;;) {
    const head = await reader.read(8)
    const len = head.readInt32BE(0)
    const code = head.readInt32BE(4)
    if (len < 8 || len > MAX_STARTUP_LENGTH) throw new Fatal('08P01', 'invalid startup packet length')
    const body = await reader.read(len - 8)
    if (code === SSL_REQUEST) {
      if (options.secureContext && transport === 'tcp') {
        // The client sends nothing more until it reads 'S', so nothing is lost by swapping streams here.
        if (reader.detach().length > 0) throw new Fatal('08P01', 'unexpected data after SSLRequest')
        stream.write('S')
        const tlsSocket = new tls.TLSSocket(stream as net.Socket, { isServer: true, secureContext: options.secureContext })
        tlsSocket.on('error', () => tlsSocket.destroy())
        const plain = stream
        tlsSocket.on('close', () => plain.destroy())
        options.onTls(plain, tlsSocket)
        stream = tlsSocket
        transport = 'tls'
        secure = true
        reader = new StartupReader(stream)
        state.reader = reader
        state.stream = stream
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
      stream.end()
      return { kind: 'cancel', key: body.length === 8 ? { processId: body.readInt32BE(0), secret: body.subarray(4, 8) } : undefined }
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
  if (!passwordAllowed(secure, remoteAddress, options.allowInsecurePassword)) {
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
  if (isCompactJws(password)) options.onCredential(stream)
  const startupParameters: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) if (k !== 'user' && k !== 'database') startupParameters[k] = v
  return {
    kind: 'login',
    stream,
    reader,
    request: { user: params.user, database: params.database || params.user, password, transport, remoteAddress, startupParameters },
  }
}
