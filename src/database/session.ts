/**
 * Tamper-proof claims: how verified claims reach `auth.session()` (security properties 2, 8 and 9).
 *
 * Clients send raw SQL, so any setting they can read they can also write. The gateway therefore never
 * installs claims as plain JSON: it seals the verified claims into an *envelope* (v3, fields separated by TAB)
 *
 *     v3 TAB <generation> TAB <exp> TAB <role> TAB <provider> TAB <database> TAB <claims JSON> TAB <hex MAC>
 *
 * where the MAC is HMAC-SHA256 over every byte before it, with the key of that generation kept in
 * `pgauthorize.sealing_key`, a table only the owner can read, and stores the envelope in the setting
 * `pg_authorize.session`. `auth.session()` recomputes the HMAC and checks, on *every* read, the expiry, that
 * the role is the session's login role and that the database is this one (so an envelope sealed for
 * `anonymous`, or for another database, is refused anywhere else), and fails closed: a missing envelope is
 * JSON `null` (no identity); a forged, altered, expired, misplaced or retired one raises SQLSTATE 28000.
 *
 * The key is read only by the statement that uses it, inside Postgres, and never becomes a plan constant or
 * a variable (see `sql/0006_sealing_keys.sql`): `debug_print_plan` and friends, which any client may turn
 * on, print plans. The claims travel as raw JSON, which never holds a raw TAB (JSON escapes every control
 * character), so Postgres splits the fields by searching bytes; role, provider and database names holding a
 * control character are refused here.
 *
 * The claims are re-serialized from the verified object, never the raw token payload.
 *
 * @module
 */
import { createHmac } from 'node:crypto'
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { quoteLiteral } from './connect.js'

/** The setting that holds the sealed claims. */
export const SESSION_SETTING = 'pg_authorize.session'

/** The NOTIFY channel a key rotation fires (payload: the new generation number). */
export const KEYS_CHANNEL = 'pg_authorize_keys'

/** The per-database key that seals claims. Read by the gateway through its owner connection. */
export interface SessionKey {
  readonly key: Buffer
  /** Which key of `pgauthorize.sealing_key` this is; named in the envelope so the check picks it. */
  readonly generation: number
}

export type Claims = Record<string, unknown>

/** What an envelope is bound to: refused by `auth.session()` anywhere else. */
export interface SealContext {
  /** The role the connection logged in as (`session_user`). */
  role: string
  /** The database it is for. */
  database: string
  /** Who verified the identity: a provider's name, or the tool that made it (`testing`, `console`). */
  provider: string
}

export interface SealOptions {
  /** Envelope expiry, epoch seconds. Default: the claims' own `exp`, capped at now + maxTtlSeconds. */
  expiresAt?: number
  /** Upper bound on the envelope's life when the claims carry no earlier `exp`. Default 3600. */
  maxTtlSeconds?: number
  /** Clock seam (ms). */
  now?: () => number
}

// TAB separates the fields; no control character may appear in one (JSON escapes them in the claims).
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Seals verified claims into an envelope for `pg_authorize.session`, bound to `context`.
 * The envelope never outlives the token: its expiry is the claims' `exp` when that is earlier.
 */
export function sealClaims(key: SessionKey, claims: Claims, context: SealContext, options: SealOptions = {}): string {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'claims must be a JSON object')
  }
  for (const [what, v] of [['role', context.role], ['database', context.database], ['provider', context.provider]] as const) {
    if (typeof v !== 'string' || v === '' || CONTROL.test(v)) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `cannot seal claims: the ${what} name is empty or holds a control character`)
    }
  }
  const nowS = Math.floor((options.now ?? Date.now)() / 1000)
  const cap = nowS + (options.maxTtlSeconds ?? 3600)
  const claimExp = typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? Math.floor(claims.exp) : undefined
  let exp = Math.floor(options.expiresAt ?? cap)
  if (claimExp !== undefined) exp = Math.min(exp, claimExp)
  // Re-serialize: a verified object in, JSON text out (never the token's own payload bytes).
  const body = `v3\t${key.generation}\t${exp}\t${context.role}\t${context.provider}\t${context.database}\t${JSON.stringify(claims)}\t`
  return body + createHmac('sha256', key.key).update(body, 'utf8').digest('hex')
}

/** The envelope's expiry (epoch seconds), without checking the MAC. */
export function envelopeExpiry(envelope: string): number {
  return Number(envelope.split('\t', 3)[2])
}

/**
 * Reads the current sealing key through an owner connection. Fails with ERR_DB_NOT_SET_UP when setup has
 * not run (or ran before migration 0006: run setup again).
 */
export async function loadSessionKey(owner: pg.ClientBase): Promise<SessionKey> {
  try {
    const r = await owner.query<{ key: Buffer; generation: number }>(
      'select key, generation from pgauthorize.sealing_key where retire_at is null',
    )
    if (r.rows.length !== 1) throw new Error('no current sealing key')
    return { key: r.rows[0]!.key, generation: r.rows[0]!.generation }
  } catch (err) {
    throw new PgAuthorizeError(
      'ERR_DB_NOT_SET_UP',
      'pg-authorize is not set up in this database, or not upgraded (or the connection lacks owner rights)',
      { cause: err, hint: 'run: pg-authorize setup --database-url OWNER_URL' },
    )
  }
}

/**
 * Makes a new sealing key and retires the current one `graceSeconds` from now (envelopes sealed with it are
 * accepted until then). Running gateways hear of it through NOTIFY and seal with the new key at once; wire
 * sessions are resealed. The key is made inside Postgres and never travels. Returns the new generation.
 */
export async function rotateSessionKey(owner: pg.ClientBase, graceSeconds: number): Promise<number> {
  if (!Number.isFinite(graceSeconds) || graceSeconds < 0 || graceSeconds > 86_400) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'the grace period must be between 0 and 86400 seconds')
  }
  const r = await owner.query<{ g: number }>(`select pgauthorize.rotate_sealing_key(make_interval(secs => $1)) as g`, [graceSeconds])
  return r.rows[0]!.g
}

/**
 * SQL that installs the envelope given as parameter `$1`, for the rest of the session (`local=false`) or
 * the transaction (`local=true`). Always a bind parameter, never SQL text: a statement's text is visible in
 * `pg_stat_activity.query` to every session of the same role, so an envelope written into SQL text could
 * be read by another user's session and replayed there with `set_config` (it carries a valid MAC).
 */
export function installClaimsParamSql(local: boolean): string {
  return `select pg_catalog.set_config('${SESSION_SETTING}', $1, ${local ? 'true' : 'false'})`
}

/** SQL that removes any identity from the session. */
export const CLEAR_CLAIMS_SQL = `select pg_catalog.set_config('${SESSION_SETTING}', '', false)`

/**
 * Undoes session state: Neon's local_proxy check-in sequence without its ROLLBACK (`CLOSE ALL`, `RESET ALL`,
 * `DEALLOCATE ALL`, `UNLISTEN *`, `pg_advisory_unlock_all()`, `DISCARD TEMP`, `DISCARD SEQUENCES`) as one
 * call of `auth.reset_session()` (sql/0010_reset_session.sql): one statement to parse, bind and answer per
 * request instead of seven. A database without it (not upgraded) fails the reset, and the connection is
 * closed; the gateway refuses to start on such a database in the first place (context.ts).
 */
const RESET_SESSION_CALL = 'select auth.reset_session()'

/**
 * Resets every piece of session state a client could leave behind on a pooled connection
 * (Neon's local_proxy check-in sequence, plus the claims). Safe to send as one simple-protocol string
 * and inside no transaction. Security property 4: run before a connection is reused.
 */
export const RESET_SESSION_SQL = ['ROLLBACK', RESET_SESSION_CALL, CLEAR_CLAIMS_SQL].join('; ')

/** The SQLSTATE of an inline reset refused because the session listens (sql/0010_reset_session.sql). */
export const RESET_NEEDS_OWN_TRANSACTION = 'PGL01'

/**
 * The same reset as {@link RESET_SESSION_SQL} minus the `ROLLBACK`, as statements for the extended
 * protocol, for a connection the previous request left idle (`ReadyForQuery` status I): sent at the head of
 * the next request's pipeline, with one Sync at the end of it all, so it costs no round trip of its own. If
 * any of it fails, Postgres skips everything up to the Sync: the request's statements never run on an
 * unreset session.
 *
 * - By default it ends with a `COMMIT` that makes it a transaction of its own (Postgres answers it with a
 *   "no transaction in progress" warning, which the HTTP endpoint drops like every notice): the request's
 *   statements start a fresh one, so `BEGIN ISOLATION LEVEL ...` still works.
 * - `inTransaction`: for a pipeline that is one implicit transaction and never changes its isolation (a
 *   single `/sql` query), without the `COMMIT`: one statement and one warning fewer. If the request's
 *   statement fails, the reset is rolled back with it, and the connection comes back dirty: the next
 *   request resets it again before anything of its own runs. UNLISTEN alone would wait for the commit, so
 *   a session that listens is refused with {@link RESET_NEEDS_OWN_TRANSACTION} before anything runs: the
 *   caller then resets the default way.
 * - `settings` are set for the session right after the reset: for a connection through a transaction-mode
 *   pooler, whose startup packet cannot carry them (gateway/http/pooler.ts). The names and values are the
 *   gateway's own (session defaults, setup's time limits), quoted as literals.
 *
 * The claims need no clearing here: `RESET ALL` clears them, and every request installs its own,
 * transaction-locally.
 */
export function resetSessionSteps(
  options: { inTransaction?: boolean; settings?: ReadonlyArray<readonly [string, string]> } = {},
): readonly string[] {
  const steps = [options.inTransaction ? 'select auth.reset_session(true)' : RESET_SESSION_CALL]
  const settings = options.settings ?? []
  if (settings.length > 0) {
    steps.push('select ' + settings.map(([name, value]) => `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`).join(', '))
  }
  if (!options.inTransaction) steps.push('COMMIT')
  return Object.freeze(steps)
}

/**
 * Runs `fn` inside one transaction on `client` with `claims` installed transaction-locally, then commits
 * (or rolls back on error). The claims vanish at the end of the transaction whatever `fn` did.
 */
export async function withClaims<T>(
  client: pg.ClientBase,
  key: SessionKey,
  claims: Claims,
  context: SealContext,
  fn: (client: pg.ClientBase) => Promise<T>,
  options: SealOptions = {},
): Promise<T> {
  const envelope = sealClaims(key, claims, context, options)
  await client.query('BEGIN')
  await client.query(installClaimsParamSql(true), [envelope])
  try {
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
