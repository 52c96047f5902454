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
  /**
   * Remote JWKS (http/https). Give this or `jwks`, or set `discovery`. With `discovery` it is the last
   * `jwks_uri` discovered (used while the discovery document cannot be fetched).
   */
  jwksUrl?: string
  /**
   * Find the JWKS through OIDC discovery: `{issuer}/.well-known/openid-configuration` (a trailing `/`
   * of the issuer dropped first), whose `issuer` must equal `issuer` exactly, gives `jwks_uri`. Re-read
   * periodically (its cache headers, within the JWKS bounds; 1 h without them). Needs `issuer`.
   */
  discovery?: boolean
  /** Inline public keys. */
  jwks?: { keys: JsonWebKey[] }
  /** Required `iss` when set. */
  issuer?: string
  /** Required `aud` (any of) when set. */
  audience?: string | string[]
  /** Allow-list of algorithms. Default `['RS256', 'ES256', 'EdDSA']`. */
  algorithms?: Algorithm[]
  /** Roles tokens of this provider may log in as. Default `['authenticated']` ({@link DEFAULT_PROVIDER_ROLES}). */
  roles?: string[]
  /**
   * Where the token names its role(s): a JSONPath subset (`$.role`, `$.app_metadata.role`,
   * `$["https://example.com/claims"].role`, `$.realm_access.roles[*]`; see claim-path.ts). Unset: the
   * role is the one the client asks for (the connection string's user), if `roles` allows it.
   */
  roleClaim?: string
  /** The role of a token whose `roleClaim` is missing. Unset: such tokens are refused (ERR_ROLE_CLAIM_MISSING). */
  defaultRole?: string
  /** Required `azp` (any of) when set; a token without `azp` is then refused. */
  authorizedParties?: string[]
  /**
   * Refuse tokens that carry `aud` when `audience` is not set (PostgREST #4134). Default false: without
   * `audience`, `aud` is not checked.
   */
  strictAudience?: boolean
}

/** The roles a provider allows when it names none. Not setup's roles (database/setup.ts `SETUP_ROLES`). */
export const DEFAULT_PROVIDER_ROLES: readonly string[] = Object.freeze(['authenticated'])

/** A token that verified. */
export interface VerifiedToken {
  /** The verified payload. Shared with the verified-token cache: treat as read-only (it is frozen). */
  claims: JWTPayload
  header: JWSHeaderParameters
  /** The provider that verified it (with defaults filled in). */
  provider: ProviderConfig
  /** `exp` in epoch seconds. */
  expiresAt: number | undefined
  /**
   * The role the token runs as, chosen by the provider's rules (role-choice.ts): the requested role when
   * the provider allows it (and the token's role claim, if the provider reads one, names it), else the
   * claim's first allowed role, else the provider's default role.
   */
  role: string
}

/** What happened, for metrics. Never carries a token or key. */
export type VerifierEvent =
  | { kind: 'jwks-fetch'; provider: string; ok: true; keys: number; reason: JwksFetchReason; notModified?: boolean }
  | { kind: 'jwks-fetch'; provider: string; ok: false; code: ErrorCode; reason: JwksFetchReason }
  | { kind: 'discovery-fetch'; provider: string; ok: true; changed: boolean }
  | { kind: 'discovery-fetch'; provider: string; ok: false; code: ErrorCode }
  | { kind: 'token-cache'; result: 'hit' | 'miss' }
  | { kind: 'verified'; provider: string }
  | { kind: 'verify-failed'; code: ErrorCode }

export type JwksFetchReason = 'initial' | 'stale' | 'unknown_kid' | 'manual'

export interface VerifierOptions {
  providers?: ProviderConfig[]
  /** Leeway for `exp` and `nbf`, in seconds. Default 30. */
  clockToleranceSeconds?: number
  /** Longest token accepted, in bytes, checked before any decoding. Default 8192. */
  maxTokenLength?: number
  /**
   * Age (ms) after which remote keys are refreshed in the background, when the JWKS response says
   * nothing (no `Cache-Control: max-age`, no `Expires`). Default 600_000.
   */
  jwksMaxAgeMs?: number
  /** Least freshness (ms) given to a JWKS or discovery response, whatever its cache headers say (`no-cache`, `max-age=0`). Default 60_000. */
  jwksCacheMinMs?: number
  /** Most freshness (ms) given to a JWKS or discovery response, whatever its cache headers say. Default 86_400_000. */
  jwksCacheMaxMs?: number
  /** Freshness (ms) of a discovery document whose response has no cache headers. Default 3_600_000. */
  discoveryMaxAgeMs?: number
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
