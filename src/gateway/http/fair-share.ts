/**
 * Fair share of one pool between identities (issue 22): a slot counter in front of a pg.Pool.
 *
 * - **A cap per identity.** No identity holds more than `perIdentity` of the pool's `slots` at once. Past
 *   it, its requests wait in a queue of its own, at most `queuePerIdentity` of them; one more is refused at
 *   once (the HTTP handler answers 429).
 * - **Fair queueing.** When a slot frees, it goes to the waiting identity that holds the fewest slots
 *   (oldest waiting first among equals), never to one at its cap. So one identity's flood can delay the
 *   others by at most its share of the pool, and cannot push them past the acquire timeout.
 * - **Bounded waits.** A waiter gives up after `timeoutMs` with a reason: `share` when its identity was at
 *   its cap all along (its own flood; 429), `pool` when the pool was full of others (53300, as before).
 *
 * The counter admits at most `slots` requests, so the pg.Pool behind it never queues: its own FIFO queue
 * is what let one identity starve the rest. Identities are opaque keys (`identityKey` in auth/identity.ts).
 *
 * @example
 * const share = new FairShare({ slots: 10, perIdentity: 5, queuePerIdentity: 10 })
 * if (!share.tryTake(key)) await share.wait(key, 5000)   // rejects with a FairShareRefusal
 * try { ... } finally { share.release(key) }
 *
 * @module
 */

export interface FairShareOptions {
  /** Slots in all: the pool's size. */
  slots: number
  /** Most slots one identity may hold at once (at least 1). */
  perIdentity: number
  /** Most requests one identity may have waiting; one more is refused at once. */
  queuePerIdentity: number
}

/** Why a request got no slot: its own queue was full, or it waited too long (at its cap, or behind others). */
export type RefusalReason = 'queue-full' | 'share' | 'pool'

/** Thrown by {@link FairShare.wait}; the pool turns it into a PgAuthorizeError. */
export class FairShareRefusal extends Error {
  readonly reason: RefusalReason
  constructor(reason: RefusalReason) {
    super(`no pool slot: ${reason}`)
    this.name = 'FairShareRefusal'
    this.reason = reason
  }
}

interface Waiter {
  resolve(): void
  reject(err: FairShareRefusal): void
  timer: ReturnType<typeof setTimeout>
}

/** The slot counter of one pool; see the module comment. */
export class FairShare {
  readonly slots: number
  readonly perIdentity: number
  readonly queuePerIdentity: number
  #inUse = 0
  readonly #held = new Map<string, number>()
  /** Waiting requests by identity; Map order is the order identities started waiting (the tie-break). */
  readonly #queues = new Map<string, Waiter[]>()

  constructor(options: FairShareOptions) {
    this.slots = Math.max(1, Math.floor(options.slots))
    this.perIdentity = Math.min(this.slots, Math.max(1, Math.floor(options.perIdentity)))
    this.queuePerIdentity = Math.max(0, Math.floor(options.queuePerIdentity))
  }

  /** Takes a slot for `key` now if the pool has one and `key` is under its cap with nobody of its own waiting. */
  tryTake(key: string): boolean {
    if (this.#inUse >= this.slots || this.held(key) >= this.perIdentity || this.#queues.has(key)) return false
    this.#take(key)
    return true
  }

  /**
   * Waits for a slot for `key` (call after `tryTake` failed). Rejects with FairShareRefusal `queue-full`
   * at once when `key` already has `queuePerIdentity` waiting, or `share` / `pool` after `timeoutMs`.
   */
  wait(key: string, timeoutMs: number): Promise<void> {
    let queue = this.#queues.get(key)
    if ((queue?.length ?? 0) >= this.queuePerIdentity) return Promise.reject(new FairShareRefusal('queue-full'))
    return new Promise<void>((resolve, reject) => {
      if (!queue) this.#queues.set(key, (queue = []))
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const q = this.#queues.get(key)
          const i = q?.indexOf(waiter) ?? -1
          if (i < 0) return
          q!.splice(i, 1)
          if (q!.length === 0) this.#queues.delete(key)
          // A share that is the whole pool is no cap: then waiting was waiting for the pool.
          reject(new FairShareRefusal(this.held(key) >= this.perIdentity && this.perIdentity < this.slots ? 'share' : 'pool'))
        }, timeoutMs),
      }
      queue.push(waiter)
      // A slot may be free with `key` under its cap (it only queued behind its own waiters).
      this.#dispatch()
    })
  }

  /** Gives back a slot `key` holds, and hands free slots to waiters, fewest-held identity first. */
  release(key: string): void {
    const n = this.held(key)
    if (n <= 0) return
    this.#inUse--
    if (n === 1) this.#held.delete(key)
    else this.#held.set(key, n - 1)
    if (this.#queues.size > 0) this.#dispatch()
  }

  /** Slots `key` holds now. */
  held(key: string): number {
    return this.#held.get(key) ?? 0
  }

  /** Requests waiting, in all. */
  waiting(): number {
    let n = 0
    for (const q of this.#queues.values()) n += q.length
    return n
  }

  #take(key: string): void {
    this.#inUse++
    this.#held.set(key, this.held(key) + 1)
  }

  #dispatch(): void {
    while (this.#inUse < this.slots) {
      let best: string | undefined
      let bestHeld = Infinity
      for (const key of this.#queues.keys()) {
        const h = this.held(key)
        if (h < this.perIdentity && h < bestHeld) {
          best = key
          bestHeld = h
          if (h === 0) break
        }
      }
      if (best === undefined) return
      const queue = this.#queues.get(best)!
      const waiter = queue.shift()!
      // Served identities go to the back of the tie-break order.
      this.#queues.delete(best)
      if (queue.length > 0) this.#queues.set(best, queue)
      clearTimeout(waiter.timer)
      this.#take(best)
      waiter.resolve()
    }
  }
}
