/**
 * What a gateway needs from a database it serves, loaded once through the owner connection: the sealing
 * key and the restricted roles' login credentials. Connections for client SQL log in *as the restricted
 * role itself* (security property 1); the owner connection is used for nothing else.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { ownerConnectError, parseDatabaseUrl, withDatabase, withUser } from './connect.js'
import { BackendReaper } from './backend-reaper.js'
import { RoleRepairer } from './role-repair.js'
import { loadSessionKey, sealClaims, type Claims, type SealOptions, type SessionKey } from './session.js'

export interface DatabaseContext {
  readonly database: string
  readonly ownerUrl: string
  readonly sessionKey: SessionKey
  /** The restricted roles set up in this database. */
  readonly roles: readonly string[]
  /** The restricted roles' time limits stored by setup, ms (0: none); both 0 before setup stored any. */
  readonly limits: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number }
  /**
   * How to log in as `role`: the owner URL's host, port, database and TLS settings, with the role's
   * own name and stored password. Throws ERR_ROLE_NOT_ALLOWED for a role that is not restricted.
   */
  roleConnectionConfig(role: string): pg.ClientConfig
  /** Re-reads the credentials and the sealing key (after `setup`, a rotation). */
  reload(): Promise<void>
  /** Re-reads only the current sealing key (on `owner` when given); resolves true when it changed (a rotation). */
  reloadKey(owner?: pg.ClientBase): Promise<boolean>
  /**
   * Seals `claims` with the current key for a connection logged in as `role` in this database, naming
   * `provider` as who verified them (see `sealClaims`).
   */
  seal(claims: Claims, role: string, provider: string, options?: SealOptions): string
  /**
   * Undoes what a restricted role may do to itself with raw SQL and that would outlive its session:
   * `ALTER ROLE CURRENT_USER PASSWORD ...` (locks the gateway out) and `ALTER ROLE CURRENT_USER SET ...`
   * (e.g. `statement_timeout = 1` for every later connection of every user). Postgres lets any role do
   * both to itself and has no privilege to revoke that, so the gateway repairs it through the owner
   * connection whenever a login fails or a new connection runs with stored role defaults (`checkSession`).
   * Single-flight (see role-repair.ts); resolves true when this call ran the repair, false when it joined
   * one in flight.
   */
  repairRole(role: string): Promise<boolean>
  /**
   * Runs `fn` on a connection of this context's owner pool: small and bounded (security property 10), so
   * nothing a client does (a NOTIFY flood, a login storm) can make the gateway open owner connections
   * without limit. Everything the gateway does with owner rights goes through here.
   */
  withOwner<T>(fn: (owner: pg.ClientBase) => Promise<T>): Promise<T>
  /**
   * Terminates backend `pid` of `role` (started at `backendStart`, epoch seconds as text) through the owner
   * after a short grace period, unless it has exited by then: for a session that is over but whose
   * statement ignores the cancel (see backend-reaper.ts).
   */
  reapBackend(pid: number, backendStart: string, role: string): void
  /** Closes the owner pool. */
  close(): Promise<void>
}

/** Owner connections one database context may hold at once. */
export const OWNER_POOL_MAX = 2

export { LOGIN_FAILED_SQLSTATE } from './role-repair.js'

/** Session defaults the Neon client's type parsers rely on, sent in the startup packet. */
export const SESSION_OPTIONS = '-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c bytea_output=hex -c client_encoding=UTF8 -c extra_float_digits=1'

/**
 * The startup options of a restricted-role connection: {@link SESSION_OPTIONS} plus the time limits setup
 * stored. In the startup packet (source `client`), not as role settings: see `SESSION_LIMIT_DEFAULTS` in
 * setup.ts. Every path that logs in as a restricted role (HTTP pools, wire sessions, `as`, the policy
 * tester, the console) takes its config from `roleConnectionConfig`, so all of them run under the limits.
 */
export function sessionOptions(limits: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number }): string {
  let out = SESSION_OPTIONS
  if (limits.statementTimeoutMs > 0) out += ` -c statement_timeout=${limits.statementTimeoutMs}`
  if (limits.idleInTransactionTimeoutMs > 0) out += ` -c idle_in_transaction_session_timeout=${limits.idleInTransactionTimeoutMs}`
  return out
}

/** Loads the context of the database named by `ownerUrl` (or of `database` on the same server). */
export async function openDatabaseContext(ownerUrl: string, database?: string): Promise<DatabaseContext> {
  const url = database ? withDatabase(ownerUrl, database) : ownerUrl
  let sessionKey: SessionKey
  let credentials = new Map<string, string>()
  let dbName = ''
  let limits = { statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0 }
  let options = SESSION_OPTIONS
  parseDatabaseUrl(url)
  const owners = new pg.Pool({
    connectionString: url,
    max: OWNER_POOL_MAX,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  })
  owners.on('error', () => {}) // an idle connection that drops is replaced on the next use
  const withOwner = async <T>(fn: (owner: pg.ClientBase) => Promise<T>): Promise<T> => {
    const c = await owners.connect().catch((err: unknown) => {
      throw ownerConnectError(url, err)
    })
    let broken: Error | undefined
    try {
      return await fn(c)
    } catch (err) {
      // A query error leaves the connection usable; a dropped socket does not.
      if ((err as { code?: unknown }).code === undefined) broken = err as Error
      throw err
    } finally {
      c.release(broken)
    }
  }
  const load = async () => {
    await withOwner(async (c) => {
      sessionKey = await loadSessionKey(c)
      const r = await c.query<{ role: string; password: string; db: string }>(
        'select role, password, current_database() as db from pgauthorize.role_credentials',
      )
      credentials = new Map(r.rows.map((x) => [x.role, x.password]))
      const here = (await c.query<{ d: string; reset: boolean }>(
        // From the catalog: the gateway role has no USAGE on `auth`, which to_regprocedure would need.
        `select current_database() as d, exists (select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n
           on n.oid = p.pronamespace where n.nspname = 'auth' and p.proname = 'reset_session') as reset`,
      )).rows[0]!
      dbName = here.d
      // Every pooled connection is reset with it (session.ts): a gateway newer than the database's schema
      // would fail every request instead of refusing to start.
      if (!here.reset) {
        throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', `pg-authorize in database '${dbName}' is older than this gateway`, {
          hint: 'run: pg-authorize setup --database-url OWNER_URL (it applies the new migrations and keeps everything else)',
        })
      }
      // Absent in a database set up before the limits existed: none until setup runs again.
      const l = await c.query<{ s: number; i: number }>(
        'select statement_timeout_ms as s, idle_in_transaction_timeout_ms as i from pgauthorize.session_limits',
      ).catch((err: { code?: string }) => {
        if (err.code === '42P01') return { rows: [] }
        throw err
      })
      limits = { statementTimeoutMs: l.rows[0]?.s ?? 0, idleInTransactionTimeoutMs: l.rows[0]?.i ?? 0 }
      options = sessionOptions(limits)
    })
  }
  const repairer = new RoleRepairer({ withOwner, password: (role) => credentials.get(role) })
  const reaper = new BackendReaper({ withOwner })
  try {
    await load()
  } catch (err) {
    await owners.end().catch(() => {})
    throw err
  }
  return {
    get database() {
      return dbName
    },
    ownerUrl: url,
    get sessionKey() {
      return sessionKey
    },
    get roles() {
      return [...credentials.keys()].sort()
    },
    get limits() {
      return limits
    },
    roleConnectionConfig(role: string): pg.ClientConfig {
      const password = credentials.get(role)
      if (password === undefined) {
        throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${role}' is not a restricted role of database '${dbName}'`)
      }
      return { connectionString: withUser(url, role, password), options }
    },
    reload: load,
    async reloadKey(owner?: pg.ClientBase): Promise<boolean> {
      const next = owner ? await loadSessionKey(owner) : await withOwner((c) => loadSessionKey(c))
      if (next.generation === sessionKey.generation && next.key.equals(sessionKey.key)) return false
      sessionKey = next
      return true
    },
    seal(claims, role, provider, options) {
      return sealClaims(sessionKey, claims, { role, database: dbName, provider }, options)
    },
    repairRole: (role: string) => repairer.repair(role),
    reapBackend: (pid, backendStart, role) => reaper.schedule(pid, backendStart, role),
    withOwner,
    close: () => {
      reaper.close()
      return owners.end()
    },
  }
}
