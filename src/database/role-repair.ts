/**
 * What a restricted role may do to itself with raw SQL, and how the gateway keeps it from reaching anyone
 * else. Postgres lets every role run `ALTER ROLE CURRENT_USER PASSWORD ...` (locking the gateway out) and
 * `ALTER ROLE CURRENT_USER [IN DATABASE d] SET name = value` (`standard_conforming_strings = off`,
 * `statement_timeout = 1`, a hostile `search_path` for every later login of every user); no privilege
 * can be revoked to stop it.
 *
 * - **Detect in the session, not the catalog.** Role defaults apply once, at login, and become the
 *   session's reset values (`RESET ALL` returns to them). So every new restricted-role connection asks
 *   its own `pg_settings` for a value whose source is `user` or `database user` before it serves anything
 *   ({@link checkSession}). Reading `pg_db_role_setting` instead raced: a repair could delete the row
 *   between the backend loading it and the check. `database` (ALTER DATABASE SET) is left alone: it needs
 *   the database's owner, which a restricted role never is, so such values are the operator's.
 * - **Repair single-flight** ({@link RoleRepairer}): one repair per role in flight in this process (the
 *   others await it), serialized across gateway instances by an advisory lock the owner connection holds
 *   for the repair's transaction. A repair racing the attacker's own `ALTER ROLE` can fail with XX000
 *   "tuple concurrently updated"; it is retried, and never shown to a client.
 * - **Catch the loop**: a repair by a superuser owner holds SHARE locks on the role catalogs for a moment
 *   and terminates the backends of the role that wait on them, i.e. the ones altering it again.
 * - **Never the password in SQL text**: the repair sets a SCRAM verifier computed in Node (scram.ts).
 * - **Logins retry** ({@link loginWithRepair}): a tainted or refused login is discarded, the role repaired,
 *   and the login tried again with backoff, a bounded number of times; then ERR_ROLE_TAMPERED.
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { quoteIdent, quoteLiteral } from './connect.js'
import { scramVerifier } from './scram.js'
import { SESSION_SETTING } from './session.js'

/** SQLSTATE of a failed password login: the role's password may have been changed by a client. */
export const LOGIN_FAILED_SQLSTATE = '28P01'

/** What a new restricted-role session says about itself, right after login. */
export interface SessionCheck {
  /** Names of settings that came from stored role defaults (empty when the session is clean). */
  tainted: string[]
  /** The backend's `backend_start` as epoch seconds (exact decimal text), to name it later without pid reuse. */
  backendStart: string | null
}

/**
 * One statement, everything schema-qualified (the session may run with a hostile `search_path`, which is
 * exactly what it is checking for). A claims setting at login can only come from a stored default too
 * (Postgres 14 lets any role store placeholders, which `pg_settings` does not list).
 */
const SESSION_CHECK_SQL = `select
  (select pg_catalog.array_agg(s.name) from pg_catalog.pg_settings s
    where s.source operator(pg_catalog.=) any ('{user,"database user"}'::text[])) as tainted,
  pg_catalog.current_setting('${SESSION_SETTING}', true) as claims,
  (select extract(epoch from a.backend_start)::text from pg_catalog.pg_stat_activity a
    where a.pid operator(pg_catalog.=) pg_catalog.pg_backend_pid()) as started`

/**
 * Checks a new restricted-role session. A failing check (a stored `statement_timeout = 1`, an
 * `idle_session_timeout` that ends it) counts as tainted: fail closed.
 */
export async function checkSession(client: pg.ClientBase): Promise<SessionCheck> {
  try {
    const r = await client.query<{ tainted: string[] | null; claims: string | null; started: string | null }>(SESSION_CHECK_SQL)
    const row = r.rows[0]
    if (!row) return { tainted: ['(no answer)'], backendStart: null }
    const tainted = [...(row.tainted ?? [])]
    if (row.claims) tainted.push(SESSION_SETTING)
    return { tainted, backendStart: row.started }
  } catch {
    return { tainted: ['(check failed)'], backendStart: null }
  }
}

/** A new connection ran with role defaults a client had stored: never serve it; repair and log in again. */
export class RoleTaintedError extends Error {
  readonly settings: string[]
  constructor(settings: string[]) {
    super('the role had settings stored by a client')
    this.name = 'RoleTaintedError'
    this.settings = settings
  }
}

/** Why a login needs a repair, or undefined when its failure is of another kind. */
export function repairReason(err: unknown): 'settings' | 'password' | undefined {
  if (err instanceof RoleTaintedError) return 'settings'
  if ((err as { code?: unknown } | null)?.code === LOGIN_FAILED_SQLSTATE) return 'password'
  return undefined
}

export interface LoginRetryOptions {
  /** Logins tried in all, the first included. Default 8. */
  attempts?: number
  /** First backoff in ms, doubled per attempt (with jitter), capped at 250. Default 10. */
  baseDelayMs?: number
  /** Told of every repair asked for. */
  onRepair?: (reason: 'settings' | 'password', led: boolean) => void
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Doubling backoff with full jitter, so racing logins do not retry in step. */
const backoff = (base: number, attempt: number) => Math.random() * Math.min(base * 2 ** attempt, 250)

/**
 * Runs `login` until it yields a clean connection. A failure `repairReason` recognises triggers `repair`
 * and another try; any other failure is thrown as it is. After the last attempt: ERR_ROLE_TAMPERED.
 * `login` must itself discard a tainted connection before throwing RoleTaintedError.
 */
export async function loginWithRepair<T>(
  login: () => Promise<T>,
  repair: () => Promise<boolean>,
  options: LoginRetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 8
  const base = options.baseDelayMs ?? 10
  for (let attempt = 0; ; attempt++) {
    let reason: 'settings' | 'password' | undefined
    try {
      return await login()
    } catch (err) {
      reason = repairReason(err)
      if (reason === undefined) throw err
      if (attempt + 1 >= attempts) {
        throw new PgAuthorizeError('ERR_ROLE_TAMPERED', 'the database role is being altered by a client; try again', { cause: err })
      }
    }
    const led = await repair().catch((err: unknown) => {
      throw err instanceof PgAuthorizeError ? err : new PgAuthorizeError('ERR_ROLE_TAMPERED', 'the database role could not be repaired', { cause: err })
    })
    options.onRepair?.(reason, led)
    await sleep(backoff(base, attempt))
  }
}

/** First key of the advisory lock a repair holds (the second is the role's name, hashed). */
const REPAIR_LOCK_CLASS = 0x70676172 // "pgar"

/** SQLSTATEs of a repair that lost a race and may simply be run again. */
const RETRYABLE = new Set(['XX000', '40001', '40P01', '55P03'])

export interface RoleRepairerOptions {
  withOwner<T>(fn: (owner: pg.ClientBase) => Promise<T>): Promise<T>
  /** The role's stored login password, or undefined for a role that is not restricted. */
  password(role: string): string | undefined
  /** Tries per repair when it races a concurrent ALTER ROLE. Default 6. */
  attempts?: number
  /** Told how many backends of `role` a repair caught altering the role again, and terminated. */
  onCaught?: (role: string, backends: number) => void
}

/** Undoes a client's `ALTER ROLE CURRENT_USER PASSWORD/SET`, single-flight; see the module comment. */
export class RoleRepairer {
  readonly #opts: RoleRepairerOptions
  readonly #inFlight = new Map<string, Promise<void>>()
  /** role -> [password, its verifier]: computing one costs a PBKDF2 of 4096 rounds. */
  readonly #verifiers = new Map<string, [string, Promise<string>]>()
  /**
   * How this connection repairs, read on the first repair: through `pgauthorize.repair_role` when it may
   * call it (the gateway role, and the owner, once setup installed 0009), else directly with its own
   * ALTER ROLE rights, as a superuser (who may also lock the role catalogs) or not.
   */
  #mode: 'function' | 'superuser' | 'direct' | undefined

  constructor(options: RoleRepairerOptions) {
    this.#opts = options
  }

  /**
   * Repairs `role`; resolves true when this call ran the repair, false when it joined one already in
   * flight. Rejects with ERR_ROLE_TAMPERED when the repair keeps losing races.
   */
  async repair(role: string): Promise<boolean> {
    const running = this.#inFlight.get(role)
    if (running) {
      await running
      return false
    }
    const p = this.#run(role).finally(() => this.#inFlight.delete(role))
    this.#inFlight.set(role, p)
    await p
    return true
  }

  #verifier(role: string, password: string): Promise<string> {
    const cached = this.#verifiers.get(role)
    if (cached && cached[0] === password) return cached[1]
    const v = scramVerifier(password)
    v.catch(() => this.#verifiers.delete(role))
    this.#verifiers.set(role, [password, v])
    return v
  }

  async #run(role: string): Promise<void> {
    const password = this.#opts.password(role)
    if (password === undefined) return
    const verifier = await this.#verifier(role, password)
    const attempts = this.#opts.attempts ?? 6
    for (let attempt = 0; ; attempt++) {
      try {
        const caught = await this.#opts.withOwner(async (c) => {
          this.#mode ??= await repairMode(c)
          if (this.#mode === 'function') {
            // Through the owner's SECURITY DEFINER function (sql/0009): the gateway role needs no ALTER ROLE rights.
            const r = await c.query<{ caught: number }>('select pgauthorize.repair_role($1, $2) as caught', [role, verifier])
            return r.rows[0]?.caught ?? 0
          }
          return repairOnce(c, role, verifier, this.#mode === 'superuser')
        })
        if (caught > 0) this.#opts.onCaught?.(role, caught)
        return
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (attempt + 1 >= attempts || typeof code !== 'string' || !RETRYABLE.has(code)) {
          throw new PgAuthorizeError('ERR_ROLE_TAMPERED', `the role '${role}' could not be repaired`, { cause: err })
        }
        await sleep(backoff(20, attempt))
      }
    }
  }
}

async function repairMode(c: pg.ClientBase): Promise<'function' | 'superuser' | 'direct'> {
  const r = await c.query<{ f: boolean; s: boolean }>(
    `select coalesce(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure('pgauthorize.repair_role(name,text)'), 'execute'), false) as f,
            (select rolsuper from pg_catalog.pg_roles where rolname = current_user) as s`,
  )
  const row = r.rows[0]
  return row?.f ? 'function' : row?.s ? 'superuser' : 'direct'
}

/** How long a repair keeps the role catalogs locked to catch a client altering the role again. */
const CATCH_WINDOW_MS = 60
const CATCH_POLLS = 4

/**
 * Backends of `role` waiting for a lock on the role catalogs: an `ALTER ROLE` (of any form: plain, in a
 * DO block, in a function) the repair's lock holds back. A restricted role has no other reason to wait
 * there (logins read those catalogs with ACCESS SHARE, which SHARE does not block).
 */
const CATCH_SQL = `select pg_catalog.pg_terminate_backend(l.pid) as ended
  from pg_catalog.pg_locks l join pg_catalog.pg_stat_activity a on a.pid = l.pid
 where not l.granted and l.locktype = 'relation'
   and l.relation in ('pg_catalog.pg_authid'::pg_catalog.regclass, 'pg_catalog.pg_db_role_setting'::pg_catalog.regclass)
   and a.usename = $1`

/**
 * One repair, in one transaction holding the advisory lock (released by commit or rollback). When the
 * owner may (a superuser), it also takes SHARE locks on `pg_authid` and `pg_db_role_setting` and keeps them
 * for a short window before committing: a client still looping `ALTER ROLE CURRENT_USER ...` blocks on them,
 * shows in `pg_locks`, and has its backend terminated. Without that, a tight loop re-taints the role within
 * milliseconds of every repair, faster than any login can start.
 * Returns the number of backends terminated.
 */
async function repairOnce(c: pg.ClientBase, role: string, verifier: string, catchLoop: boolean): Promise<number> {
  let caught = 0
  await c.query('begin')
  try {
    await c.query('select pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))', [REPAIR_LOCK_CLASS, role])
    if (catchLoop) {
      await c.query(`set local lock_timeout = '2s'`)
      await c.query('lock table pg_catalog.pg_authid, pg_catalog.pg_db_role_setting in share mode')
    }
    const r = await c.query<{ db: string | null }>(
      `select d.datname as db from pg_catalog.pg_db_role_setting s
         left join pg_catalog.pg_database d on d.oid = s.setdatabase
        where s.setrole = (select oid from pg_catalog.pg_roles where rolname = $1)`,
      [role],
    )
    for (const { db } of r.rows) {
      await c.query(`alter role ${quoteIdent(role)}${db === null ? '' : ` in database ${quoteIdent(db)}`} reset all`)
    }
    // A verifier, never the password: this text reaches the server log if the statement fails.
    await c.query(`alter role ${quoteIdent(role)} password ${quoteLiteral(verifier)}`)
    if (catchLoop) {
      for (let i = 0; i < CATCH_POLLS; i++) {
        await sleep(CATCH_WINDOW_MS / CATCH_POLLS)
        caught += (await c.query(CATCH_SQL, [role])).rowCount ?? 0
      }
    }
    await c.query('commit')
  } catch (err) {
    await c.query('rollback').catch(() => {})
    throw err
  }
  return caught
}
