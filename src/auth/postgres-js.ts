/**
 * The authorizer for postgres.js (`postgres`), which brings its own pool and cannot be handed a
 * node-postgres connection. So each restricted role gets a postgres.js instance of its own, logged in *as
 * that role* with the credentials the authenticator holds (never a privileged login plus `SET ROLE`), and
 * every call is one `sql.begin` whose first statement installs the sealed claims transaction-locally (or an
 * empty identity, for `anonymous`) and checks the session for settings a client stored on the role.
 *
 * Round trips: `begin` (postgres.js awaits it), then the claims pipelined with the callback's first query,
 * then `commit`: three for a one-query callback, as many as a bare `sql.begin`. If the claims fail, the
 * transaction is aborted and the callback's statements fail with it (fail closed).
 *
 * The trade-off against the node-postgres authorizer: postgres.js' pool does not reset a connection between
 * uses, so session state a callback leaves behind (a session-level `SET`, a temp table, `LISTEN`, an
 * advisory lock) stays on the connection for the next callback. The claims never do: each call installs its
 * own, or an empty one, first, and an envelope only works for the role and database it was sealed for. Prefer
 * `withToken` with `pg` when callbacks run SQL you do not control.
 *
 * postgres.js is not a dependency of pg-authorize: pass its default export.
 *
 * @example
 * import postgres from 'postgres'
 * import { createAuthorizer, authorizePostgresJs } from 'pg-authorize/auth'
 * const authz = await createAuthorizer({ databaseUrl })
 * const pgjs = authorizePostgresJs(authz, postgres)
 * const rows = await pgjs.withToken(token, (sql) => sql`select * from todos`)
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'
import { SESSION_SETTING, type Claims } from '../database/session.js'
import type { Authorizer, ClaimsOptions, TransactionOptions } from './authorizer.js'
import type { Identity } from './identity.js'

/** The part of a postgres.js transaction the adapter uses (`TransactionSql` of `postgres`). */
export interface PostgresJsTransaction {
  unsafe(query: string, parameters?: unknown[]): PromiseLike<unknown> & { execute(): unknown }
}

/** The part of a postgres.js `Sql` instance the adapter uses. */
export interface PostgresJsSql<Tx extends PostgresJsTransaction> {
  begin<T>(options: string, fn: (tx: Tx) => T | Promise<T>): Promise<unknown>
  end(options?: { timeout?: number }): Promise<void>
}

export interface PostgresJsAuthorizer<Tx extends PostgresJsTransaction> {
  withToken<T>(token: string, fn: (sql: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** Trusted server-side claims, as `Authorizer.withClaims`. */
  withClaims<T>(claims: Claims, fn: (sql: Tx) => Promise<T>, options?: ClaimsOptions): Promise<T>
  anonymous<T>(fn: (sql: Tx) => Promise<T>, options?: Omit<TransactionOptions, 'role'>): Promise<T>
  /** Ends every postgres.js instance this adapter made (not the authorizer). */
  end(): Promise<void>
}

export interface PostgresJsAdapterOptions {
  /** Connections per role. Default 10. */
  max?: number
  /** Role of `anonymous`. Default `anonymous`. */
  anonymousRole?: string
  /** Role of calls that name none. Default `authenticated`. */
  role?: string
}

/**
 * The claims (or none) and the session check, in one statement. A setting of source `user` or `database
 * user` came from `ALTER ROLE ... SET` by a client (see database/role-repair.ts): never run on it.
 */
const INSTALL_SQL = `select pg_catalog.set_config('${SESSION_SETTING}', $1, true) is null as unset,
  (select pg_catalog.count(*) from pg_catalog.pg_settings s
    where s.source operator(pg_catalog.=) any ('{user,"database user"}'::text[]))::int as tainted`

const MODE: Readonly<Record<string, string>> = {
  'read committed': 'isolation level read committed',
  'repeatable read': 'isolation level repeatable read',
  serializable: 'isolation level serializable',
}

function beginOptions(options: TransactionOptions): string {
  const parts: string[] = []
  if (options.isolationLevel !== undefined) {
    const m = MODE[options.isolationLevel]
    if (m === undefined) throw new PgAuthorizeError('ERR_ISOLATION_LEVEL_INVALID', `unknown isolation level; use one of ${Object.keys(MODE).join(', ')}`)
    parts.push(m)
  }
  if (options.readOnly) parts.push('read only')
  if (options.deferrable) parts.push('deferrable')
  return parts.join(' ')
}

/**
 * postgres.js calls through `authz`'s authenticator. `postgres` is postgres.js' default export; `extra`
 * is passed to it for every role (ssl, types, transform...; never `user`, `password` or `host`).
 */
export function authorizePostgresJs<Tx extends PostgresJsTransaction>(
  authz: Authorizer,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- postgres.js' options type is its own
  postgres: (url: string, options: any) => PostgresJsSql<Tx>,
  options: PostgresJsAdapterOptions & { extra?: Record<string, unknown> } = {},
): PostgresJsAuthorizer<Tx> {
  const instances = new Map<string, Promise<PostgresJsSql<Tx>>>()
  let ended = false

  const instance = (role: string): Promise<PostgresJsSql<Tx>> => {
    let p = instances.get(role)
    if (!p) {
      p = authz.authenticator.connectionConfig(authz.database, role).then((config) => {
        const startup = typeof config.options === 'string' ? { options: config.options } : {}
        return postgres(config.connectionString!, {
          ...options.extra,
          max: options.max ?? 10,
          connection: { ...(options.extra?.connection as Record<string, unknown> | undefined), ...startup },
          onnotice: () => {},
        })
      })
      p.catch(() => instances.delete(role))
      instances.set(role, p)
    }
    return p
  }

  async function run<T>(identity: Identity, fn: (sql: Tx) => Promise<T>, mode: TransactionOptions, retry = true): Promise<T> {
    if (ended) throw new PgAuthorizeError('ERR_SHUTTING_DOWN', 'the postgres.js authorizer has ended')
    const sql = await instance(identity.role)
    let tainted = false
    try {
      return (await sql.begin(beginOptions(mode), async (tx) => {
        const install = tx.unsafe(INSTALL_SQL, [identity.envelope ?? ''])
        install.execute() // sent now: the callback's first query is pipelined behind it
        const result = fn(tx)
        const rows = (await install) as Array<{ tainted: number }>
        if ((rows[0]?.tainted ?? 1) !== 0) {
          tainted = true
          throw new PgAuthorizeError('ERR_ROLE_TAMPERED', 'the database role carries settings a client stored')
        }
        return result
      })) as T
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (retry && (tainted || code === '28P01')) {
        // A client altered the role (ALTER ROLE CURRENT_USER PASSWORD/SET): repair it through the
        // authenticator, drop this role's connections (their reset values are tainted), and try once more.
        await authz.authenticator.repairRole(identity.database, identity.role)
        instances.delete(identity.role)
        await sql.end({ timeout: 0 }).catch(() => {})
        return run(identity, fn, mode, false)
      }
      throw err
    }
  }

  return {
    async withToken(token, fn, opts = {}) {
      return run(await authz.authenticate(token, { role: opts.role ?? options.role ?? 'authenticated' }), fn, opts)
    },
    async withClaims(claims, fn, opts = {}) {
      return run(await authz.seal(claims, { ...opts, role: opts.role ?? options.role ?? 'authenticated' }), fn, opts)
    },
    anonymous(fn, opts = {}) {
      return run({ role: options.anonymousRole ?? 'anonymous', database: authz.database, envelope: null }, fn, opts)
    },
    async end() {
      ended = true
      const all = [...instances.values()]
      instances.clear()
      await Promise.allSettled(all.map((p) => p.then((s) => s.end({ timeout: 5 }))))
    },
  }
}
