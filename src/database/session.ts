/**
 * Tamper-proof claims: how verified claims reach `auth.session()` (security property 2).
 *
 * Clients send raw SQL, so any setting they can read they can also write. The gateway therefore never
 * installs claims as plain JSON: it seals the verified claims into an *envelope* (v2, fields separated by TAB)
 *
 *     v2 TAB <exp> TAB <claims JSON> TAB <hex(HMAC-SHA256(key, "v2 TAB <exp> TAB <claims JSON> TAB"))>
 *
 * with a per-database key kept in `pgauthorize.secret`, a table only the owner can read, and stores the
 * envelope in the setting `pg_authorize.session`. `auth.session()` recomputes the HMAC (in a SECURITY
 * DEFINER function) and checks `exp` against the clock on *every* read, and fails closed: a missing envelope
 * is JSON `null` (no identity), a forged, altered, expired or unknown-version one raises SQLSTATE 28000.
 *
 * The format is shaped by that per-read cost (policies may call `auth.session()` once per row; see
 * `sql/0005_session_v2.sql`): the claims travel as raw JSON, which never holds a raw TAB (JSON escapes
 * every control character), so Postgres splits the fields by searching bytes, with no base64 to undo; the
 * MAC comes last, in hex, and covers every byte before it, version tag first. v1 envelopes
 * (`v1.<exp>.<base64url(JSON)>.<base64url(MAC)>`, from older gateways) are still accepted on a slower path;
 * each version's MAC covers its own tag, so a MAC of one never validates the other.
 *
 * The claims are re-serialized from the verified object, never the raw token payload.
 *
 * @module
 */
import { createHmac, randomBytes } from 'node:crypto'
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'

/** The setting that holds the sealed claims. */
export const SESSION_SETTING = 'pg_authorize.session'

/** The per-database key that seals claims. Read once by the gateway through its owner connection. */
export interface SessionKey {
  readonly key: Buffer
}

/** A new random 32-byte key, as setup stores it. */
export function newSessionKey(): Buffer {
  return randomBytes(32)
}

export type Claims = Record<string, unknown>

export interface SealOptions {
  /** Envelope expiry, epoch seconds. Default: the claims' own `exp`, capped at now + maxTtlSeconds. */
  expiresAt?: number
  /** Upper bound on the envelope's life when the claims carry no earlier `exp`. Default 3600. */
  maxTtlSeconds?: number
  /** Clock seam (ms). */
  now?: () => number
}

/**
 * Seals verified claims into an envelope for `pg_authorize.session`.
 * The envelope never outlives the token: its expiry is the claims' `exp` when that is earlier.
 */
export function sealClaims(key: SessionKey, claims: Claims, options: SealOptions = {}): string {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'claims must be a JSON object')
  }
  const nowS = Math.floor((options.now ?? Date.now)() / 1000)
  const cap = nowS + (options.maxTtlSeconds ?? 3600)
  const claimExp = typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? Math.floor(claims.exp) : undefined
  let exp = Math.floor(options.expiresAt ?? cap)
  if (claimExp !== undefined) exp = Math.min(exp, claimExp)
  // Re-serialize: a verified object in, JSON text out (never the token's own payload bytes). JSON.stringify
  // escapes every control character, so the text holds no TAB and the fields split unambiguously.
  const body = `v2\t${exp}\t${JSON.stringify(claims)}\t`
  return body + createHmac('sha256', key.key).update(body, 'utf8').digest('hex')
}

/** The envelope's expiry (epoch seconds), without checking the MAC; v2 or v1. */
export function envelopeExpiry(envelope: string): number {
  return Number(envelope.startsWith('v2\t') ? envelope.split('\t', 2)[1] : envelope.split('.', 3)[1])
}

/** Reads the session key through an owner connection. Fails with ERR_DB_NOT_SET_UP when setup has not run. */
export async function loadSessionKey(owner: pg.ClientBase): Promise<SessionKey> {
  try {
    const r = await owner.query<{ key: Buffer }>('select key from pgauthorize.secret where id = 1')
    if (r.rows.length !== 1) throw new Error('no secret row')
    return { key: r.rows[0]!.key }
  } catch (err) {
    throw new PgAuthorizeError(
      'ERR_DB_NOT_SET_UP',
      'pg-authorize is not set up in this database (or the connection lacks owner rights)',
      { cause: err, hint: 'run: pg-authorize setup --database-url OWNER_URL' },
    )
  }
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

/** The statements that undo session state (Neon's local_proxy check-in sequence, without its ROLLBACK). */
const UNDO_SESSION_STATE: readonly string[] = [
  'CLOSE ALL',
  'RESET ALL',
  'DEALLOCATE ALL',
  'UNLISTEN *',
  'SELECT pg_catalog.pg_advisory_unlock_all()',
  'DISCARD TEMP',
  'DISCARD SEQUENCES',
]

/**
 * Resets every piece of session state a client could leave behind on a pooled connection
 * (Neon's local_proxy check-in sequence, plus the claims). Safe to send as one simple-protocol string
 * and inside no transaction. Security property 4: run before a connection is reused.
 */
export const RESET_SESSION_SQL = ['ROLLBACK', ...UNDO_SESSION_STATE, CLEAR_CLAIMS_SQL].join('; ')

/**
 * The same reset as {@link RESET_SESSION_SQL} minus the `ROLLBACK`, as separate statements for the
 * extended protocol, for a connection the previous request left idle (`ReadyForQuery` status I): sent at
 * the head of the next request's pipeline, with one Sync at the end of it all, so it costs no round trip of
 * its own. If any of it fails, Postgres skips everything up to the Sync: the request's statements never run
 * on an unreset session. The closing `COMMIT` makes the reset its own transaction (Postgres answers it with
 * a "no transaction in progress" warning, which the HTTP endpoint drops like every notice): the request's
 * statements start a fresh one, so `BEGIN ISOLATION LEVEL ...` still works, and the reset stays done even
 * if they fail. The claims need no clearing here: `RESET ALL` clears them, and every request installs its
 * own, transaction-locally.
 */
export const RESET_SESSION_STEPS: readonly string[] = Object.freeze([...UNDO_SESSION_STATE, 'COMMIT'])

/**
 * Runs `fn` inside one transaction on `client` with `claims` installed transaction-locally, then commits
 * (or rolls back on error). The claims vanish at the end of the transaction whatever `fn` did.
 */
export async function withClaims<T>(
  client: pg.ClientBase,
  key: SessionKey,
  claims: Claims,
  fn: (client: pg.ClientBase) => Promise<T>,
  options: SealOptions = {},
): Promise<T> {
  const envelope = sealClaims(key, claims, options)
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
