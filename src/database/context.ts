/**
 * What a gateway needs from a database it serves, loaded once through the owner connection: the sealing
 * key and the restricted roles' login credentials. Connections for client SQL log in *as the restricted
 * role itself* (security property 1); the owner connection is used for nothing else.
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { connectOwner, withDatabase, withUser } from './connect.js'
import { loadSessionKey, type SessionKey } from './session.js'

export interface DatabaseContext {
  readonly database: string
  readonly ownerUrl: string
  readonly sessionKey: SessionKey
  /** The restricted roles set up in this database. */
  readonly roles: readonly string[]
  /**
   * How to log in as `role`: the owner URL's host, port, database and TLS settings, with the role's
   * own name and stored password. Throws ERR_ROLE_NOT_ALLOWED for a role that is not restricted.
   */
  roleConnectionConfig(role: string): pg.ClientConfig
  /** Re-reads the credentials (after a password rotation by `setup`). */
  reload(): Promise<void>
}

/** Session defaults the Neon client's type parsers rely on, sent in the startup packet. */
export const SESSION_OPTIONS = '-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c bytea_output=hex -c client_encoding=UTF8 -c extra_float_digits=1'

/** Loads the context of the database named by `ownerUrl` (or of `database` on the same server). */
export async function openDatabaseContext(ownerUrl: string, database?: string): Promise<DatabaseContext> {
  const url = database ? withDatabase(ownerUrl, database) : ownerUrl
  let sessionKey: SessionKey
  let credentials = new Map<string, string>()
  let dbName = ''
  const load = async () => {
    const c = await connectOwner(url)
    try {
      sessionKey = await loadSessionKey(c)
      const r = await c.query<{ role: string; password: string; db: string }>(
        'select role, password, current_database() as db from pgauthorize.role_credentials',
      )
      credentials = new Map(r.rows.map((x) => [x.role, x.password]))
      dbName = (await c.query<{ d: string }>('select current_database() as d')).rows[0]!.d
    } finally {
      await c.end().catch(() => {})
    }
  }
  await load()
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
    roleConnectionConfig(role: string): pg.ClientConfig {
      const password = credentials.get(role)
      if (password === undefined) {
        throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${role}' is not a restricted role of database '${dbName}'`)
      }
      return { connectionString: withUser(url, role, password), options: SESSION_OPTIONS }
    },
    reload: load,
  }
}
