/**
 * The verifier's public types: providers, options, results and events. Other parts (the gateways,
 * `dev`, testing) code against these shapes; change them only together with them.
 *
 * @module
 */
import type { JWSHeaderParameters, JWTPayload } from 'jose'
import type { ErrorCode } from '../errors.js'
import type { Algorithm } from '../keys/algorithms.js'

export type { Algorithm }

/** One identity provider whose tokens are accepted. */
export interface ProviderConfig {
  /** Unique name, e.g. `my-app`. */
  name: string
  /** Remote JWKS (http/https). Give this or `jwks`. */
  jwksUrl?: string
  /** Inline public keys. */
  jwks?: { keys: JsonWebKey[] }
  /** Required `iss` when set. */
  issuer?: string
  /** Required `aud` (any of) when set. */
  audience?: string | string[]
  /** Allow-list of algorithms. Default `['RS256', 'ES256', 'EdDSA']`. */
  algorithms?: Algorithm[]
  /** Roles tokens of this provider may log in as. Default `['authenticated']`. */
  roles?: string[]
}

/** A token that verified. */
export interface VerifiedToken {
  /** The verified payload. Shared with the verified-token cache: treat as read-only (it is frozen). */
  claims: JWTPayload
  header: JWSHeaderParameters
  /** The provider that verified it (with defaults filled in). */
  provider: ProviderConfig
  /** `exp` in epoch seconds. */
  expiresAt: number | undefined
}

/** What happened, for metrics. Never carries a token or key. */
export type VerifierEvent =
  | { type: 'jwks_fetch'; provider: string; ok: true; keys: number; reason: JwksFetchReason }
  | { type: 'jwks_fetch'; provider: string; ok: false; code: ErrorCode; reason: JwksFetchReason }
  | { type: 'cache_hit' }
  | { type: 'cache_miss' }
  | { type: 'verify_ok'; provider: string }
  | { type: 'verify_fail'; code: ErrorCode }

export type JwksFetchReason = 'initial' | 'stale' | 'unknown_kid' | 'manual'

export interface VerifierOptions {
  providers?: ProviderConfig[]
  /** Leeway for `exp` and `nbf`, in seconds. Default 30. */
  clockToleranceSeconds?: number
  /** Longest token accepted, in bytes, checked before any decoding. Default 8192. */
  maxTokenLength?: number
  /** Age (ms) after which remote keys are refreshed in the background. Default 600_000. */
  jwksMaxAgeMs?: number
  /** Least time (ms) between two fetches of one JWKS not forced by `refresh()`. Default 30_000. */
  jwksCooldownMs?: number
  /** Timeout (ms) of one JWKS fetch. Default 5_000. */
  jwksTimeoutMs?: number
  /** Largest JWKS response accepted, in bytes. Default 65_536. */
  jwksMaxBytes?: number
  /** The verified-token cache; `false` turns it off. Defaults: 10_000 entries, 60_000 ms. */
  cache?: false | { maxEntries?: number; maxTtlMs?: number }
  /** Injection seam for JWKS fetches. */
  fetch?: typeof fetch
  /** Clock seam, epoch milliseconds. */
  now?: () => number
  /** Called for every event, synchronously; exceptions it throws are ignored. */
  onEvent?: (e: VerifierEvent) => void
}
