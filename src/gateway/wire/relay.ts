/**
 * The spliced phase of a wire session: raw bytes both ways between the client and its own upstream
 * connection, with backpressure, and the one thing that needs more than `pipe`: ending the session with
 * a FATAL of the gateway's own (token expiry, shutdown) without cutting a server message in half.
 *
 * Both directions are followed by message lengths only (BoundaryTracker), counting the client's Syncs and
 * Queries and the server's ReadyForQuery: no per-message allocation, and the bytes pass through untouched.
 * That is enough for the second thing `pipe` cannot do: resealing a live session after a key rotation.
 * When the session is idle (every client Sync answered, the last ReadyForQuery said I, no message half
 * sent either way), the relay holds the client's next bytes, sends its own `set_config` of the new envelope
 * (a named statement of its own, as a bind parameter: never in SQL text), swallows the answers (passing on
 * notifications and parameter changes), and lets the client's bytes through again.
 *
 * @module
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { installClaimsParamSql } from '../../database/session.js'
import { BoundaryTracker, errorResponse, extendedQuery, type ErrorFields } from '../protocol.js'

/** How long an ending session waits for the upstream to reach a message boundary before cutting it. */
const END_GRACE_MS = 5000
/** How long a finished connection's client socket may stay half-open before it is destroyed. */
const CLOSE_GRACE_MS = 1000

/**
 * Ends a client connection with `last` (a FATAL, say): end() flushes and half-closes, and a client that
 * never closes its side is cut off after CLOSE_GRACE_MS instead of holding the socket (and its place in the
 * session limits) after the connection is over.
 */
export function endClient(stream: Duplex, last?: Buffer): void {
  if (last) stream.end(last)
  else stream.end()
  setTimeout(() => stream.destroy(), CLOSE_GRACE_MS).unref()
}

export type RelayEndReason = 'client-closed' | 'upstream-closed' | 'error' | 'ended-by-gateway' | 'protocol-error'

export class Relay {
  private readonly client: Duplex
  private readonly upstream: net.Socket
  /** Server messages: ReadyForQuery counted, its status kept (the session starts idle). */
  private readonly tracker = new BoundaryTracker('Z', 'Z', 'I')
  /** Client messages: Sync, Query and FunctionCall counted (each is answered by one ReadyForQuery). */
  private readonly clientTracker = new BoundaryTracker('SQF')
  /** A newer envelope to install once the session is idle. */
  private resealWith: string | null = null
  /** While the relay's own messages are in flight: the server's answers so far, and the client's held bytes. */
  private injecting: { answer: Buffer; held: Buffer[]; failed: boolean } | null = null
  private readonly onResealed: ((ok: boolean) => void) | undefined
  /** Set when the gateway ends the session: the FATAL waits for the next upstream boundary. */
  private ending: ErrorFields | null = null
  private done = false
  private readonly onEnd: (reason: RelayEndReason) => void

  constructor(client: Duplex, upstream: net.Socket, onEnd: (reason: RelayEndReason) => void, onResealed?: (ok: boolean) => void) {
    this.client = client
    this.upstream = upstream
    this.onEnd = onEnd
    this.onResealed = onResealed
  }

  /**
   * Installs `envelope` (session-wide) at the session's next idle moment, between the client's messages;
   * the newest envelope wins if several are asked for before then.
   */
  reseal(envelope: string): void {
    if (this.done) return
    this.resealWith = envelope
    this.maybeReseal()
  }

  private get idle(): boolean {
    return this.tracker.atBoundary && this.clientTracker.atBoundary &&
      this.clientTracker.counted === this.tracker.counted && this.tracker.status === 0x49 // 'I'
  }

  private maybeReseal(): void {
    if (this.resealWith === null || this.injecting || this.ending || this.done || !this.idle) return
    const envelope = this.resealWith
    this.resealWith = null
    this.injecting = { answer: Buffer.alloc(0), held: [], failed: false }
    this.upstream.write(resealMessages(envelope))
  }

  /** The server's answers to the relay's own messages, up to their ReadyForQuery; the rest is the client's. */
  private fromUpstreamInjecting(chunk: Buffer): void {
    const inj = this.injecting!
    const buf = inj.answer.length ? Buffer.concat([inj.answer, chunk]) : chunk
    let i = 0
    while (buf.length - i >= 5) {
      const len = buf.readInt32BE(i + 1)
      if (len < 4) return this.finish('protocol-error', null, true)
      if (buf.length - i < 1 + len) break
      const type = buf[i]!
      const message = buf.subarray(i, i + 1 + len)
      i += 1 + len
      // Notifications and parameter changes are the client's, whenever they come; the rest answers us.
      if (type === 0x41 /* A */ || type === 0x53 /* S */) this.client.write(Buffer.from(message))
      else if (type === 0x45 /* E */) inj.failed = true
      else if (type === 0x5a /* Z */) {
        this.injecting = null
        this.onResealed?.(!inj.failed)
        if (inj.failed) {
          return this.end({ severity: 'FATAL', code: '28000', message: 'the session could not be resealed after a key rotation; reconnect' })
        }
        const rest = buf.subarray(i)
        if (rest.length) this.fromUpstream(Buffer.from(rest))
        for (const held of inj.held) this.fromClient(held)
        if (!this.done) this.client.resume()
        return
      }
    }
    inj.answer = Buffer.from(buf.subarray(i))
  }

  /** Starts splicing; `pending` holds client bytes that arrived during startup (a pipelined first query). */
  start(pending: Buffer): void {
    const { client, upstream } = this
    client.on('data', this.fromClient)
    upstream.on('data', this.fromUpstream)
    // Backpressure: pause the faster side while the other's write buffer is above its high-water mark.
    upstream.on('drain', () => {
      if (!this.ending && !this.done) client.resume()
    })
    client.on('drain', () => {
      if (!this.done) upstream.resume()
    })
    client.on('end', () => {
      if (!this.done) upstream.end()
    })
    upstream.on('end', () => this.finish('upstream-closed', null))
    client.on('close', () => this.finish('client-closed', null))
    upstream.on('close', () => this.finish('upstream-closed', null))
    client.on('error', () => this.finish('error', null, true))
    upstream.on('error', () => this.finish('error', null, true))
    if (pending.length > 0) this.fromClient(pending)
    client.resume()
    upstream.resume()
  }

  /** True once the session is over. */
  get closed(): boolean {
    return this.done
  }

  /**
   * Ends the session with a FATAL of the gateway's own at the next upstream message boundary
   * (immediately when the stream is between messages). Client bytes stop flowing upstream right away.
   */
  end(fields: ErrorFields): void {
    if (this.done || this.ending) return
    this.ending = fields
    this.client.off('data', this.fromClient)
    this.client.pause()
    if (this.tracker.atBoundary) return this.finish('ended-by-gateway', fields)
    // Let a message in flight complete, but not forever (a stalled upstream or a client not reading).
    this.upstream.resume()
    setTimeout(() => this.finish('ended-by-gateway', null, true), END_GRACE_MS).unref()
  }

  private readonly fromClient = (chunk: Buffer): void => {
    if (this.injecting) {
      this.injecting.held.push(chunk)
      this.client.pause()
      return
    }
    this.clientTracker.advance(chunk, false)
    if (this.clientTracker.corrupt) return this.finish('protocol-error', null, true)
    if (!this.upstream.write(chunk)) this.client.pause()
  }

  private readonly fromUpstream = (chunk: Buffer): void => {
    if (this.ending) {
      const cut = this.tracker.advance(chunk, true)
      if (cut > 0) this.client.write(cut === chunk.length ? chunk : chunk.subarray(0, cut))
      if (this.tracker.corrupt) return this.finish('protocol-error', null, true)
      if (this.tracker.atBoundary) this.finish('ended-by-gateway', this.ending)
      return
    }
    if (this.injecting) return this.fromUpstreamInjecting(chunk)
    this.tracker.advance(chunk, false)
    if (this.tracker.corrupt) return this.finish('protocol-error', null, true)
    if (!this.client.write(chunk)) this.upstream.pause()
    if (this.resealWith !== null) this.maybeReseal()
  }

  /**
   * Closes both sides once. `fatal` is written to the client last; `hard` drops buffered bytes instead of
   * flushing them (errors, corrupt streams).
   */
  private finish(reason: RelayEndReason, fatal: ErrorFields | null, hard = false): void {
    if (this.done) return
    this.done = true
    const { client, upstream } = this
    client.off('data', this.fromClient)
    upstream.off('data', this.fromUpstream)
    // Upstream connections are never reused: the socket goes with the session (flushing a Terminate the
    // client may just have sent, so the server logs a clean exit).
    if (hard) upstream.destroy()
    else upstream.destroySoon()
    if (hard) client.destroy()
    else endClient(client, fatal ? errorResponse(fatal) : undefined)
    this.onEnd(reason)
  }
}

/**
 * `set_config('pg_authorize.session', $1, false)` under a statement name of the relay's own (never the
 * unnamed statement, which a client may still mean to Bind), with the envelope as the one text parameter.
 */
function resealMessages(envelope: string): Buffer {
  return extendedQuery(`pga_reseal_${randomBytes(6).toString('hex')}`, installClaimsParamSql(false), [envelope])
}
