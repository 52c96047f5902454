/**
 * JWT verification against a set of providers: the gateway's hot path.
 *
 * Order of checks, cheapest and most hostile-input-proof first: length cap (before any decoding),
 * three base64url segments, the verified-token cache, then the protected header (header.ts), provider
 * selection (providers whose `issuer` equals the token's `iss` first), the algorithm allow-list, key
 * selection by `kid` (a token without `kid` only when exactly one key suits its alg), the key/alg match
 * (key type, curve, the key's own `alg`), the signature with `node:crypto` (./jws.ts says why not jose's
 * Web Crypto path), then the claims (claims.ts) and, last, the role the token runs as (role-choice.ts).
 * Providers are checked by provider.ts.
 *
 * @module
 */
import type { JWTPayload } from 'jose'
import type { KeyObject } from 'node:crypto'
import { PgAuthorizeError, type ErrorCode } from '../errors.js'
import { keySuitsAlgorithm } from '../keys/algorithms.js'
import type { Jwk } from '../keys/public.js'
import { checkClaims } from './claims.js'
import { checkHeader, type CheckedHeader } from './header.js'
import { ProviderKeys } from './keyset.js'
import { decodeJsonSegment, decodeSegment, isCanonical, verifySignature } from './jws.js'
import { normalizeProvider } from './provider.js'
import { chooseRole } from './role-choice.js'
import { TokenCache, tokenDigest, type VerifiedBase } from './token-cache.js'
import type { ProviderConfig, VerifiedToken, VerifierEvent, VerifierOptions } from './types.js'

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** Whether `token` has the shape of a compact JWS (three non-empty base64url segments); nothing is decoded. */
export function isCompactJws(token: string): boolean {
  return COMPACT_JWS.test(token)
}

const fail = (code: ErrorCode, message: string, cause?: unknown) => new PgAuthorizeError(code, message, { cause })

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

type Selection = { kind: 'ok'; keys: Jwk[] } | { kind: 'none' | 'alg_mismatch' | 'ambiguous' }

/**
 * Verifies JWTs against providers, with a remote-JWKS cache and a verified-token cache. Make one and
 * reuse it; call `close()` when done.
 *
 * @example
 * const verifier = new Verifier({ providers: [{ name: 'app', jwksUrl: 'https://app.example/.well-known/jwks.json' }] })
 * const { claims, provider } = await verifier.verify(token, { role: 'authenticated' })
 */
export class Verifier {
  readonly #tolerance: number
  readonly #maxLength: number
  readonly #now: () => number
  readonly #cache: TokenCache | undefined
  readonly #onEvent: ((e: VerifierEvent) => void) | undefined
  readonly #keySetOptions: Omit<ConstructorParameters<typeof ProviderKeys>[1], 'onChange'>
  readonly #maxAgeMs: number
  readonly #counters: Record<string, number> = {}
  /** Decoded protected headers by their exact segment: an issuer's tokens share a handful of headers. */
  readonly #headers = new Map<string, CheckedHeader>()
  readonly #selections = new WeakMap<Jwk[], Map<string, Selection>>()
  /** The result per verified token and chosen role: the same object every time, so callers may key caches on it. */
  readonly #withRole = new WeakMap<VerifiedBase, Map<string, VerifiedToken>>()
  #providers: ProviderConfig[] = []
  #keys = new Map<string, { json: string; keys: ProviderKeys }>()
  #keyList: ProviderKeys[] = []
  #timer: ReturnType<typeof setInterval> | undefined
  #closed = false

  constructor(options: VerifierOptions = {}) {
    this.#tolerance = options.clockToleranceSeconds ?? 30
    this.#maxLength = options.maxTokenLength ?? 8192
    this.#now = options.now ?? Date.now
    this.#onEvent = options.onEvent
    this.#cache = options.cache === false ? undefined : new TokenCache(options.cache ?? {})
    this.#maxAgeMs = options.jwksMaxAgeMs ?? 600_000
    this.#keySetOptions = {
      fetch: options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args)),
      now: this.#now,
      maxAgeMs: this.#maxAgeMs,
      cacheMinMs: options.jwksCacheMinMs ?? 60_000,
      cacheMaxMs: options.jwksCacheMaxMs ?? 86_400_000,
      discoveryMaxAgeMs: options.discoveryMaxAgeMs ?? 3_600_000,
      cooldownMs: options.jwksCooldownMs ?? 30_000,
      timeoutMs: options.jwksTimeoutMs ?? 5_000,
      maxBytes: options.jwksMaxBytes ?? 65_536,
      emit: (e) => this.#emit(e),
    }
    this.setProviders(options.providers ?? [])
  }

  #emit(e: VerifierEvent): void {
    const name = counterName(e)
    this.#counters[name] = (this.#counters[name] ?? 0) + 1
    try {
      this.#onEvent?.(e)
    } catch {
      // metrics must never break verification
    }
  }

  /** Replaces the provider set. Unchanged providers keep their cached keys; others start afresh. */
  setProviders(providers: ProviderConfig[]): void {
    const normalized = providers.map(normalizeProvider)
    const names = new Set<string>()
    for (const p of normalized) {
      if (names.has(p.name)) throw fail('ERR_INVALID_CONFIG', `two providers are named '${p.name}'`)
      names.add(p.name)
    }
    const next = new Map<string, { json: string; keys: ProviderKeys }>()
    for (const p of normalized) {
      const json = JSON.stringify(p)
      const old = this.#keys.get(p.name)
      if (old && old.json === json) {
        next.set(p.name, old)
        continue
      }
      this.#cache?.dropProvider(p.name)
      next.set(p.name, { json, keys: new ProviderKeys(p, { ...this.#keySetOptions, onChange: () => this.#cache?.dropProvider(p.name) }) })
    }
    for (const name of this.#keys.keys()) if (!next.has(name)) this.#cache?.dropProvider(name)
    this.#keys = next
    this.#keyList = [...next.values()].map((v) => v.keys)
    this.#providers = [...next.values()].map((v) => v.keys.config)
    this.#startTimer()
  }

  get providers(): readonly ProviderConfig[] {
    return this.#providers
  }

  /** Refreshes stale remote key sets in the background, so keys are warm before they are needed. */
  #startTimer(): void {
    if (this.#timer || this.#closed || ![...this.#keys.values()].some((v) => v.keys.remote)) return
    this.#timer = setInterval(() => {
      for (const { keys } of this.#keys.values()) keys.refreshInBackground()
    }, Math.max(1_000, Math.min(this.#maxAgeMs, 60_000)))
    this.#timer.unref?.()
  }

  /** Forces a JWKS refetch of one provider, or of all remote ones. Rejects if a fetch fails. */
  async refresh(providerName?: string): Promise<void> {
    const targets = providerName === undefined
      ? [...this.#keys.values()]
      : [this.#keys.get(providerName) ?? (() => { throw fail('ERR_PROVIDER_NOT_FOUND', `no provider named '${providerName}'`) })()]
    await Promise.all(targets.map((t) => t.keys.refresh('manual')))
  }

  stats(): Record<string, number> {
    return { ...this.#counters, cache_entries: this.#cache?.size ?? 0, providers: this.#providers.length }
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Verifies a token and chooses the role it runs as (role-choice.ts): `role` is the one the client asks
   * for (the connection string's user). The result's `role` is the one to log in as.
   */
  async verify(token: string, options: { role?: string } = {}): Promise<VerifiedToken> {
    try {
      const base = await this.#verify(token)
      const result = this.#roleResult(base, chooseRole(base.claims, base.provider, options.role))
      this.#emit({ kind: 'verified', provider: result.provider.name })
      return result
    } catch (err) {
      const e = err instanceof PgAuthorizeError ? err : fail('ERR_INTERNAL', 'verification failed unexpectedly', err)
      this.#emit({ kind: 'verify-failed', code: e.code })
      throw e
    }
  }

  #roleResult(base: VerifiedBase, role: string): VerifiedToken {
    let byRole = this.#withRole.get(base)
    if (!byRole) this.#withRole.set(base, (byRole = new Map()))
    let result = byRole.get(role)
    // Roles chosen are among the provider's allowed roles: the map stays small.
    if (!result) byRole.set(role, (result = Object.freeze({ ...base, role })))
    return result
  }

  async #verify(token: string): Promise<VerifiedBase> {
    if (typeof token !== 'string' || token === '') throw fail('ERR_TOKEN_MALFORMED', 'the token is empty or not a string')
    // String length <= UTF-8 byte length, and a non-ASCII token fails the shape check below.
    if (token.length > this.#maxLength) {
      throw fail('ERR_TOKEN_TOO_LARGE', `the token is longer than ${this.#maxLength} bytes`)
    }
    if (this.#providers.length === 0) throw fail('ERR_NO_PROVIDERS', 'no identity providers are configured')

    // The cache first: a hit is a token that passed every check below before (same bytes, same digest),
    // so the shape check is skipped for it; it is the hot path (docs/benchmarks.md, figure a).
    const digest = this.#cache ? tokenDigest(token) : ''
    if (this.#cache) {
      const now = this.#now()
      const hit = this.#cache.get(digest, now)
      if (hit && hit.expiresAt !== undefined && hit.expiresAt + this.#tolerance > now / 1000) {
        this.#emit({ kind: 'token-cache', result: 'hit' })
        return hit
      }
      this.#emit({ kind: 'token-cache', result: 'miss' })
    }
    if (!COMPACT_JWS.test(token)) throw fail('ERR_TOKEN_MALFORMED', 'the token is not three base64url segments')

    const dot1 = token.indexOf('.')
    const dot2 = token.lastIndexOf('.')
    const { header, alg } = this.#header(token.slice(0, dot1))
    const payload = decodeJsonSegment(token.slice(dot1 + 1, dot2)) as JWTPayload | undefined
    if (!payload) throw fail('ERR_TOKEN_MALFORMED', 'the token payload is not a JSON object')
    const signingInput = token.slice(0, dot2)
    const signatureSegment = token.slice(dot2 + 1)
    const signature = decodeSegment(signatureSegment)
    if (!signature) throw fail('ERR_TOKEN_MALFORMED', 'the token signature is not base64url')
    // A non-canonical spelling fails as a bad signature, once keys are found (as jose would report it).
    const canonical = isCanonical(signatureSegment)

    // Providers whose issuer is the token's iss first, then those without an issuer, then the rest
    // (which will fail with ERR_JWT_ISSUER_MISMATCH if they hold the key).
    const candidates = this.#keyList.length < 2 ? this.#keyList : this.#rank(payload.iss)

    let algAccepted = false
    let algMismatch = false
    let kidMissing = false
    let fetchError: PgAuthorizeError | undefined
    for (const pk of candidates) {
      const provider = pk.config
      if (!provider.algorithms!.includes(alg)) continue
      algAccepted = true
      let keys: Jwk[]
      try {
        keys = pk.loadedKeys() ?? (await pk.keys())
      } catch (err) {
        fetchError ??= err as PgAuthorizeError
        continue
      }
      let matching = this.#select(keys, header.kid, alg)
      if (matching.kind === 'none' && header.kid !== undefined && pk.remote) {
        await pk.refetchForUnknownKid()
        matching = this.#select(await pk.keys().catch(() => keys), header.kid, alg)
      }
      if (matching.kind === 'alg_mismatch') algMismatch = true
      if (matching.kind === 'ambiguous') kidMissing = true
      if (matching.kind !== 'ok') continue
      // The first provider holding a suitable key decides: the signature with each of its matching keys,
      // then the claims once.
      let lastError: PgAuthorizeError | undefined
      for (const jwk of matching.keys) {
        let key: KeyObject
        try {
          key = pk.publicKey(jwk, alg)
        } catch (err) {
          lastError = fail('ERR_JWKS_INVALID', `a key of provider '${provider.name}' cannot be imported for ${alg}`, err)
          continue
        }
        if (!canonical || !verifySignature(alg, key, signingInput, signature)) {
          lastError = fail('ERR_JWT_SIGNATURE_INVALID', `signature verification failed (provider '${provider.name}')`)
          continue
        }
        checkClaims(payload, provider, Math.floor(this.#now() / 1000), this.#tolerance)
        const result: VerifiedBase = deepFreeze({
          claims: payload,
          header,
          provider,
          expiresAt: payload.exp,
        })
        this.#cache?.set(digest, result, this.#now())
        return result
      }
      throw lastError!
    }
    if (kidMissing) throw fail('ERR_JWT_KID_MISSING', `the token has no "kid" and more than one key suits ${alg}`)
    if (algMismatch) throw fail('ERR_JWT_ALG_NOT_ALLOWED', `the key named by "kid" is not usable with ${alg}`)
    if (!algAccepted) throw fail('ERR_JWT_ALG_NOT_ALLOWED', `algorithm ${alg} is not allowed by any provider`)
    if (fetchError) throw fetchError
    throw fail('ERR_JWKS_NO_MATCHING_KEY', header.kid === undefined ? `no key suits ${alg}` : `no key matches the token's "kid"`)
  }

  #rank(iss: unknown): ProviderKeys[] {
    const rank = (p: ProviderConfig) => (p.issuer === undefined ? 1 : p.issuer === iss ? 0 : 2)
    return [...this.#keyList].sort((a, b) => rank(a.config) - rank(b.config))
  }

  /** The protected header, checked (header.ts), remembered by its exact segment. */
  #header(segment: string): CheckedHeader {
    const cached = this.#headers.get(segment)
    if (cached) return cached
    const { header, alg } = checkHeader(segment)
    // Only headers that passed are kept, bounded: a flood of distinct headers just misses.
    if (this.#headers.size >= 64) this.#headers.clear()
    const checked = { header: deepFreeze(header), alg }
    this.#headers.set(segment, checked)
    return checked
  }

  /** {@link #pick}, remembered per key set (a new set is a new array) for up to 64 (kid, alg) pairs. */
  #select(keys: Jwk[], kid: string | undefined, alg: string): Selection {
    let byKey = this.#selections.get(keys)
    if (!byKey) this.#selections.set(keys, (byKey = new Map()))
    const id = kid === undefined ? alg : `${alg}:${kid}`
    let selection = byKey.get(id)
    if (!selection) {
      if (byKey.size >= 64) byKey.clear()
      byKey.set(id, (selection = this.#pick(keys, kid, alg)))
    }
    return selection
  }

  #pick(keys: Jwk[], kid: string | undefined, alg: string): Selection {
    if (kid === undefined) {
      const suitable = keys.filter((k) => keySuitsAlgorithm(k, alg))
      if (suitable.length === 1) return { kind: 'ok', keys: suitable }
      return { kind: suitable.length === 0 ? 'none' : 'ambiguous' }
    }
    const byKid = keys.filter((k) => k.kid === kid)
    if (byKid.length === 0) return { kind: 'none' }
    const suitable = byKid.filter((k) => keySuitsAlgorithm(k, alg))
    return suitable.length ? { kind: 'ok', keys: suitable } : { kind: 'alg_mismatch' }
  }
}

/**
 * One-off verification against `providers` (builds and closes a {@link Verifier}; for repeated use,
 * keep a Verifier so keys and results are cached).
 */
export async function verify(
  token: string,
  providers: ProviderConfig[],
  options: VerifierOptions & { role?: string } = {},
): Promise<VerifiedToken> {
  const { role, ...rest } = options
  const verifier = new Verifier({ ...rest, providers })
  try {
    return await verifier.verify(token, { role })
  } finally {
    verifier.close()
  }
}

/** The `stats()` counter an event adds to: constant strings, since a cache hit is the hot path (figure a). */
function counterName(e: VerifierEvent): string {
  switch (e.kind) {
    case 'token-cache':
      return e.result === 'hit' ? 'cache_hit' : 'cache_miss'
    case 'verified':
      return 'verified'
    case 'verify-failed':
      return 'verify_failed'
    case 'jwks-fetch':
      return e.ok ? 'jwks_fetch_ok' : 'jwks_fetch_fail'
    case 'discovery-fetch':
      return e.ok ? 'discovery_fetch_ok' : 'discovery_fetch_fail'
  }
}
