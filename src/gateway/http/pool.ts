/**
 * Connection pools of the gateway: one pg.Pool per (database, role), each connection logged in *as that role*.
 *
 * - A pool is created lazily on the first `acquire` for its key, from `connectionConfig(database, role)`
 *   (security property 1: the config logs in as the restricted role itself, never a privileged login).
 * - The session defaults the Neon client's type parsers rely on (DateStyle, IntervalStyle, bytea_output,
 *   client_encoding) are sent in the startup packet, so they cost nothing per request and `RESET ALL`
 *   returns to them.
 * - `acquire` waits at most `acquireTimeoutMillis` and then fails with `ERR_POOL_TIMEOUT`, never hangs.
 * - Fair share (issue 22, fair-share.ts): an identity (provider + `sub`, given by the caller) holds at most
 *   `fairShare.perIdentity` connections of a pool at once, by default half; past that its requests wait in
 *   its own queue and are served after other identities, and one too many gets `ERR_FAIR_SHARE_EXCEEDED`
 *   (HTTP 429). Slots are counted in front of pg.Pool, whose FIFO queue let one identity starve the rest.
 * - Every session is reset before it is reused (security property 4), in one of two ways:
 *   - a connection given back *idle* (its last `ReadyForQuery` said I: no transaction open, nothing pending)
 *     returns to the pool at once, marked dirty. Whoever acquires it with `{ pipelineReset: true }` gets
 *     the reset as `lease.prelude` and must run it ahead of its own statements in the same
 *     pipeline, before its one Sync (the HTTP handler does: no round trip of its own); any other caller gets it
 *     reset by `acquire` itself first;
 *   - a connection given back in a transaction, failed or with a reply still pending is reset with
 *     `RESET_SESSION_SQL` (which rolls back) in the background, and only then returned.
 *   A connection whose reset fails, or that saw a protocol-level failure (`lease.destroy()`,
 *   `lease.cancel()`), is closed instead.
 * - Nothing lingers on an idle connection (issue 14 item 6): advisory locks, LISTEN, temp tables and
 *   `WITH HOLD` cursors hold resources other sessions can see. A connection given back dirty that no request
 *   takes within `idleResetMillis` (default 50 ms) is reset in the background with `RESET_SESSION_SQL`; a
 *   request that takes it first resets it in its pipeline as above (so a busy pool pays nothing extra), and
 *   one that takes it during that reset waits for it and needs none of its own.
 * - Every reset has a deadline (`resetTimeoutMillis`): a connection that misses it is closed, never kept
 *   waiting behind a reply that will not come (issue 23: a COPY left a connection waiting forever).
 * - Through a transaction-mode pooler (`transactionPooler`, see pooler.ts) a connection is a path to
 *   whichever server connection is free, so its session state says nothing: every lease carries the reset
 *   as its prelude (which also sets the startup options, kept out of the startup packet), and there is no
 *   idle reset (it would reset some other server connection).
 *
 * @example
 * const pools = new GatewayPools({ connectionConfig: async (db, role) => ({ host, port, database: db, user: role, password }) })
 * const lease = await pools.acquire('app', 'authenticated')
 * try { await lease.client.query('select 1') } finally { lease.release() }
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { RESET_SESSION_SQL, resetSessionSteps } from '../../database/session.js'
import { SESSION_OPTIONS } from '../../database/context.js'
import { RoleTaintedError, checkSession } from '../../database/role-repair.js'
import { backendKey, destroySocket, isReadyForQuery, onReadyForQuery } from '../../database/pg-internals.js'
import { identityKey, subjectHash } from '../../auth/identity.js'
import type { EventSink } from '../../observability/events.js'
import { parseOptionsParameter, sendCancelRequest } from '../protocol.js'
import type { Step } from './execute.js'
import { FairShare, FairShareRefusal } from './fair-share.js'

export interface GatewayPoolsOptions {
  /** How to log in to `database` as `role` (host, port, user = role, its stored password, ssl...). */
  connectionConfig(database: string, role: string): Promise<pg.ClientConfig>
  /** Most connections per (database, role). Default 10. */
  max?: number
  /** Milliseconds an idle connection is kept before it is closed. Default 300000 (5 min, as Neon). */
  idleTimeoutMillis?: number
  /** Milliseconds `acquire` waits for a free connection (including connecting) before ERR_POOL_TIMEOUT. Default 5000. */
  acquireTimeoutMillis?: number
  /** Milliseconds a CancelRequest may take before the connection is dropped anyway. Default 1000. */
  cancelTimeoutMillis?: number
  /**
   * Milliseconds a connection given back dirty may sit idle before it is reset in the background, so that
   * no advisory lock, LISTEN, temp table or cursor outlives its request by more than about this. Default 50.
   */
  idleResetMillis?: number
  /** Milliseconds any reset may take before the connection is closed instead. Default 5000. */
  resetTimeoutMillis?: number
  /**
   * Each identity's share of a pool (see fair-share.ts), or `false` for none (one FIFO queue, as pg.Pool):
   * - `perIdentity`: most connections one identity holds at once. Default: half of `max` (at least 1);
   * - `queuePerIdentity`: most of its requests waiting beyond that; one more is refused at once. Default `max`.
   */
  fairShare?: { perIdentity?: number; queuePerIdentity?: number } | false
  /**
   * Logs in through `connect`, repairing what a client may have done to `role` itself (`ALTER ROLE
   * CURRENT_USER PASSWORD/SET`) and retrying: `Authenticator.loginAsRole`. When given, every new connection
   * is checked with `checkSession` before it is used, and a tainted one is discarded.
   */
  loginAsRole?<T>(target: { database: string; role: string }, connect: () => Promise<T>): Promise<T>
  /**
   * The connections go through a transaction-mode pooler (pooler.ts): every lease carries the reset, which
   * also applies the startup options; acquire with `{ pipelineReset: true }` and run the prelude in the
   * same pipeline as the statements. Default false.
   */
  transactionPooler?: boolean
  /** Hook for logs/metrics; never receives secrets. */
  onEvent?: EventSink
}

/** A connection lent to one request. Call exactly one of `release`, `destroy`, `cancel`. */
export interface Lease {
  readonly client: pg.Client
  readonly database: string
  readonly role: string
  /**
   * Steps the caller must run first, in the same pipeline as its own statements (one Sync): with
   * `acquire(..., { pipelineReset: true })`, the reset of the previous user's session state when it is
   * still there; otherwise none.
   */
  readonly prelude: readonly Step[]
  /**
   * The same reset without its closing COMMIT, for a pipeline that is one implicit transaction and never
   * sets its isolation (a single `/sql` query): one statement fewer. Empty when `prelude` is. It fails with
   * SQLSTATE `RESET_NEEDS_OWN_TRANSACTION` (before anything runs) when the session listens: run the request
   * again on the same lease with `prelude`.
   */
  readonly inlinePrelude: readonly Step[]
  /** Gives the connection back: reset in the background, then reused (or closed if the reset fails). */
  release(): void
  /** Closes the connection instead of reusing it (its protocol state is unknown). */
  destroy(): void
  /** Cancels the running statement (PG CancelRequest), then closes the connection. */
  cancel(): Promise<void>
}

export interface PoolStats {
  database: string
  role: string
  /** Open connections, leased or idle. */
  total: number
  idle: number
  /** Requests waiting for a connection. */
  waiting: number
  /** Connections lent out or being reset. */
  leased: number
}

interface Entry {
  database: string
  role: string
  pool: pg.Pool
  leased: number
  /** The slot counter in front of `pool`; undefined without fair share. */
  share: FairShare | undefined
  /** The reset as pipeline steps (through a pooler, with the startup options in it), ending with COMMIT. */
  reset: readonly Step[]
  /** `reset` inside the request's own implicit transaction, without its COMMIT (`Lease.inlinePrelude`). */
  inlineReset: readonly Step[]
}

/** Who is asking for a connection, for the fair share (never logged as is: the sub is hashed). */
export interface PoolIdentity {
  provider?: string | undefined
  subject?: string | undefined
}

/** What the pool knows about one connection's session. */
interface SessionState {
  /** The last ReadyForQuery status: I (idle), T (in a transaction), E (in a failed transaction). */
  status: string
  /** Used since its last reset. */
  dirty: boolean
  /** The pending idle reset (see `idleResetMillis`). */
  idleTimer: ReturnType<typeof setTimeout> | undefined
  /** The idle reset in flight; it never rejects (a failed reset closes the connection and sets `broken`). */
  resetting: Promise<void> | undefined
  /** Closed by a failed or late reset: never lend it again. */
  broken: boolean
}

const sessions = new WeakMap<pg.ClientBase, SessionState>()

/** Pipeline steps of the gateway's own (not captured) for each statement. */
const ownSteps = (texts: readonly string[]): readonly Step[] => texts.map((text) => ({ text, values: [], capture: false, arrayMode: true, rawText: true }))
const NO_STEPS: readonly Step[] = []

const noop = () => {}

/** One pg.Pool per (database, role); see the module comment. */
export class GatewayPools {
  readonly #opts: Required<Omit<GatewayPoolsOptions, 'onEvent' | 'loginAsRole' | 'fairShare'>> & Pick<GatewayPoolsOptions, 'onEvent' | 'loginAsRole'>
  readonly #share: { perIdentity: number; queuePerIdentity: number } | undefined
  readonly #pools = new Map<string, Promise<Entry>>()
  readonly #settled = new Set<Entry>()
  #closed = false

  constructor(options: GatewayPoolsOptions) {
    this.#opts = {
      connectionConfig: options.connectionConfig,
      max: options.max ?? 10,
      idleTimeoutMillis: options.idleTimeoutMillis ?? 300_000,
      acquireTimeoutMillis: options.acquireTimeoutMillis ?? 5_000,
      cancelTimeoutMillis: options.cancelTimeoutMillis ?? 1_000,
      idleResetMillis: options.idleResetMillis ?? 50,
      resetTimeoutMillis: options.resetTimeoutMillis ?? 5_000,
      transactionPooler: options.transactionPooler ?? false,
      onEvent: options.onEvent,
      loginAsRole: options.loginAsRole,
    }
    const max = this.#opts.max
    this.#share = options.fairShare === false ? undefined : {
      perIdentity: options.fairShare?.perIdentity ?? Math.max(1, Math.floor(max / 2)),
      queuePerIdentity: options.fairShare?.queuePerIdentity ?? max,
    }
  }

  /**
   * Lends a connection logged in to `database` as `role`. Rejects with ERR_POOL_TIMEOUT when none frees up
   * in time, ERR_DB_CONNECT when Postgres cannot be reached or refuses the login (no details: they may name
   * credentials), ERR_SHUTTING_DOWN after `close()`. If `signal` aborts while waiting, the connection is
   * handed back as soon as it arrives and the promise rejects with ERR_QUERY_CANCELLED. With fair share,
   * `identity` names who asks (none: the shared anonymous key), and ERR_FAIR_SHARE_EXCEEDED means that
   * identity is past its share (its queue is full, or it waited at its cap for `acquireTimeoutMillis`).
   */
  async acquire(
    database: string,
    role: string,
    signal?: Pick<AbortSignal, 'aborted'>,
    options: { pipelineReset?: boolean; identity?: PoolIdentity } = {},
  ): Promise<Lease> {
    if (this.#closed) throw new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the gateway is shutting down')
    // A reset of its own would land on some server connection, the caller's statements on another.
    if (this.#opts.transactionPooler && !options.pipelineReset) throw new Error('through a transaction pooler, acquire with { pipelineReset: true }')
    const entry = await this.#entry(database, role)
    const share = entry.share
    if (share === undefined) return this.#lease(entry, database, role, signal, options, undefined)
    const key = identityKey(options.identity?.provider, options.identity?.subject)
    if (!share.tryTake(key)) {
      const started = performance.now()
      const heldNow = share.held(key)
      const reason = heldNow >= share.perIdentity && share.perIdentity < share.slots ? 'share' : 'pool'
      try {
        await share.wait(key, this.#opts.acquireTimeoutMillis)
        this.#opts.onEvent?.({ kind: 'queue-wait', database, role, reason, ms: performance.now() - started })
      } catch (err) {
        throw this.#refusal(err, database, role, options.identity, heldNow)
      }
    }
    let lent = false
    try {
      const lease = await this.#lease(entry, database, role, signal, options, () => share.release(key))
      lent = true
      return lease
    } finally {
      // A lease gives its slot back when its connection does; a failed acquire at once.
      if (!lent) share.release(key)
    }
  }

  /** The FairShareRefusal of `wait` as the error the client sees, told to the observer. */
  #refusal(err: unknown, database: string, role: string, identity: PoolIdentity | undefined, held: number): PgAuthorizeError {
    if (!(err instanceof FairShareRefusal)) return err as PgAuthorizeError
    const share = this.#share!
    const who = { provider: identity?.provider, subjectHash: subjectHash(identity?.subject) }
    if (err.reason === 'pool') {
      // Waiting behind other identities, under its own share: the pool is simply too small.
      return this.#connectError(new Error('timeout'), database, role)
    }
    this.#opts.onEvent?.({ kind: 'limit-refused', transport: 'http', reason: err.reason === 'share' ? 'share-timeout' : 'queue-full', database, role, held, ...who })
    return new PgAuthorizeError(
      'ERR_FAIR_SHARE_EXCEEDED',
      err.reason === 'share'
        ? `too many concurrent requests from this identity: waited ${this.#opts.acquireTimeoutMillis} ms at its share ` +
          `of ${share.perIdentity} of ${this.#opts.max} connections (database "${database}", role "${role}")`
        : `too many concurrent requests from this identity: ${share.perIdentity} running and ${share.queuePerIdentity} ` +
          `waiting already (its share of the pool for database "${database}", role "${role}")`,
      { hint: 'send fewer requests at once from one user; retry after the ones running finish' },
    )
  }

  async #lease(
    entry: Entry,
    database: string,
    role: string,
    signal: Pick<AbortSignal, 'aborted'> | undefined,
    options: { pipelineReset?: boolean },
    onGiveBack: (() => void) | undefined,
  ): Promise<Lease> {
    // A dirty connection is reset here unless the caller resets it in its pipeline; one whose reset fails
    // (it died in the pool) is discarded and the next one tried, a bounded number of times.
    for (let attempt = 0; ; attempt++) {
      const client = await this.#connect(entry, database, role)
      entry.leased++
      const session = sessions.get(client)!
      clearTimeout(session.idleTimer)
      session.idleTimer = undefined
      // Taken while its idle reset runs: wait for it (the session is clean afterwards, or closed).
      if (session.resetting) await session.resetting
      if (session.broken) {
        entry.leased--
        client.release(true)
        if (attempt < this.#opts.max) continue
        throw this.#connectError(new Error('the connection was closed after a failed reset'), database, role)
      }
      if (session.dirty && !options.pipelineReset) {
        try {
          await resetWithin(client, this.#opts.resetTimeoutMillis)
          session.dirty = false
        } catch (err) {
          entry.leased--
          client.release(err as Error)
          if (attempt < this.#opts.max) continue
          throw this.#connectError(err, database, role)
        }
      }
      const lease = new PooledLease(client, entry, this.#opts, session, onGiveBack)
      if (signal?.aborted) {
        lease.release()
        throw new PgAuthorizeError('ERR_QUERY_CANCELLED', 'the request was cancelled')
      }
      return lease
    }
  }

  async #connect(entry: Entry, database: string, role: string): Promise<pg.PoolClient> {
    const login = this.#opts.loginAsRole
    try {
      if (!login) return await entry.pool.connect()
      return await login({ database, role }, () => entry.pool.connect())
    } catch (err) {
      throw this.#connectError(err, database, role)
    }
  }

  /** A snapshot of every pool. */
  stats(): PoolStats[] {
    const out: PoolStats[] = []
    for (const p of this.#settled) {
      out.push({
        database: p.database,
        role: p.role,
        total: p.pool.totalCount,
        idle: p.pool.idleCount,
        waiting: p.pool.waitingCount + (p.share?.waiting() ?? 0),
        leased: p.leased,
      })
    }
    return out
  }

  /** Closes every pool; leased connections are closed when they are given back. */
  async close(): Promise<void> {
    this.#closed = true
    const entries = await Promise.allSettled(this.#pools.values())
    this.#pools.clear()
    this.#settled.clear()
    await Promise.all(
      entries.map((e) => (e.status === 'fulfilled' ? e.value.pool.end().catch(noop) : undefined)),
    )
  }

  #entry(database: string, role: string): Promise<Entry> {
    const key = database + '\0' + role
    let p = this.#pools.get(key)
    if (p === undefined) {
      p = this.#create(database, role)
      this.#pools.set(key, p)
      // A failed config lookup must not poison the key forever.
      p.catch(() => this.#pools.delete(key))
    }
    return p
  }

  async #create(database: string, role: string): Promise<Entry> {
    let config: pg.ClientConfig
    try {
      config = await this.#opts.connectionConfig(database, role)
    } catch (err) {
      if (isPgAuthorizeError(err)) throw err
      throw new PgAuthorizeError('ERR_DB_CONNECT', `no connection settings for role "${role}"`, { cause: err })
    }
    // Startup options every gateway connection gets: the Postgres defaults Neon's client parsers expect.
    // Through a transaction-mode pooler they are set by each request's reset instead (pooler.ts).
    const options = !config.options
      ? SESSION_OPTIONS
      : config.options.includes(SESSION_OPTIONS)
        ? config.options
        : `${SESSION_OPTIONS} ${config.options}`
    const pooled = this.#opts.transactionPooler
    const settings = pooled ? startupSettings(options) : []
    const { options: _sent, ...rest } = config
    const pool = new pg.Pool({
      ...rest,
      ...(pooled ? {} : { options }),
      max: this.#opts.max,
      idleTimeoutMillis: this.#opts.idleTimeoutMillis,
      connectionTimeoutMillis: this.#opts.acquireTimeoutMillis,
      // Settings a client stored on the role with ALTER ROLE apply to every new connection: never serve one.
      ...(this.#opts.loginAsRole
        ? { onConnect: async (client: pg.ClientBase) => {
            // The session's own settings, not the catalog: what it really runs with (pg-pool ends it on throw).
            const check = await checkSession(client)
            if (check.tainted.length > 0) throw new RoleTaintedError(check.tainted)
          } }
        : {}),
    })
    // An idle connection that dies (server restart) is removed by pg-pool; without a listener it would crash.
    pool.on('error', (err) => this.#opts.onEvent?.({ kind: 'pool-error', database, role, message: err.message, cause: errorCode(err) }))
    // A leased connection can die too (we destroy sockets on cancel): keep that from becoming an uncaught error.
    pool.on('connect', (client) => {
      client.on('error', noop)
      const session: SessionState = { status: 'I', dirty: false, idleTimer: undefined, resetting: undefined, broken: false }
      // Removed from the pool (idle timeout, error, close): no idle reset may fire on it afterwards.
      client.once('end', () => clearTimeout(session.idleTimer))
      sessions.set(client, session)
      // First in line, so the status is current before the query that is waiting for it settles.
      onReadyForQuery(client, (status) => { session.status = status })
    })
    const share = this.#share && new FairShare({ slots: this.#opts.max, ...this.#share })
    const entry: Entry = {
      database, role, pool, leased: 0, share,
      reset: ownSteps(resetSessionSteps({ settings })),
      inlineReset: ownSteps(resetSessionSteps({ settings, inTransaction: true })),
    }
    this.#settled.add(entry)
    return entry
  }

  #connectError(err: unknown, database: string, role: string): PgAuthorizeError {
    if (isPgAuthorizeError(err)) return err
    const message = err instanceof Error ? err.message : ''
    // pg-pool's own wording for "waited connectionTimeoutMillis" (queue) and pg's for a slow connect.
    if (/timeout/i.test(message)) {
      this.#opts.onEvent?.({ kind: 'pool-timeout', database, role })
      return new PgAuthorizeError(
        'ERR_POOL_TIMEOUT',
        `timed out after ${this.#opts.acquireTimeoutMillis} ms waiting for a database connection ` +
          `(database "${database}", role "${role}", pool size ${this.#opts.max})`,
        { cause: err, hint: 'the gateway is overloaded or the database is unreachable; retry later' },
      )
    }
    this.#opts.onEvent?.({ kind: 'connect-error', database, role, message, cause: errorCode(err) })
    return new PgAuthorizeError('ERR_DB_CONNECT', `could not connect to database "${database}" as role "${role}"`, {
      cause: err,
    })
  }
}

interface LeaseOptions {
  cancelTimeoutMillis: number
  idleResetMillis: number
  resetTimeoutMillis: number
  transactionPooler: boolean
  onEvent?: EventSink | undefined
}

class PooledLease implements Lease {
  readonly client: pg.Client
  readonly #poolClient: pg.PoolClient
  readonly #entry: Entry
  readonly #opts: LeaseOptions
  readonly #session: SessionState
  readonly prelude: readonly Step[]
  readonly inlinePrelude: readonly Step[]
  readonly #onGiveBack: (() => void) | undefined
  #done = false

  constructor(client: pg.PoolClient, entry: Entry, opts: LeaseOptions, session: SessionState, onGiveBack: (() => void) | undefined) {
    this.#onGiveBack = onGiveBack
    this.#poolClient = client
    this.client = client as unknown as pg.Client
    this.#entry = entry
    this.#opts = opts
    this.#session = session
    const reset = session.dirty || opts.transactionPooler
    this.prelude = reset ? entry.reset : NO_STEPS
    this.inlinePrelude = reset ? entry.inlineReset : NO_STEPS
  }

  get database(): string {
    return this.#entry.database
  }

  get role(): string {
    return this.#entry.role
  }

  release(): void {
    if (this.#take()) return
    // Idle, with no reply pending: back to the pool now; the next user resets it (see the module comment).
    if (this.#session.status === 'I' && isReadyForQuery(this.client)) {
      this.#session.dirty = true
      this.#giveBack(undefined)
      if (!this.#opts.transactionPooler) this.#scheduleIdleReset()
      return
    }
    // Not awaited: the caller's response does not wait for the reset. The connection goes back to the
    // pool only once the reset has succeeded, so no other request can see this one's state. A reset stuck
    // behind a reply that never comes misses its deadline, and the connection is closed.
    resetWithin(this.#poolClient, this.#opts.resetTimeoutMillis).then(
      () => {
        this.#session.dirty = false
        this.#giveBack(undefined)
      },
      (err: Error) => {
        this.#opts.onEvent?.({ kind: 'reset-failed', database: this.database, role: this.role, message: err.message })
        this.#giveBack(err)
      },
    )
  }

  destroy(): void {
    if (this.#take()) return
    destroySocket(this.client)
    this.#giveBack(true)
  }

  async cancel(): Promise<void> {
    if (this.#take()) return
    const key = backendKey(this.client)
    if (key) await sendCancelRequest(key, this.#opts.cancelTimeoutMillis)
    // Neon's proxy also discards the connection after a cancel: its protocol state is unknown.
    destroySocket(this.client)
    this.#giveBack(true)
  }

  /**
   * Resets the connection if it is still idle in the pool after `idleResetMillis`. `acquire` cancels the
   * timer when a request takes it first; that request resets it in its pipeline instead.
   */
  #scheduleIdleReset(): void {
    const session = this.#session
    const client = this.#poolClient
    const { database, role } = this
    const opts = this.#opts
    clearTimeout(session.idleTimer)
    session.idleTimer = setTimeout(() => {
      session.idleTimer = undefined
      if (!session.dirty || session.resetting) return
      session.resetting = resetWithin(client, opts.resetTimeoutMillis).then(
        () => {
          session.dirty = false
        },
        (err: Error) => {
          // Closing the socket makes pg-pool drop the idle client (its 'error' listener); `broken` covers a
          // request that took it in the meantime.
          session.broken = true
          opts.onEvent?.({ kind: 'reset-failed', database, role, message: err.message })
          destroySocket(client)
        },
      ).finally(() => {
        session.resetting = undefined
      })
    }, opts.idleResetMillis)
    session.idleTimer.unref?.()
  }

  #take(): boolean {
    if (this.#done) return true
    this.#done = true
    return false
  }

  #giveBack(err: Error | boolean | undefined): void {
    this.#entry.leased--
    this.#poolClient.release(err)
    // After the connection is back in pg.Pool, so the waiter this slot goes to finds it there.
    this.#onGiveBack?.()
  }
}

/**
 * `RESET_SESSION_SQL` on `client`, failing after `ms`: then the socket is closed, so the reset (queued behind
 * whatever the connection still waits for) can never complete later on a connection someone else holds.
 */
function resetWithin(client: pg.ClientBase, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      destroySocket(client)
      reject(new Error(`the session reset did not finish within ${ms} ms`))
    }, ms)
    client.query(RESET_SESSION_SQL).then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      (err: Error) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

/**
 * The settings of a startup `options` string, for a pooler that cannot carry them. Refused when it holds
 * anything else: these options come from `roleConnectionConfig`, and a setting silently dropped would be a
 * time limit silently lost.
 */
function startupSettings(options: string): Array<[string, string]> {
  const settings = parseOptionsParameter(options)
  if (settings === null) throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the startup options hold more than -c name=value settings')
  return settings
}

/** The SQLSTATE or system error code of a failed connection (`28P01`, `ECONNREFUSED`), never its message. */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : undefined
}
