/**
 * Owner connections and the small SQL-text helpers the database side needs.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'

/** Double-quotes an identifier for SQL text (node-postgres' own escaping). */
export const quoteIdent = (name: string): string => pg.escapeIdentifier(name)
/** Single-quotes a literal for SQL text, for statements that take no parameters (CREATE ROLE ... PASSWORD). */
export const quoteLiteral = (value: string): string => pg.escapeLiteral(value)

/** The same connection string, naming another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = '/' + encodeURIComponent(database)
  return u.toString()
}

/**
 * The same connection string logging in as another user. (node-postgres lets values in a connection
 * string override `user`/`password` given beside it, so the URL itself must change.)
 */
export function withUser(url: string, user: string, password: string | undefined): string {
  const u = new URL(url)
  u.username = encodeURIComponent(user)
  u.password = password === undefined ? '' : encodeURIComponent(password)
  return u.toString()
}

/** The connection string with its password replaced by `****`, safe to print. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '****'
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '****')
    return u.toString()
  } catch {
    return '<invalid connection string>'
  }
}

/** Validates a connection string; the message never repeats it (it may hold a password). */
export function parseDatabaseUrl(url: string | undefined, what = 'database URL'): URL {
  if (!url) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `missing ${what}`, {
      hint: 'pass --database-url postgresql://OWNER:PASSWORD@HOST:PORT/DB or set DATABASE_URL',
    })
  }
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${what} is not a valid URL`)
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${what} must start with postgresql://`)
  }
  return u
}

/** Connects with owner rights, mapping failures to ERR_DB_CONNECT with a message that holds no secret. */
export async function connectOwner(url: string): Promise<pg.Client> {
  parseDatabaseUrl(url)
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {}) // a dropped connection surfaces on the next query
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw ownerConnectError(url, err)
  }
  return client
}

/** ERR_DB_CONNECT for a failed owner login, naming the reason but no secret. */
export function ownerConnectError(url: string, err: unknown): PgAuthorizeError {
  const e = err as { code?: string; message?: string }
  const reason = e.code === 'ECONNREFUSED'
    ? 'connection refused'
    : e.code === 'ENOTFOUND'
      ? 'host not found'
      : e.code === '28P01' || e.code === '28000'
        ? 'authentication failed'
        : e.code === '3D000'
          ? 'database does not exist'
          : (e.code ?? 'connection failed')
  return new PgAuthorizeError('ERR_DB_CONNECT', `could not connect to ${maskUrl(url)}: ${reason}`, { cause: err })
}
