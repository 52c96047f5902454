/**
 * HTTP pools through a transaction-mode pooler (PgBouncer `pool_mode = transaction`), for many gateways
 * sharing one Postgres (issue 18 item 4).
 *
 * The gateway keeps logging in *as each restricted role with its own password* (security property 1): only
 * the host and port change, so the pooler must know the roles' passwords (its `auth_file`, see
 * docs/deployment.md) and its `[databases]` must name the served databases as they are.
 *
 * A transaction-mode pooler hands each transaction to whichever server connection is free, so nothing of a
 * session can be relied on between two transactions, and two things change in `GatewayPools`
 * (`transactionPooler: true`):
 * - every request resets the server connection it lands on, in its own pipeline (one Sync, so the pooler
 *   keeps one server connection for all of it): another gateway, or another request of this one, may have
 *   left a setting there;
 * - the startup options (the Neon client's session defaults and setup's time limits) cannot travel in the
 *   startup packet (PgBouncer refuses unknown startup parameters, and would apply them to no server
 *   connection in particular): they are set by that same reset, right after its `RESET ALL`.
 *
 * Claims are installed transaction-locally by every HTTP request already, so they never outlive it. Wire and
 * WebSocket sessions install theirs for the session and keep prepared statements: they need session mode
 * and connect to Postgres directly.
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../../errors.js'

/** Where the pooler listens, and the TLS parameters to reach it. */
export interface PoolerAddress {
  readonly host: string
  readonly port: number
  /** Query parameters of the pooler URL (`sslmode`, `sslrootcert`...), replacing the database URL's. */
  readonly params: URLSearchParams
}

/**
 * Parses `postgresql://HOST:PORT[?sslmode=...]`. It names only where the pooler is: no user, password or
 * database (each connection logs in as its role, to its database, with that role's credentials).
 */
export function parsePoolerUrl(url: string): PoolerAddress {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the pooler URL is not a valid URL', { hint: 'e.g. postgresql://127.0.0.1:6432' })
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the pooler URL must start with postgresql://')
  }
  if (u.username || u.password) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the pooler URL must not name a user or password', {
      hint: 'the gateway logs in through the pooler as each restricted role, with that role\'s own password',
    })
  }
  if (u.pathname !== '' && u.pathname !== '/') {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the pooler URL must not name a database', {
      hint: 'each request goes to its own database; name the served databases alike in the pooler\'s [databases]',
    })
  }
  if (!u.hostname) throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the pooler URL must name a host')
  return { host: u.hostname, port: u.port ? Number(u.port) : 5432, params: u.searchParams }
}

/**
 * The same login (role, password, database) sent to the pooler instead of Postgres. The startup options stay
 * in the config: `GatewayPools` with `transactionPooler` moves them into each request's reset.
 */
export function throughPooler(config: pg.ClientConfig, pooler: PoolerAddress): pg.ClientConfig {
  if (typeof config.connectionString !== 'string') {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'a role connection without a connection string cannot go through the pooler')
  }
  const u = new URL(config.connectionString)
  u.hostname = pooler.host
  u.port = String(pooler.port)
  u.search = pooler.params.toString()
  return { ...config, connectionString: u.toString() }
}
