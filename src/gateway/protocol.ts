/**
 * The few Postgres v3 wire-protocol messages the gateway itself reads or writes, plus a tracker of
 * backend message boundaries and the one CancelRequest sender (both transports cancel upstream statements).
 *
 * Written by hand on purpose: the gateway only speaks the startup phase (a handful of fixed-layout
 * messages) and then splices raw bytes. A full message-parsing server library (pg-gateway and the like)
 * would sit in the hot path of every query; here the relay only counts lengths.
 *
 * @module
 */
import net from 'node:net'

/** Startup-phase request codes (the int32 after the length of an untyped first message). */
export const PROTOCOL_3_0 = 196608
export const SSL_REQUEST = 80877103
export const GSSENC_REQUEST = 80877104
export const CANCEL_REQUEST = 80877102

/** Postgres caps startup packets at 10000 bytes; so do we. */
export const MAX_STARTUP_LENGTH = 10_000
/** A JWT password larger than this is refused before it is buffered further. */
export const MAX_PASSWORD_LENGTH = 32 * 1024

function header(type: string, bodyLength: number): Buffer {
  const b = Buffer.allocUnsafe(5 + bodyLength)
  b[0] = type.charCodeAt(0)
  b.writeInt32BE(4 + bodyLength, 1)
  return b
}

function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  const b = header(type, body.length)
  body.copy(b, 5)
  return b
}

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2)
  b.writeInt16BE(n)
  return b
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeInt32BE(n)
  return b
}

/**
 * Frontend messages that run `sql` once as the prepared statement `name`, with text parameters, and then
 * close it: Parse, Bind (unnamed portal), Execute, Close, Sync. Answered by ParseComplete, BindComplete,
 * the rows, CommandComplete, CloseComplete and ReadyForQuery (or an ErrorResponse, then ReadyForQuery).
 */
export function extendedQuery(name: string, sql: string, params: readonly string[]): Buffer {
  const cstr = (s: string) => Buffer.from(s + '\0', 'utf8')
  const values = params.map((p) => {
    const v = Buffer.from(p, 'utf8')
    return Buffer.concat([int32(v.length), v])
  })
  return Buffer.concat([
    message('P', cstr(name), cstr(sql), int16(0)),
    message('B', cstr(''), cstr(name), int16(0), int16(params.length), ...values, int16(0)),
    message('E', cstr(''), int32(0)),
    message('C', Buffer.from('S'), cstr(name)),
    message('S'),
  ])
}

/** `R` AuthenticationOk (0) or AuthenticationCleartextPassword (3). */
export function authenticationMessage(kind: 0 | 3): Buffer {
  const b = header('R', 4)
  b.writeInt32BE(kind, 5)
  return b
}

export function parameterStatus(name: string, value: string): Buffer {
  const n = Buffer.byteLength(name)
  const v = Buffer.byteLength(value)
  const b = header('S', n + v + 2)
  b.write(name, 5)
  b[5 + n] = 0
  b.write(value, 6 + n)
  b[6 + n + v] = 0
  return b
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  const b = header('K', 8)
  b.writeInt32BE(processId, 5)
  b.writeInt32BE(secretKey, 9)
  return b
}

export function readyForQuery(status: 'I' | 'T' | 'E' = 'I'): Buffer {
  const b = header('Z', 1)
  b[5] = status.charCodeAt(0)
  return b
}

/** `v` NegotiateProtocolVersion: we speak 3.0 and none of the requested `_pq_.` options. */
export function negotiateProtocolVersion(unrecognized: string[]): Buffer {
  const names = unrecognized.map((s) => Buffer.from(s + '\0'))
  const len = names.reduce((a, n) => a + n.length, 0)
  const b = header('v', 8 + len)
  b.writeInt32BE(0, 5)
  b.writeInt32BE(unrecognized.length, 9)
  let o = 13
  for (const n of names) o += n.copy(b, o)
  return b
}

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR'
  code: string
  message: string
  detail?: string | undefined
  hint?: string | undefined
}

/** `E` ErrorResponse. Callers make sure no field holds a secret. */
export function errorResponse(f: ErrorFields): Buffer {
  const parts: Buffer[] = []
  const field = (t: string, v: string) => parts.push(Buffer.from(t + v.replace(/\0/g, '') + '\0', 'utf8'))
  field('S', f.severity)
  field('V', f.severity)
  field('C', f.code)
  field('M', f.message)
  if (f.detail) field('D', f.detail)
  if (f.hint) field('H', f.hint)
  parts.push(Buffer.from([0]))
  const body = Buffer.concat(parts)
  const b = header('E', body.length)
  body.copy(b, 5)
  return b
}

/** The 16-byte CancelRequest, sent on a fresh connection to the upstream. */
export function cancelRequest(processId: number, secretKey: number): Buffer {
  const b = Buffer.allocUnsafe(16)
  b.writeInt32BE(16, 0)
  b.writeInt32BE(CANCEL_REQUEST, 4)
  b.writeInt32BE(processId, 8)
  b.writeInt32BE(secretKey, 12)
  return b
}

/**
 * Sends a CancelRequest for the backend `target.processId` on a fresh socket; resolves once the server has
 * read it (it closes the socket) or after `timeoutMs`, never rejects. Written here because pg offers it
 * only through Client.cancel, which relies on the deprecated activeQuery getter and on pg's internal
 * Connection class.
 */
export function sendCancelRequest(
  target: { host: string; port: number; processId: number; secretKey: number },
  timeoutMs = 10_000,
): Promise<void> {
  return new Promise((resolve) => {
    const socket = target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect(target.port, target.host)
    socket.setTimeout(timeoutMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => resolve())
    // Written, then the server's close awaited, as libpq does: no FIN of our own first. PgBouncer 1.18
    // frees a cancel client that hangs up before its cancel is forwarded, then frees it again, and exits
    // ("disconnect_client(): bad client state: 0", pgbouncer#801, fixed in 1.19).
    socket.on('connect', () => socket.write(cancelRequest(target.processId, target.secretKey)))
  })
}

/** Parses the key/value pairs of a StartupMessage body (after length and version). */
export function parseStartupParameters(body: Buffer): Record<string, string> | null {
  const params: Record<string, string> = Object.create(null)
  let i = 0
  for (;;) {
    if (i >= body.length) return null
    if (body[i] === 0) return i === body.length - 1 ? params : null
    const k = body.indexOf(0, i)
    if (k < 0) return null
    const v = body.indexOf(0, k + 1)
    if (v < 0) return null
    params[body.toString('utf8', i, k)] = body.toString('utf8', k + 1, v)
    i = v + 1
  }
}

/**
 * Splits libpq's `options` startup parameter (`-c name=value --name=value`, backslash escapes spaces)
 * into settings; null when it holds anything else (command-line switches we will not emulate).
 */
export function parseOptionsParameter(options: string): Array<[string, string]> | null {
  const words: string[] = []
  let cur = ''
  let inWord = false
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!
    if (c === '\\' && i + 1 < options.length) {
      cur += options[++i]
      inWord = true
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (inWord) words.push(cur)
  const out: Array<[string, string]> = []
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!
    if (w === '-c') {
      const next = words[++i]
      if (next === undefined) return null
      w = next
    } else if (w.startsWith('-c')) w = w.slice(2)
    else if (w.startsWith('--')) w = w.slice(2)
    else return null
    const eq = w.indexOf('=')
    if (eq <= 0) return null
    out.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)])
  }
  return out
}

/**
 * Follows message boundaries in a byte stream by their lengths alone (type byte + int32 length), without
 * reading contents, so the relay can end a session or inject messages between two of the peer's. It also
 * counts the messages of some types (Sync, Query and FunctionCall from a client; ReadyForQuery from a server)
 * and keeps the first body byte of the last message of one type (ReadyForQuery's transaction status): that
 * is how the relay knows a session is idle, with nothing in flight either way.
 */
export class BoundaryTracker {
  /** Bytes left of the current message body. */
  private body = 0
  /** Header bytes seen of the next message (0..4); the length accumulates in `len`. */
  private hdr = 0
  private len = 0
  private readonly counts: Uint8Array
  private readonly statusOf: number
  /** Set after a header of type `statusOf`, until its first body byte is seen. */
  private wantStatus = false
  /** Set when a length is impossible (the stream is not the protocol). */
  corrupt = false
  /** Messages of the counted types seen so far. */
  counted = 0
  /** The first body byte of the last message of type `statusOf` (as a char code). */
  status: number

  /** `countTypes`: message type letters to count; `statusOf`: the type whose first body byte is kept. */
  constructor(countTypes = '', statusOf = '', initialStatus = '') {
    this.counts = new Uint8Array(256)
    for (const t of countTypes) this.counts[t.charCodeAt(0)] = 1
    this.statusOf = statusOf ? statusOf.charCodeAt(0) : -1
    this.status = initialStatus ? initialStatus.charCodeAt(0) : 0
  }

  get atBoundary(): boolean {
    return this.body === 0 && this.hdr === 0
  }

  /**
   * Advances over `chunk`. Returns `chunk.length`, or, when `stopAtBoundary`, the offset of the first
   * boundary in it (0 when already at one), leaving the tracker there.
   */
  advance(chunk: Buffer, stopAtBoundary: boolean): number {
    if (stopAtBoundary && this.atBoundary) return 0
    const n = chunk.length
    let i = 0
    while (i < n) {
      if (this.body > 0) {
        if (this.wantStatus) {
          this.status = chunk[i]!
          this.wantStatus = false
        }
        const take = Math.min(this.body, n - i)
        i += take
        this.body -= take
        if (this.body === 0 && stopAtBoundary) return i
        continue
      }
      if (this.hdr === 0 && n - i >= 5) {
        this.type(chunk[i]!)
        const len = chunk.readInt32BE(i + 1)
        i += 5
        if (len < 4) return this.fail(n)
        this.body = len - 4
        if (this.body === 0 && stopAtBoundary) return i
        continue
      }
      // A header split across chunks: take it byte by byte.
      const byte = chunk[i++]!
      if (this.hdr === 0) {
        this.type(byte)
        this.hdr = 1
        this.len = 0
      } else {
        this.len = this.len * 256 + byte
        if (++this.hdr === 5) {
          this.hdr = 0
          if (this.len < 4 || this.len > 0x7fffffff) return this.fail(n)
          this.body = this.len - 4
          if (this.body === 0 && stopAtBoundary) return i
        }
      }
    }
    return n
  }

  private type(t: number): void {
    this.counted += this.counts[t]!
    this.wantStatus = t === this.statusOf
  }

  private fail(n: number): number {
    this.corrupt = true
    return n
  }
}
