/**
 * The in-process authorizer (issue 19): the gateway's guarantees inside your own Node server, with no
 * second process in the path.
 *
 * Each call verifies the credential with the same {@link Authenticator} the gateway uses (providers read
 * from the database and reloaded live through NOTIFY, the JWKS cache, key rotation, the token cache), leases
 * a connection logged in *as the restricted role itself* (the gateway's `GatewayPools`: never a privileged
 * login plus `SET ROLE`), and runs the callback in ONE transaction with the sealed claims installed
 * transaction-locally:
 *
 *     one round trip:   [reset of the previous user's session, if any] BEGIN; set_config('pg_authorize.session', $1, true)   (one Sync)
 *     your statements:  whatever the callback runs, on the same connection
 *     one round trip:   COMMIT  (ROLLBACK, by the pool, when the callback throws)
 *
 * So a callback of one query costs three round trips, as many as a bare `BEGIN; query; COMMIT` with node-postgres.
 * The claims are a bind parameter, never SQL text (pg_stat_activity shows SQL text to other sessions of
 * the role), and `auth.session()` checks their MAC, expiry, role and database on every read: SQL the
 * callback runs (an injection included) can overwrite the setting but cannot forge a valid envelope.
 *
 * Transaction control inside the callback. The callback *is* the transaction. A statement sent through
 * the handed client that is nothing but `BEGIN` / `START TRANSACTION` becomes a `SAVEPOINT`, `COMMIT` /
 * `END` becomes `RELEASE SAVEPOINT` and `ROLLBACK` becomes `ROLLBACK TO SAVEPOINT`: an
 * interactive transaction inside the callback (drizzle's `db.transaction()`, hand-written `BEGIN ...
 * COMMIT`) nests inside the authorizer's and commits with it. A nested `BEGIN` with an isolation level or
 * access mode is refused (ERR_TRANSACTION_CONTROL): pass `isolationLevel` / `readOnly` to the call instead.
 * Transaction control hidden elsewhere (`select 1; commit` as one string) really ends the transaction, and
 * with it the claims: the rest of the callback runs with no identity (fail closed), and the call then
 * fails with ERR_TRANSACTION_CONTROL.
 *
 * The handed client is good for the callback only: used after it returns, it throws (it would otherwise
 * run on a connection another request holds), and `release()` on it is refused.
 *
 * @example
 * import { createAuthorizer } from 'pg-authorize/auth'
 * const authz = await createAuthorizer({ databaseUrl: process.env.GATEWAY_DATABASE_URL! })
 * const rows = await authz.withToken(token, async (client) => (await client.query('select * from todos')).rows)
 * await authz.close()
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { installClaimsParamSql, type Claims } from '../database/session.js'
import { GatewayPools, type Lease } from '../gateway/http/pool.js'
import { Pipeline, StepError, type Step } from '../gateway/http/execute.js'
import { Authenticator, type AuthenticatorOptions } from './authenticator.js'
import type { Identity } from './identity.js'

export interface AuthorizerOptions {
  /**
   * Connection string of the database: the gateway role's (`pg_authorize_gateway`, printed by `setup`),
   * or the owner's. Only used to read providers, the sealing key and the restricted roles' credentials, and
   * to repair a restricted role a client altered; client SQL always runs logged in as the restricted role.
   */
  databaseUrl: string
  /** Role of `withToken` and `withClaims` calls that name none. Default `authenticated`. */
  role?: string
  /** Role of `anonymous` calls. Default `anonymous`. */
  anonymousRole?: string
  /** Connections per role. Default 10. */
  poolSize?: number
  /** How long a call waits for a connection before ERR_POOL_TIMEOUT, ms. Default 5000. */
  acquireTimeoutMs?: number
  /** Longest life of the sealed claims of one call, seconds (capped by the token's `exp`). Default 300. */
  claimsTtlSeconds?: number
  /**
   * Each identity's share of a role's pool (provider + `sub`), as the gateway's `fairShare`. Default
   * `false`: one FIFO queue per pool.
   */
  fairShare?: { perIdentity?: number; queuePerIdentity?: number } | false
  /** Providers accepted in addition to those stored in the database. */
  extraProviders?: AuthenticatorOptions['extraProviders']
  /** Verifier settings (leeway, JWKS cache, token cache). */
  verifier?: AuthenticatorOptions['verifier']
  /** How often providers are re-read besides LISTEN/NOTIFY, ms. Default 30000. */
  providerPollMs?: number
  /** Verifications, JWKS fetches, role repairs, pool events; never receives secrets. */
  onEvent?: AuthenticatorOptions['onEvent']
  /** Clock seam, ms since the epoch. Default `Date.now`. */
  now?: () => number
}

/** The transaction a call runs in. */
export interface TransactionOptions {
  /** The restricted role to run as (one setup made). Default: the authorizer's `role`. */
  role?: string
  isolationLevel?: 'read committed' | 'repeatable read' | 'serializable'
  readOnly?: boolean
  /** With `serializable` and `readOnly`: wait for a snapshot that cannot fail. */
  deferrable?: boolean
}

export interface ClaimsOptions extends TransactionOptions {
  /** Who vouches for the claims, sealed into the envelope (`auth.session()` does not expose it). Default `server`. */
  provider?: string
}

/**
 * The connection a callback gets: a node-postgres client logged in as the restricted role, inside the
 * call's transaction. Hand it to drizzle-orm (`drizzle(client)`) or use it as it is.
 */
export type AuthorizedClient = pg.Client

export interface Authorizer {
  /** Verifies `token` and runs `fn` as its identity (role `options.role`, default `authenticated`). */
  withToken<T>(token: string, fn: (client: AuthorizedClient) => Promise<T>, options?: TransactionOptions): Promise<T>
  /**
   * Runs `fn` with `claims` as the identity, no token: for trusted server-side code only (background jobs,
   * tests, an identity your own session layer established). Never pass claims a client sent.
   */
  withClaims<T>(claims: Claims, fn: (client: AuthorizedClient) => Promise<T>, options?: ClaimsOptions): Promise<T>
  /** Runs `fn` as the anonymous role, with no identity (`auth.session()` is JSON null). */
  anonymous<T>(fn: (client: AuthorizedClient) => Promise<T>, options?: Omit<TransactionOptions, 'role'>): Promise<T>
  /**
   * Verifies `token` and seals its claims without running anything: the identity and envelope the other
   * adapters (postgres.js, see `authorizePostgresJs`) install themselves.
   */
  authenticate(token: string, options?: { role?: string }): Promise<Identity>
  /** Seals trusted `claims` without running anything (as `withClaims`), for the other adapters. */
  seal(claims: Claims, options?: ClaimsOptions): Promise<Identity>
  /** The shared authenticator (providers, keys, connection settings of the restricted roles). */
  readonly authenticator: Authenticator
  /** The database served. */
  readonly database: string
  /** Ends every pooled connection and the providers' watch. Calls in flight finish first. */
  close(): Promise<void>
}

const ISOLATION: Readonly<Record<string, string>> = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
}

/** `BEGIN` with the call's mode; refuses anything but the known values (they reach SQL text). */
export function beginSql(options: TransactionOptions = {}): string {
  let sql = 'BEGIN'
  if (options.isolationLevel !== undefined) {
    const level = ISOLATION[options.isolationLevel]
    if (level === undefined) throw new PgAuthorizeError('ERR_ISOLATION_LEVEL_INVALID', `unknown isolation level; use one of ${Object.keys(ISOLATION).join(', ')}`)
    sql += ` ISOLATION LEVEL ${level}`
  }
  if (options.readOnly) sql += ' READ ONLY'
  if (options.deferrable) sql += ' DEFERRABLE'
  return sql
}

const own = (text: string, values: (string | null)[] = []): Step => ({ text, values, capture: false, arrayMode: true, rawText: true })

/** Starts the authorizer: opens the database (fails fast when pg-authorize is not set up there). */
export async function createAuthorizer(options: AuthorizerOptions): Promise<Authorizer> {
  const authenticator = new Authenticator({
    ownerUrl: options.databaseUrl,
    httpClaimsTtlSeconds: options.claimsTtlSeconds ?? 300,
    ...(options.extraProviders ? { extraProviders: options.extraProviders } : {}),
    ...(options.verifier ? { verifier: options.verifier } : {}),
    ...(options.providerPollMs !== undefined ? { providerPollMs: options.providerPollMs } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.now ? { now: options.now } : {}),
  })
  try {
    await authenticator.open()
  } catch (err) {
    await authenticator.close()
    throw err
  }
  const pools = new GatewayPools({
    connectionConfig: (database, role) => authenticator.connectionConfig(database, role),
    max: options.poolSize ?? 10,
    acquireTimeoutMillis: options.acquireTimeoutMs ?? 5000,
    loginAsRole: (target, connect) => authenticator.loginAsRole(target, 'http', connect),
    fairShare: options.fairShare ?? false,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  })
  const database = authenticator.defaultDatabase
  const defaultRole = options.role ?? 'authenticated'
  const anonymousRole = options.anonymousRole ?? 'anonymous'
  let closed = false
  const running = new Set<Promise<unknown>>()

  const track = <T>(p: Promise<T>): Promise<T> => {
    running.add(p)
    const done = () => running.delete(p)
    p.then(done, done)
    return p
  }

  async function run<T>(identity: Identity, fn: (client: AuthorizedClient) => Promise<T>, mode: TransactionOptions): Promise<T> {
    if (closed) throw new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the authorizer is closed')
    const begin = beginSql(mode)
    const lease: Lease = await pools.acquire(identity.database, identity.role, undefined, {
      pipelineReset: true,
      identity: { provider: identity.provider, subject: identity.subject },
    })
    // One round trip: the previous user's reset (when the connection is dirty), BEGIN and the claims, with
    // one Sync: if any of it fails, Postgres skips the rest, and the callback never runs.
    const steps = [...lease.prelude, own(begin)]
    if (identity.envelope !== null) steps.push(own(installClaimsParamSql(true), [identity.envelope]))
    const pipeline = new Pipeline(steps, 1 << 20)
    try {
      lease.client.query(pipeline as unknown as pg.QueryConfig)
      await pipeline.promise
    } catch (err) {
      lease.destroy()
      const cause = err instanceof StepError ? err.error : err
      throw new PgAuthorizeError('ERR_DB_CONNECT', 'could not start the transaction', { cause })
    }
    const handle = new ClientHandle(lease.client)
    let result: T
    try {
      result = await fn(handle.client)
    } catch (err) {
      handle.end()
      // The pool rolls the transaction back and resets the session before anyone else gets it.
      lease.release()
      throw err
    }
    handle.end()
    if (handle.depth !== 0) {
      lease.release() // rolled back by the pool
      throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'the callback left a nested transaction (BEGIN without COMMIT or ROLLBACK) open: the call was rolled back')
    }
    let ended = false
    const notice = (msg: { code?: string }) => {
      if (msg.code === '25P01') ended = true // "there is no transaction in progress"
    }
    lease.client.on('notice', notice)
    try {
      await lease.client.query('COMMIT')
    } catch (err) {
      lease.release()
      throw err
    } finally {
      lease.client.off('notice', notice)
    }
    lease.release()
    if (ended) {
      throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'the callback ended the transaction itself: statements after that ran with no identity', {
        hint: 'send BEGIN, COMMIT and ROLLBACK as statements of their own (they nest as savepoints), or none at all',
      })
    }
    return result
  }

  const authenticate = (token: string, opts: { role?: string } = {}): Promise<Identity> => {
    if (closed) return Promise.reject(new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the authorizer is closed'))
    return authenticator.authenticate({ token, role: opts.role ?? defaultRole, database, transport: 'http' })
  }

  const seal = async (claims: Claims, opts: ClaimsOptions = {}): Promise<Identity> => {
    if (closed) throw new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the authorizer is closed')
    const role = opts.role ?? defaultRole
    const { ctx } = await authenticator.open(database)
    if (!ctx.roles.includes(role)) {
      throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${role}' is not a restricted role; use ${ctx.roles.join(' or ')}`)
    }
    const provider = opts.provider ?? 'server'
    const envelope = ctx.seal(claims, role, provider, { maxTtlSeconds: options.claimsTtlSeconds ?? 300, ...(options.now ? { now: options.now } : {}) })
    const subject = typeof claims.sub === 'string' ? claims.sub : undefined
    return { role, database: ctx.database, envelope, expiresAt: undefined, provider, subject }
  }

  return {
    authenticator,
    database,
    authenticate,
    withToken(token, fn, opts = {}) {
      return track(authenticate(token, opts).then((identity) => run(identity, fn, opts)))
    },
    seal,
    withClaims(claims, fn, opts = {}) {
      return track(seal(claims, opts).then((identity) => run(identity, fn, opts)))
    },
    anonymous(fn, opts = {}) {
      return track((async () => {
        if (closed) throw new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the authorizer is closed')
        const { ctx } = await authenticator.open(database)
        if (!ctx.roles.includes(anonymousRole)) {
          throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${anonymousRole}' is not a restricted role of database '${ctx.database}'`)
        }
        return run({ role: anonymousRole, database: ctx.database, envelope: null }, fn, opts)
      })())
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.allSettled([...running])
      await pools.close()
      await authenticator.close()
    },
  }
}

// Whole statements of transaction control, as clients and ORMs send them (drizzle: `begin`, `commit`,
// `rollback`; with `begin isolation level ...` when a config is given).
const BEGIN = /^\s*(?:begin|start\s+transaction)(?:\s+(?:work|transaction))?\s*;?\s*$/i
const BEGIN_WITH_MODE = /^\s*(?:begin|start\s+transaction)\b/i
const COMMIT = /^\s*(?:commit|end)(?:\s+(?:work|transaction))?\s*;?\s*$/i
const ROLLBACK = /^\s*(?:rollback|abort)(?:\s+(?:work|transaction))?\s*;?\s*$/i

/** The client a callback gets: transaction control nests as savepoints; dead once the callback returns. */
class ClientHandle {
  readonly client: AuthorizedClient
  depth = 0
  #ended = false

  constructor(target: pg.Client) {
    const query = (config: unknown, values?: unknown, callback?: unknown): unknown => {
      const fail = (err: PgAuthorizeError) => {
        if (typeof values === 'function' || typeof callback === 'function') throw err
        return Promise.reject(err)
      }
      if (this.#ended) {
        return fail(new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'this client belongs to a callback that has returned; it may not be used any more'))
      }
      const text = typeof config === 'string'
        ? config
        : config !== null && typeof config === 'object' && typeof (config as { submit?: unknown }).submit !== 'function'
          ? (config as { text?: unknown }).text
          : undefined
      if (typeof text === 'string') {
        let rewritten: string | undefined
        try {
          rewritten = this.#rewrite(text)
        } catch (err) {
          return fail(err as PgAuthorizeError)
        }
        if (rewritten !== undefined) {
          config = typeof config === 'string' ? rewritten : { ...(config as object), text: rewritten }
        }
      }
      return (target.query as (...args: unknown[]) => unknown).call(target, config, values, callback)
    }
    const refuseRelease = () => {
      throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'the authorizer gives the connection back itself when the callback returns')
    }
    this.client = new Proxy(target, {
      get: (t, prop, receiver) => {
        if (prop === 'query') return query
        if (prop === 'release') return refuseRelease
        const v = Reflect.get(t, prop, receiver) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
      },
    })
  }

  end(): void {
    this.#ended = true
  }

  #rewrite(text: string): string | undefined {
    if (text.length > 64) return undefined
    if (BEGIN.test(text)) return `SAVEPOINT pg_authorize_${++this.depth}`
    if (BEGIN_WITH_MODE.test(text)) {
      throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'a nested BEGIN cannot set an isolation level or access mode: the call runs in one transaction already', {
        hint: 'pass isolationLevel / readOnly / deferrable to withToken, withClaims or anonymous',
      })
    }
    if (COMMIT.test(text)) {
      if (this.depth === 0) throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'COMMIT without BEGIN: the authorizer commits when the callback returns')
      return `RELEASE SAVEPOINT pg_authorize_${this.depth--}`
    }
    if (ROLLBACK.test(text)) {
      if (this.depth === 0) throw new PgAuthorizeError('ERR_TRANSACTION_CONTROL', 'ROLLBACK without BEGIN: throw from the callback to roll the call back')
      const name = `pg_authorize_${this.depth--}`
      return `ROLLBACK TO SAVEPOINT ${name}`
    }
    return undefined
  }
}
