/**
 * The verified-token cache: skips signature checks for a token seen recently. Keyed by the SHA-256 of
 * the token, so the cache never holds a token itself. An entry lives at most until the token's `exp` or
 * `maxTtlMs`, whichever comes first, and is dropped when its provider's keys or config change.
 * Eviction is first-in first-out once `maxEntries` is reached (cheap, and entries are short-lived).
 *
 * @module
 */
import * as nodeCrypto from 'node:crypto'
import type { VerifiedToken } from './types.js'

/** A verified token before its role is chosen (the role depends on the request; the rest does not). */
export type VerifiedBase = Omit<VerifiedToken, 'role'>

interface Entry {
  value: VerifiedBase
  until: number
  provider: string
}

/**
 * SHA-256 of the token, base64. Synchronous `node:crypto` (also in Deno, Bun and Workers with nodejs_compat):
 * Web Crypto's `subtle.digest` is asynchronous and, on Node, a round trip through the libuv thread pool,
 * which made a cache hit cost tens of microseconds (docs/benchmarks.md, figure a).
 */
export function tokenDigest(token: string): string {
  return oneShot ? oneShot('sha256', token, 'base64') : nodeCrypto.createHash('sha256').update(token).digest('base64')
}

// crypto.hash (Node 20.12+) skips the Hash object: about twice as fast for a token-sized input.
const oneShot = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'base64') => string }).hash

export class TokenCache {
  readonly #entries = new Map<string, Entry>()
  readonly #maxEntries: number
  readonly #maxTtlMs: number

  constructor(options: { maxEntries?: number; maxTtlMs?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? 10_000
    this.#maxTtlMs = options.maxTtlMs ?? 60_000
  }

  get size(): number {
    return this.#entries.size
  }

  get(digest: string, now: number): VerifiedBase | undefined {
    const e = this.#entries.get(digest)
    if (!e) return undefined
    if (e.until <= now) {
      this.#entries.delete(digest)
      return undefined
    }
    return e.value
  }

  set(digest: string, value: VerifiedBase, now: number): void {
    const until = Math.min(value.expiresAt === undefined ? Infinity : value.expiresAt * 1000, now + this.#maxTtlMs)
    if (until <= now || this.#maxEntries <= 0) return
    this.#entries.delete(digest)
    while (this.#entries.size >= this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!)
    }
    this.#entries.set(digest, { value, until, provider: value.provider.name })
  }

  dropProvider(name: string): void {
    for (const [k, e] of this.#entries) if (e.provider === name) this.#entries.delete(k)
  }

  clear(): void {
    this.#entries.clear()
  }
}
