/**
 * The console login's attempt limit: at most `maxFailures` wrong admin tokens per client address in a
 * window, then every login from that address (a right token too, or the limit would be a free oracle)
 * is refused until the window ends. A successful login clears the address's count.
 *
 * The admin token has 192 bits, so this is not what stops guessing; it stops a login form being used as
 * an unbounded, unlogged stream of tries, and bounds what one address can make the gateway do.
 *
 * @module
 */

export interface LoginLimitOptions {
  /** Wrong tokens allowed per address per window. Default 10. */
  maxFailures?: number
  /** The window, ms, counted from an address's first failure. Default 60000. */
  windowMs?: number
  /** Addresses tracked at once; past it, the oldest entries are dropped. Default 10000. */
  maxAddresses?: number
  /** Clock seam, epoch ms. */
  now?: () => number
}

interface Entry {
  failures: number
  /** End of the window, epoch ms. */
  until: number
}

/**
 * The key an address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64, since one
 * host commonly holds a whole /64 and could otherwise take a fresh address per try.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown'
  const a = address.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '')
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped) return mapped[1]!
  if (!a.includes(':')) return a
  const [head = '', tail = ''] = a.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = a.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

export class LoginLimiter {
  readonly #max: number
  readonly #windowMs: number
  readonly #maxAddresses: number
  readonly #now: () => number
  readonly #entries = new Map<string, Entry>()

  constructor(options: LoginLimitOptions = {}) {
    this.#max = options.maxFailures ?? 10
    this.#windowMs = options.windowMs ?? 60_000
    this.#maxAddresses = options.maxAddresses ?? 10_000
    this.#now = options.now ?? Date.now
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  blockedFor(address: string | undefined): number {
    const key = addressKey(address)
    const e = this.#entries.get(key)
    if (!e) return 0
    const left = e.until - this.#now()
    if (left <= 0) {
      this.#entries.delete(key)
      return 0
    }
    return e.failures >= this.#max ? left : 0
  }

  /** Counts a wrong token from `address`. */
  failed(address: string | undefined): void {
    const key = addressKey(address)
    const now = this.#now()
    const e = this.#entries.get(key)
    if (e && e.until > now) {
      e.failures++
      return
    }
    this.#entries.delete(key)
    if (this.#entries.size >= this.#maxAddresses) {
      for (const [k, old] of this.#entries) if (old.until <= now) this.#entries.delete(k)
      while (this.#entries.size >= this.#maxAddresses) this.#entries.delete(this.#entries.keys().next().value!)
    }
    this.#entries.set(key, { failures: 1, until: now + this.#windowMs })
  }

  /** A successful login: the address starts afresh. */
  succeeded(address: string | undefined): void {
    this.#entries.delete(addressKey(address))
  }
}
