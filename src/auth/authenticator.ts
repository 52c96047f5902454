/**
 * The authenticator: who a request runs as, for every transport (HTTP `/sql`, the wire protocol over TCP,
 * TLS and WebSocket, and the in-process mode), in the databases a gateway serves.
 *
 * Each served database (named by the client: `Neon-Connection-String`'s path, or the wire startup's
 * `database`) has its own sealing key, role credentials and providers, all read through the owner URL
 * pointed at that database. A database is opened on first use and only when pg-authorize is set up in it.
 *
 * {@link Authenticator.authenticate} is the one place a JWT becomes an {@link Identity}: verify the token
 * against that database's providers for the requested role and seal the verified claims. Then
 * {@link Authenticator.loginAsRole} is the one way a transport logs in to Postgres as the restricted role
 * itself (security properties 1 to 3), repairing a role a client altered and retrying.
 *
 * @module
 */
import { PgAuthorizeError, isPgAuthorizeError } from '../errors.js'
import { openDatabaseContext, type DatabaseContext } from '../database/context.js'
import { connectOwner } from '../database/connect.js'
import { loginWithRepair } from '../database/role-repair.js'
import { watchDatabase, type DatabaseWatch } from '../database/watch.js'
import { envelopeExpiry, type SessionKey } from '../database/session.js'
import { Verifier, isCompactJws } from '../verify/verifier.js'
import type { ProviderConfig, VerifiedToken, VerifierEvent, VerifierOptions } from '../verify/types.js'
import type { EventSink, GatewayEvent } from '../observability/events.js'
import type { AuthRequest, Identity, Transport } from './identity.js'
import type pg from 'pg'

export type { AuthRequest, Identity, Transport } from './identity.js'

export interface AuthenticatorOptions {
  /** Owner connection string; its database is the default one served. */
  ownerUrl: string
  /**
   * Further databases on the same server to serve, with the same owner credentials. Only these and the
   * default one are ever opened: a request naming any other gets the one uniform ERR_DB_NOT_SERVED, with no
   * owner login (security property 10), whether or not that database exists.
   */
  databases?: readonly string[]
  /** How long a failed open is remembered before another request may try again, ms. Default 5000. */
  negativeCacheMs?: number
  /** Run requests without a token as `anonymous` (no claims). Default false: refuse them. */
  allowAnonymous?: boolean
  /** Providers accepted in addition to those stored in each database. */
  extraProviders?: ProviderConfig[]
  /** Verifier settings (leeway, JWKS cache, token cache). */
  verifier?: Omit<VerifierOptions, 'providers' | 'onEvent'>
  /** Longest life of the sealed claims of one HTTP request, seconds. Default 300. */
  httpClaimsTtlSeconds?: number
  /** Longest life of a wire session whose token has no `exp`, seconds. Default 86400. */
  wireSessionTtlSeconds?: number
  /** How often providers are re-read besides LISTEN/NOTIFY, ms. Default 30000. */
  providerPollMs?: number
  /** Verifications, JWKS fetches, token cache, role repairs, provider reload failures. */
  onEvent?: EventSink
  /** The clock, ms since the epoch (tests pass their own). Default `Date.now`. */
  now?: () => number
  /** A database's sealing key was rotated: live sessions holding an envelope should be resealed. */
  onKeyRotated?: (database: string, generation: number) => void
}

interface SealedClaims {
  envelope: string
  /** The envelope's expiry, epoch seconds. */
  expiresAt: number
  key: SessionKey
  role: string
}

interface Served {
  ctx: DatabaseContext
  verifier: Verifier
  watch: DatabaseWatch
}

const MISSING_TOKEN = 'missing authentication credentials: required authorization bearer token in JWT format'

export class Authenticator {
  readonly #opts: AuthenticatorOptions
  readonly #now: () => number
  readonly #served = new Map<string, Promise<Served>>()
  readonly #allowed: ReadonlySet<string>
  /** Recent failures to open a database: until `until`, requests get `error` without a new owner login. */
  readonly #failed = new Map<string, { until: number; error: unknown }>()
  readonly #sealed = new WeakMap<VerifiedToken, SealedClaims>()
  readonly #defaultDatabase: string

  constructor(options: AuthenticatorOptions) {
    this.#opts = options
    this.#now = options.now ?? Date.now
    this.#defaultDatabase = decodeURIComponent(new URL(options.ownerUrl).pathname.slice(1)) || 'postgres'
    this.#allowed = new Set([this.#defaultDatabase, ...(options.databases ?? [])])
  }

  /** The databases this gateway serves. */
  get served(): readonly string[] {
    return [...this.#allowed]
  }

  /** Throws the uniform ERR_DB_NOT_SERVED unless `name` is configured: no Postgres is touched to find out. */
  #checkServed(name: string): void {
    if (!this.#allowed.has(name)) {
      throw new PgAuthorizeError('ERR_DB_NOT_SERVED', 'this gateway does not serve the requested database', {
        hint: 'connect to a database the gateway is configured for (serve --databases NAME,...)',
      })
    }
  }

  get defaultDatabase(): string {
    return this.#defaultDatabase
  }

  /** Opens (once) the database `name`; fails with ERR_DB_NOT_SET_UP when pg-authorize is not installed there. */
  open(name: string = this.#defaultDatabase): Promise<Served> {
    this.#checkServed(name)
    let served = this.#served.get(name)
    if (!served) {
      const failed = this.#failed.get(name)
      if (failed && failed.until > this.#now()) return Promise.reject(failed.error)
      served = this.#open(name)
      this.#served.set(name, served)
      // A failure is remembered briefly (a flood of requests costs one owner login per interval), then
      // forgotten: the database may be set up or reachable a moment later.
      served.catch((error: unknown) => {
        this.#served.delete(name)
        this.#failed.set(name, { until: this.#now() + (this.#opts.negativeCacheMs ?? 5000), error })
      })
    }
    return served
  }

  async #open(name: string): Promise<Served> {
    let ctx: DatabaseContext
    try {
      ctx = await openDatabaseContext(this.#opts.ownerUrl, name)
    } catch (err) {
      if (isPgAuthorizeError(err) && err.code === 'ERR_DB_NOT_SET_UP') {
        throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', `database '${name}' is not served: pg-authorize is not set up in it`, { cause: err })
      }
      if (isPgAuthorizeError(err) && err.code === 'ERR_DB_CONNECT') {
        throw new PgAuthorizeError('ERR_DB_CONNECT', `database '${name}' is not reachable`, { cause: err })
      }
      throw err
    }
    const extra = this.#opts.extraProviders ?? []
    const verifier = new Verifier({
      ...this.#opts.verifier,
      providers: extra,
      onEvent: (e) => this.#verifierEvent(name, e),
    })
    let watch: DatabaseWatch
    try {
      watch = await watchDatabase(
        ctx.ownerUrl,
        {
          providers: (stored) => verifier.setProviders([...extra, ...(stored as ProviderConfig[])]),
          // `providers refresh`: not awaited, so a slow JWKS never holds up the watch's reloads.
          refresh: (names) => {
            for (const n of names) verifier.refresh(n).catch((err) => this.#reloadFailed(err))
          },
          keys: async (owner) => {
            if (await ctx.reloadKey(owner)) this.#opts.onKeyRotated?.(ctx.database, ctx.sessionKey.generation)
          },
          onError: (err) => this.#reloadFailed(err),
        },
        { pollMs: this.#opts.providerPollMs ?? 30_000 },
      )
    } catch (err) {
      verifier.close()
      await ctx.close().catch(() => {})
      throw err
    }
    return { ctx, verifier, watch }
  }

  /** How to log in to `database` as `role`: as the role itself, with its stored password. */
  async connectionConfig(database: string, role: string): Promise<pg.ClientConfig> {
    const { ctx } = await this.open(database)
    return ctx.roleConnectionConfig(role)
  }

  /** Undoes a client's `ALTER ROLE CURRENT_USER PASSWORD/SET` on `role` (see `DatabaseContext.repairRole`). */
  async repairRole(database: string, role: string): Promise<boolean> {
    const { ctx } = await this.open(database)
    return ctx.repairRole(role)
  }

  /**
   * Logs in as the restricted role with `connect` (a pool's or a client's login, which must discard a
   * connection whose session is tainted and throw RoleTaintedError). A login refused because a client
   * changed the role's password, or a session carrying settings a client stored on the role, is repaired
   * through the owner and retried (bounded, with backoff); see database/role-repair.ts. The one place every
   * transport's login is retried.
   */
  loginAsRole<T>(target: { database: string; role: string }, transport: Transport, connect: () => Promise<T>): Promise<T> {
    const { database, role } = target
    return loginWithRepair(connect, () => this.repairRole(database, role), {
      onRepair: (reason, led) => this.#emit({ kind: 'role-repair', database, role, reason, led, transport }),
    })
  }

  /** Terminates a wire session's backend after a grace period unless it exits (see `DatabaseContext.reapBackend`). */
  reapBackend(database: string, role: string, pid: number, backendStart: string): void {
    this.open(database).then(({ ctx }) => ctx.reapBackend(pid, backendStart, role), () => {})
  }

  /**
   * The checks a credential must pass before any database work: present (unless anonymous requests are
   * allowed) and shaped like a compact JWS. Cheap and local; the HTTP handler also runs it before reading a
   * request body.
   */
  checkCredential(token: string | undefined): void {
    if (!token) {
      if (!this.#opts.allowAnonymous) throw new PgAuthorizeError('ERR_TOKEN_MISSING', MISSING_TOKEN)
    } else if (!isCompactJws(token)) {
      throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the token is not three base64url segments')
    }
  }

  /** Verifies a request's credentials and returns who it runs as. Throws PgAuthorizeError. */
  async authenticate(req: AuthRequest): Promise<Identity> {
    // Nothing privileged before a credential is at least well formed (security property 10): the database
    // must be one this gateway serves, and a token must have the shape of a JWT, before any owner login.
    this.#checkServed(req.database)
    this.checkCredential(req.token)
    const { ctx, verifier } = await this.open(req.database)
    if (!ctx.roles.includes(req.role)) {
      // The owner, a superuser, or any role setup did not make: never.
      throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${req.role}' is not a restricted role; connect as ${ctx.roles.join(' or ')}`)
    }
    if (!req.token) {
      if (this.#opts.allowAnonymous && ctx.roles.includes('anonymous')) {
        return { role: 'anonymous', database: ctx.database, envelope: null, expiresAt: undefined }
      }
      throw new PgAuthorizeError('ERR_TOKEN_MISSING', MISSING_TOKEN)
    }
    if (verifier.providers.length === 0) {
      throw new PgAuthorizeError('ERR_NO_PROVIDERS', `no JWT provider is registered for database '${ctx.database}'`, {
        hint: 'pg-authorize providers add --jwks-url URL',
      })
    }
    const started = performance.now()
    let verified
    try {
      verified = await verifier.verify(req.token, { role: req.role })
    } catch (err) {
      const code = isPgAuthorizeError(err) ? err.code : 'ERR_INTERNAL'
      this.#emit({ kind: 'verify-failed', database: ctx.database, code, ms: performance.now() - started })
      throw err
    }
    this.#emit({ kind: 'verified', database: ctx.database, provider: verified.provider.name, ms: performance.now() - started })
    // The verifier chose the role (the requested one, or the one the provider's role claim names).
    const role = verified.role
    if (!ctx.roles.includes(role)) {
      throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${role}' is not a restricted role; the provider's roles must be ${ctx.roles.join(' or ')}`)
    }
    const { envelope, expiresAt } = req.transport === 'http'
      ? this.#httpEnvelope(ctx, verified, role)
      : this.#seal(ctx, verified, role, this.#opts.wireSessionTtlSeconds ?? 86_400)
    return {
      role,
      database: ctx.database,
      envelope,
      expiresAt,
      // Wire sessions only (an HTTP request's envelope dies with it): the same claims, role and expiry under
      // the current key, installed after a rotation.
      ...(req.transport === 'http'
        ? {}
        : { reseal: () => ctx.seal(verified.claims as Record<string, unknown>, role, verified.provider.name, { expiresAt, now: this.#now }) }),
      provider: verified.provider.name,
      ...(typeof verified.claims.sub === 'string' ? { subject: verified.claims.sub } : {}),
    }
  }

  #seal(ctx: DatabaseContext, verified: VerifiedToken, role: string, ttl: number): SealedClaims {
    const envelope = ctx.seal(verified.claims as Record<string, unknown>, role, verified.provider.name, { maxTtlSeconds: ttl, now: this.#now })
    return { envelope, expiresAt: envelopeExpiry(envelope), key: ctx.sessionKey, role }
  }

  /**
   * The envelope of an HTTP request. A verified token comes back from the verifier's cache as the same frozen
   * object for up to its cache lifetime, so its envelope is sealed once and reused while it has at least half
   * of its time to live left (an HMAC and a JSON serialisation less per request, ~3% of the gateway's CPU).
   * Sealed with another database's key, or a key since replaced, it is never reused.
   */
  #httpEnvelope(ctx: DatabaseContext, verified: VerifiedToken, role: string): SealedClaims {
    const ttl = this.#opts.httpClaimsTtlSeconds ?? 300
    const cached = this.#sealed.get(verified)
    if (cached && cached.key === ctx.sessionKey && cached.role === role && cached.expiresAt - this.#now() / 1000 >= ttl / 2) return cached
    const sealed = this.#seal(ctx, verified, role, ttl)
    this.#sealed.set(verified, sealed)
    return sealed
  }

  #emit(e: GatewayEvent): void {
    this.#opts.onEvent?.(e)
  }

  /** A verifier's events, as the gateway's (verifications themselves are reported by `authenticate`). */
  #verifierEvent(database: string, e: VerifierEvent): void {
    // Verifications are reported by `authenticate`, with their time.
    if (e.kind !== 'verified' && e.kind !== 'verify-failed') this.#emit({ ...e, database })
  }

  /** A failed reload of providers or keys, with its reason (our messages never hold secrets). */
  #reloadFailed(err: unknown): void {
    const code = (err as { code?: unknown }).code
    this.#emit({
      kind: 'provider-reload-failed',
      code: typeof code === 'string' ? code : 'ERR_INTERNAL',
      reason: isPgAuthorizeError(err) ? err.message : err instanceof Error ? `${typeof code === 'string' ? code : err.name}: ${err.message}` : String(err),
    })
  }

  /**
   * Readiness of the default database: reachable with the owner's rights (a fresh `select 1`), and at
   * least one provider loaded. Used by `GET /ready`.
   */
  async readiness(): Promise<{ ready: boolean; database: boolean; providers: boolean }> {
    let database = false
    let providers = false
    try {
      const served = await this.open()
      providers = served.verifier.providers.length > 0
      const c = await connectOwner(served.ctx.ownerUrl)
      try {
        await c.query('select 1')
        database = true
      } finally {
        await c.end().catch(() => {})
      }
    } catch {
      // not ready
    }
    return { ready: database && providers, database, providers }
  }

  /** Re-reads providers (and credentials) of every open database, e.g. on SIGHUP. */
  async reload(): Promise<void> {
    for (const served of this.#served.values()) {
      const s = await served.catch(() => undefined)
      if (!s) continue
      await s.ctx.reload()
      await s.watch.reload()
    }
  }

  /** Forces a JWKS refetch for every provider of every open database. */
  async refreshKeys(): Promise<void> {
    for (const served of this.#served.values()) {
      const s = await served.catch(() => undefined)
      await s?.verifier.refresh()
    }
  }

  async close(): Promise<void> {
    const all = [...this.#served.values()]
    this.#served.clear()
    for (const served of all) {
      const s = await served.catch(() => undefined)
      if (!s) continue
      s.verifier.close()
      await s.watch.close()
      await s.ctx.close().catch(() => {})
    }
  }
}
