/**
 * The spliced phase of a wire session: raw bytes both ways between the client and its own upstream
 * connection, with backpressure, and the one thing that needs more than `pipe`: ending the session with
 * a FATAL of the gateway's own (token expiry, shutdown) without cutting a server message in half.
 *
 * Only the upstream→client direction is followed, and only by message lengths (BoundaryTracker); the
 * client→upstream direction is passed through untouched. No per-message allocation.
 *
 * @module
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { BoundaryTracker, errorResponse, type ErrorFields } from './protocol.js'

/** How long an ending session waits for the upstream to reach a message boundary before cutting it. */
const END_GRACE_MS = 5000

export type RelayEndReason = 'client-closed' | 'upstream-closed' | 'error' | 'ended-by-gateway' | 'protocol-error'

export class Relay {
  private readonly client: Duplex
  private readonly upstream: net.Socket
  private readonly tracker = new BoundaryTracker()
  /** Set when the gateway ends the session: the FATAL waits for the next upstream boundary. */
  private ending: ErrorFields | null = null
  private done = false
  private readonly onEnd: (reason: RelayEndReason) => void

  constructor(client: Duplex, upstream: net.Socket, onEnd: (reason: RelayEndReason) => void) {
    this.client = client
    this.upstream = upstream
    this.onEnd = onEnd
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
    this.tracker.advance(chunk, false)
    if (this.tracker.corrupt) return this.finish('protocol-error', null, true)
    if (!this.client.write(chunk)) this.upstream.pause()
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
    else if (fatal) client.end(errorResponse(fatal))
    else client.end()
    this.onEnd(reason)
  }
}
