/**
 * The established wire sessions of one gateway, by the BackendKeyData the gateway gave each client (never
 * the upstream's: a client's cancel key names its session here, and only here is it mapped to the backend).
 * Cancel requests, resealing after a key rotation, and shutdown reach sessions through this table.
 *
 * @module
 */
import { randomInt, timingSafeEqual } from 'node:crypto'
import type { BackendKey } from '../../database/pg-internals.js'
import { sendCancelRequest } from '../protocol.js'
import type { Relay } from './relay.js'
import type { ErrorFields } from '../protocol.js'

export interface LiveSession {
  relay: Relay
  database: string
  /** The upstream backend to cancel. */
  upstream: BackendKey | undefined
  /** Seals the session's identity again with the current key; undefined for a session without claims. */
  reseal: (() => string) | undefined
}

/** The key a client got for its session. */
export interface ClientKey {
  processId: number
  secretKey: number
}

export class LiveSessions {
  readonly #live = new Map<number, LiveSession & { secret: Buffer }>()
  readonly #shard: { index: number; count: number } | undefined

  /** `shard`: one of `count` processes sharing the port (`serve --workers`): its ids are `≡ index (mod count)`. */
  constructor(shard?: { index: number; count: number }) {
    this.#shard = shard
  }

  get size(): number {
    return this.#live.size
  }

  /** Registers a session under a fresh random key; `remove` with that key when it ends. */
  add(session: LiveSession): ClientKey {
    let processId: number
    const shard = this.#shard
    do processId = shard ? randomInt(1, Math.floor(0x7fffffff / shard.count)) * shard.count + shard.index : randomInt(1, 0x7fffffff)
    while (this.#live.has(processId))
    const secretKey = randomInt(-0x80000000, 0x7fffffff)
    const secret = Buffer.alloc(4)
    secret.writeInt32BE(secretKey)
    this.#live.set(processId, { ...session, secret })
    return { processId, secretKey }
  }

  remove(processId: number): void {
    this.#live.delete(processId)
  }

  /** A client's CancelRequest: forwarded upstream when the key matches (compared in constant time). */
  cancel(processId: number, secret: Buffer): boolean {
    const s = this.#live.get(processId)
    const matched = s !== undefined && secret.length === 4 && timingSafeEqual(s.secret, secret)
    if (matched && s.upstream) void sendCancelRequest(s.upstream)
    return matched
  }

  /** Reseals every live session of `database` that holds claims; returns how many were asked and failures. */
  reseal(database: string, onError: (err: unknown) => void): number {
    let n = 0
    for (const s of this.#live.values()) {
      if (s.database !== database || !s.reseal || s.relay.closed) continue
      try {
        s.relay.reseal(s.reseal())
        n++
      } catch (err) {
        onError(err)
      }
    }
    return n
  }

  /** Cancels every session's statement and ends it with `fatal`. */
  endAll(fatal: ErrorFields): void {
    for (const s of this.#live.values()) {
      if (s.upstream) void sendCancelRequest(s.upstream)
      s.relay.end(fatal)
    }
  }
}
