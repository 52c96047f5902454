/**
 * The keys of one provider, with the remote-JWKS cache.
 *
 * Written here rather than with jose's `createRemoteJWKSet` because we need semantics it lacks:
 * stale keys keep being served while a refresh runs in the background (and while the endpoint is down),
 * every fetch that is not forced obeys one cooldown (so neither an unknown-`kid` flood nor an outage
 * can turn into a fetch storm), fetch outcomes are reported as events, and a change of keys tells the
 * verifier to drop its verified-token cache for this provider.
 *
 * - No keys yet: the first caller fetches; concurrent callers join the same fetch (single flight).
 * - Keys older than `maxAgeMs`: returned at once; a background refresh starts if the cooldown allows.
 * - Unknown `kid`: one refetch if the cooldown allows (callers join a fetch in flight), else none.
 * - A failed fetch keeps the previous keys.
 *
 * @module
 */
import type { KeyObject } from 'node:crypto'
import { PgAuthorizeError } from '../errors.js'
import { isAlgorithm, type Algorithm } from '../keys/algorithms.js'
import { toPublicJwk, type Jwk } from '../keys/public.js'
import { fetchJwks } from './fetch-jwks.js'
import { importPublicKey } from './jws.js'
import type { JwksFetchReason, ProviderConfig, VerifierEvent } from './types.js'

export interface KeySetOptions {
  fetch: typeof fetch
  now: () => number
  maxAgeMs: number
  cooldownMs: number
  timeoutMs: number
  maxBytes: number
  emit: (e: VerifierEvent) => void
  /** Called when the keys changed (not on the first load). */
  onChange: () => void
}

const REQUIRED: Record<string, string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] }

/**
 * The usable signing keys of a JWKS document, public members only. Keys that cannot verify JWS are
 * skipped, not fatal: `use` other than `sig`, `key_ops` without `verify`, an unknown `alg` (e.g. an
 * encryption key), symmetric or unknown key types, missing members.
 */
export function usableKeys(doc: unknown, provider: string): Jwk[] {
  const keys = (doc as { keys?: unknown } | null)?.keys
  if (doc === null || typeof doc !== 'object' || !Array.isArray(keys)) {
    throw new PgAuthorizeError('ERR_JWKS_INVALID', `the JWKS of provider '${provider}' has no "keys" array`)
  }
  const out: Jwk[] = []
  for (const raw of keys) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) continue
    const jwk = toPublicJwk(raw as Record<string, unknown>)
    if (!jwk) continue
    if (!REQUIRED[jwk.kty!]!.every((m) => typeof jwk[m] === 'string')) continue
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) continue
    if (jwk.alg !== undefined && !isAlgorithm(jwk.alg)) continue
    if (jwk.kid !== undefined && typeof jwk.kid !== 'string') continue
    out.push(Object.freeze(jwk))
  }
  return out
}

export class ProviderKeys {
  readonly config: ProviderConfig
  readonly #o: KeySetOptions
  #keys: Jwk[] | undefined
  #fetchedAt = 0
  #lastAttemptAt: number | undefined
  #inflight: Promise<void> | undefined
  #lastError: PgAuthorizeError | undefined
  #imported = new WeakMap<Jwk, Map<Algorithm, KeyObject>>()

  constructor(config: ProviderConfig, options: KeySetOptions) {
    this.config = config
    this.#o = options
    if (config.jwks) this.#keys = usableKeys(config.jwks, config.name)
  }

  get remote(): boolean {
    return this.config.jwksUrl !== undefined
  }

  #cooldownOver(): boolean {
    return this.#lastAttemptAt === undefined || this.#o.now() - this.#lastAttemptAt >= this.#o.cooldownMs
  }

  /** The current keys when loaded (starting a background refresh if they are stale), without waiting. */
  loadedKeys(): Jwk[] | undefined {
    if (this.remote && this.#keys !== undefined && this.#o.now() - this.#fetchedAt >= this.#o.maxAgeMs) this.refreshInBackground()
    return this.#keys
  }

  /** The current keys; loads them on first use. Throws ERR_JWKS_FETCH_FAILED only when there are none. */
  async keys(): Promise<Jwk[]> {
    const loaded = this.loadedKeys()
    if (loaded) return loaded
    // Not loaded yet (only a remote set can be).
    if (this.#inflight) await this.#inflight
    else if (this.#cooldownOver()) await this.refresh('initial')
    if (this.#keys === undefined) {
      throw this.#lastError ?? new PgAuthorizeError('ERR_JWKS_FETCH_FAILED', `no keys for provider '${this.config.name}'`)
    }
    return this.#keys
  }

  /** Starts a refresh if the keys are stale and the cooldown allows; never throws. */
  refreshInBackground(): void {
    if (!this.remote || this.#inflight || !this.#cooldownOver()) return
    if (this.#keys !== undefined && this.#o.now() - this.#fetchedAt < this.#o.maxAgeMs) return
    this.refresh(this.#keys === undefined ? 'initial' : 'stale').catch(() => {})
  }

  /** For a `kid` not in the set: refetch once if the cooldown allows, or join a fetch in flight. */
  async refetchForUnknownKid(): Promise<void> {
    if (!this.remote) return
    if (this.#inflight) return this.#inflight.catch(() => {})
    if (!this.#cooldownOver()) return
    return this.refresh('unknown_kid').catch(() => {})
  }

  /** Fetches now (single flight: joins a fetch in flight). Rejects with the fetch error; keeps old keys. */
  refresh(reason: JwksFetchReason = 'manual'): Promise<void> {
    if (!this.remote) return Promise.resolve()
    if (this.#inflight) return this.#inflight
    this.#lastAttemptAt = this.#o.now()
    const run = (async () => {
      try {
        const doc = await fetchJwks(this.config.jwksUrl!, {
          fetch: this.#o.fetch, timeoutMs: this.#o.timeoutMs, maxBytes: this.#o.maxBytes, provider: this.config.name,
        })
        const keys = usableKeys(doc, this.config.name)
        const changed = this.#keys !== undefined && JSON.stringify(keys) !== JSON.stringify(this.#keys)
        this.#keys = keys
        this.#fetchedAt = this.#o.now()
        this.#lastError = undefined
        this.#o.emit({ type: 'jwks_fetch', provider: this.config.name, ok: true, keys: keys.length, reason })
        if (changed) this.#o.onChange()
      } catch (err) {
        const e = err instanceof PgAuthorizeError
          ? err
          : new PgAuthorizeError('ERR_JWKS_FETCH_FAILED', `fetching the JWKS of provider '${this.config.name}' failed`, { cause: err })
        this.#lastError = e
        this.#o.emit({ type: 'jwks_fetch', provider: this.config.name, ok: false, code: e.code, reason })
        throw e
      } finally {
        this.#inflight = undefined
      }
    })()
    this.#inflight = run
    return run
  }

  /** The key imported for `alg` (cached per key object and algorithm); throws if it does not suit `alg`. */
  publicKey(jwk: Jwk, alg: Algorithm): KeyObject {
    let byAlg = this.#imported.get(jwk)
    if (!byAlg) this.#imported.set(jwk, (byAlg = new Map()))
    let key = byAlg.get(alg)
    if (!key) byAlg.set(alg, (key = importPublicKey(jwk, alg)))
    return key
  }
}
