/**
 * A wire session's upstream: a pg.Client login *as the restricted role itself* (pg does SCRAM/md5; never a
 * privileged login plus SET ROLE), checked and repaired through `Upstream.loginAsRole` when a client altered
 * the role, the client's startup settings applied with the role's own rights, the sealed claims installed
 * for the session, and then the socket taken from pg to be spliced (relay.ts).
 *
 * @module
 */
import type net from 'node:net'
import pg from 'pg'
import { installClaimsParamSql } from '../../database/session.js'
import { RoleTaintedError, checkSession } from '../../database/role-repair.js'
import { backendKey, onParameterStatus, takeOverSocket, type BackendKey } from '../../database/pg-internals.js'
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import type { Identity } from '../../auth/identity.js'
import { parseOptionsParameter } from '../protocol.js'
import { Fatal } from './startup.js'

/** How a session reaches Postgres as its identity's role. */
export interface Upstream {
  /** How to log in AS THE ROLE ITSELF (never privileged + SET ROLE). */
  config: pg.ClientConfig
  /**
   * Runs the login with repair-and-retry (`Authenticator.loginAsRole`). When given, the session is checked
   * with `checkSession` before it serves anything, and a tainted one is discarded and the login retried.
   */
  loginAsRole?: <T>(connect: () => Promise<T>) => Promise<T>
  /**
   * Terminates the upstream backend `pid` (named with its `backend_start`) through the owner after a grace
   * period, unless it has exited: called when a session ends for any reason but the upstream closing, since
   * a statement that catches the cancel would otherwise keep running after the session is over.
   */
  reap?: (pid: number, backendStart: string) => void
}

/** A logged-in upstream, its socket taken over from pg. */
export interface OpenUpstream {
  socket: net.Socket
  /** The ParameterStatus messages of the login, replayed to the client. */
  status: Map<string, string>
  /** Where to cancel its statements. */
  key: BackendKey | undefined
  /** `backend_start` of the backend (for the reaper), when checked. */
  backendStart: string | null
}

/** Startup parameters that never become upstream settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication', 'fallback_application_name'])

/** The settings the client asked for at startup, applied upstream with the role's own rights. */
export function startupSettings(params: Record<string, string>): Array<[string, string]> {
  const settings: Array<[string, string]> = []
  if (params.options) {
    const parsed = parseOptionsParameter(params.options)
    if (!parsed) throw new Fatal('0A000', 'only -c name=value settings are supported in the options parameter')
    settings.push(...parsed)
  }
  for (const [k, v] of Object.entries(params)) {
    if (!NOT_SETTINGS.has(k) && !k.startsWith('_pq_.')) settings.push([k, v])
  }
  if (!('application_name' in params) && params.fallback_application_name) {
    settings.push(['application_name', params.fallback_application_name])
  }
  return settings
}

/**
 * Logs in as `identity.role`, applies `settings`, installs the envelope, and takes the socket. Throws
 * Fatal (a Postgres error the client may see) or PgAuthorizeError; `onFailed` hears the cause first.
 */
export async function openUpstream(
  identity: Identity,
  upstream: Upstream,
  settings: Array<[string, string]>,
  onFailed: (message: string) => void,
): Promise<OpenUpstream> {
  let client: pg.Client | undefined
  let status = new Map<string, string>()
  let backendStart: string | null = null
  const checked = upstream.loginAsRole !== undefined || upstream.reap !== undefined
  const login = async (): Promise<void> => {
    const c = new pg.Client(upstream.config)
    const seen = new Map<string, string>()
    onParameterStatus(c, (name, value) => seen.set(name, value))
    // Errors surface through connect()/query(); this keeps a late socket error from going unhandled.
    c.on('error', () => {})
    client = c
    status = seen
    await c.connect()
    if (!checked) return
    // The session's own settings, before it serves anything: stored role defaults are already in force.
    const check = await checkSession(c)
    if (upstream.loginAsRole && check.tainted.length > 0) {
      c.end().catch(() => {})
      throw new RoleTaintedError(check.tainted)
    }
    backendStart = check.backendStart
  }
  try {
    if (upstream.loginAsRole) await upstream.loginAsRole(login)
    else await login()
    if (settings.length > 0) {
      const list = settings.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, false)`)
      await client!.query(`select ${list.join(', ')}`, settings.flat())
    }
    // As a bind parameter: SQL text shows in pg_stat_activity to other sessions of the role (replayable).
    if (identity.envelope !== null) await client!.query(installClaimsParamSql(false), [identity.envelope])
  } catch (err) {
    client?.end().catch(() => {})
    onFailed((err as Error).message)
    if (isPgAuthorizeError(err) || err instanceof Fatal) throw err
    const sqlstate = (err as { code?: unknown }).code
    // XX000 is Postgres' internal error (e.g. "tuple concurrently updated"): not the client's business.
    if (typeof sqlstate === 'string' && /^[0-9A-Z]{5}$/.test(sqlstate) && sqlstate !== 'XX000') {
      throw new Fatal(sqlstate, (err as Error).message)
    }
    throw new PgAuthorizeError('ERR_DB_CONNECT', 'could not connect to the database as the role')
  }
  const key = backendKey(client!)
  // From here on its bytes are spliced, not parsed.
  const socket = takeOverSocket(client!)
  socket.setNoDelay(true)
  return { socket, status, key, backendStart }
}
