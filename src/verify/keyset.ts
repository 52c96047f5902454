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
 * - Keys past their freshness: returned at once; a background refresh starts if the cooldown allows.
 *   Freshness follows the response's cache headers (`Cache-Control: max-age`, `Expires`; see
 *   cache-headers.ts) bounded by `cacheMinMs` and `cacheMaxMs`, else `maxAgeMs`. A refresh sends the
 *   `ETag` held as `If-None-Match`; a 304 keeps the keys and starts a new freshness period.
 * - Unknown `kid`: one refetch if the cooldown allows (callers join a fetch in flight), else none.
 * - A failed fetch keeps the previous keys.
 * - A provider with `discovery` first reads `{issuer}/.well-known/openid-configuration` (discovery.ts)
 *   for its `jwks_uri`, and reads it again once that document is past its freshness (default 1 h) or on
 *   a forced refresh; while it cannot be read, the last `jwks_uri` known is used.
 *
 * @module
 */
import type { KeyObject } from 'node:crypto'
import { PgAuthorizeError } from '../errors.js'
import { isAlgorithm, type Algorithm } from '../keys/algorithms.js'
import { toPublicJwk, type Jwk } from '../keys/public.js'
import { boundFreshness } from './cache-headers.js'
import { discover } from './discovery.js'
import { fetchDocument } from './fetch-jwks.js'
import { importPublicKey } from './jws.js'
import type { JwksFetchReason, ProviderConfig, VerifierEvent } from './types.js'

export interface KeySetOptions {
  fetch: typeof fetch
  now: () => number
  /** Freshness of a JWKS response without cache headers, ms. */
  maxAgeMs: number
  /** Bounds on the freshness cache headers give, ms. */
  cacheMinMs: number
  cacheMaxMs: number
  /** Freshness of a discovery document without cache headers, ms. */
  discoveryMaxAgeMs: number
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
  #freshMs: number
  #etag: string | undefined
  /** The JWKS URL in use: the configured one, or the one discovery gave last. */
  #jwksUrl: string | undefined
  #discoveredAt: number | undefined
  #discoveryFreshMs = 0
  #lastAttemptAt: number | undefined
  #inflight: Promise<void> | undefined
  #lastError: PgAuthorizeError | undefined
  #imported = new WeakMap<Jwk, Map<Algorithm, KeyObject>>()

  constructor(config: ProviderConfig, options: KeySetOptions) {
    this.config = config
    this.#o = options
    this.#freshMs = options.maxAgeMs
    this.#jwksUrl = config.jwksUrl
    if (config.jwks) this.#keys = usableKeys(config.jwks, config.name)
  }

  get remote(): boolean {
    return this.config.jwksUrl !== undefined || this.config.discovery === true
  }

  /** The JWKS URL in use (for a discovery provider, the last one discovered). */
  get jwksUrl(): string | undefined {
    return this.#jwksUrl
  }

  #stale(): boolean {
    const now = this.#o.now()
    if (this.#keys === undefined || now - this.#fetchedAt >= this.#freshMs) return true
    return this.config.discovery === true && (this.#discoveredAt === undefined || now - this.#discoveredAt >= this.#discoveryFreshMs)
  }

  #cooldownOver(): boolean {
    return this.#lastAttemptAt === undefined || this.#o.now() - this.#lastAttemptAt >= this.#o.cooldownMs
  }

  /** The current keys when loaded (starting a background refresh if they are stale), without waiting. */
  loadedKeys(): Jwk[] | undefined {
    if (this.remote && this.#keys !== undefined && this.#stale()) this.refreshInBackground()
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
    if (this.#keys !== undefined && !this.#stale()) return
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
        const url = await this.#jwksUrlNow(reason)
        const changedUrl = url !== this.#fetchedUrl
        const r = await fetchDocument(url, {
          fetch: this.#o.fetch, timeoutMs: this.#o.timeoutMs, maxBytes: this.#o.maxBytes, provider: this.config.name, now: this.#o.now,
          // Revalidate only what we hold from this very URL.
          ...(this.#keys !== undefined && !changedUrl && this.#etag !== undefined ? { etag: this.#etag } : {}),
        })
        this.#freshMs = boundFreshness(r.freshnessMs, this.#o.maxAgeMs, this.#o.cacheMinMs, this.#o.cacheMaxMs)
        this.#etag = r.etag
        this.#fetchedAt = this.#o.now()
        this.#lastError = undefined
        if (r.notModified) {
          this.#o.emit({ kind: 'jwks-fetch', provider: this.config.name, ok: true, keys: this.#keys!.length, reason, notModified: true })
          return
        }
        const keys = usableKeys(r.body, this.config.name)
        const changed = this.#keys !== undefined && JSON.stringify(keys) !== JSON.stringify(this.#keys)
        this.#keys = keys
        this.#fetchedUrl = url
        this.#o.emit({ kind: 'jwks-fetch', provider: this.config.name, ok: true, keys: keys.length, reason })
        if (changed) this.#o.onChange()
      } catch (err) {
        const e = err instanceof PgAuthorizeError
          ? err
          : new PgAuthorizeError('ERR_JWKS_FETCH_FAILED', `fetching the JWKS of provider '${this.config.name}' failed`, { cause: err })
        this.#lastError = e
        this.#o.emit({ kind: 'jwks-fetch', provider: this.config.name, ok: false, code: e.code, reason })
        throw e
      } finally {
        this.#inflight = undefined
      }
    })()
    this.#inflight = run
    return run
  }

  #fetchedUrl: string | undefined

  /**
   * The JWKS URL to fetch now. For a discovery provider, re-reads the discovery document first when it is
   * past its freshness or the refresh is forced; if that fails, the last `jwks_uri` known is used (an
   * outage of the issuer's metadata must not stop a gateway that has keys), and only a provider that never
   * discovered one fails, with the discovery error.
   */
  async #jwksUrlNow(reason: JwksFetchReason): Promise<string> {
    const c = this.config
    if (!c.discovery) return c.jwksUrl!
    const now = this.#o.now()
    const due = this.#discoveredAt === undefined || reason === 'manual' || now - this.#discoveredAt >= this.#discoveryFreshMs
    if (!due) return this.#jwksUrl!
    try {
      const d = await discover(c.issuer!, { fetch: this.#o.fetch, timeoutMs: this.#o.timeoutMs, maxBytes: this.#o.maxBytes, provider: c.name, now: this.#o.now })
      if (d && 'jwksUri' in d) {
        const changed = d.jwksUri !== this.#jwksUrl
        this.#jwksUrl = d.jwksUri
        this.#o.emit({ kind: 'discovery-fetch', provider: c.name, ok: true, changed })
      }
      this.#discoveredAt = this.#o.now()
      this.#discoveryFreshMs = boundFreshness(d.freshnessMs, this.#o.discoveryMaxAgeMs, this.#o.cacheMinMs, this.#o.cacheMaxMs)
    } catch (err) {
      const code = err instanceof PgAuthorizeError ? err.code : 'ERR_DISCOVERY_FAILED'
      this.#o.emit({ kind: 'discovery-fetch', provider: c.name, ok: false, code })
      if (this.#jwksUrl === undefined) throw err
      // Try again after the cooldown-bounded next refresh, not on every token.
      this.#discoveredAt = this.#o.now()
      this.#discoveryFreshMs = this.#o.cacheMinMs
    }
    return this.#jwksUrl!
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
