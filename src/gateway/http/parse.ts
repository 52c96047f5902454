/**
 * Parsing and validation of a `POST /sql` request (Neon's protocol: shared/reference/neon-http-protocol.md
 * §1), all of it before anything touches the database: headers, the bearer token's presence, size, UTF-8,
 * JSON, params, and the batch rules. Bad input throws a PgAuthorizeError naming what was wrong.
 *
 * @module
 */
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { parseConnectionString, type NeonConnectionInfo } from './connection-string.js'
import type { SqlRequest } from './request.js'

/** One statement of the request, as the client sent it. */
export interface ParsedQuery {
  text: string
  values: (string | null)[]
  arrayMode: boolean | undefined
}

/** A request that passed every check that needs no database. */
export interface ParsedSqlRequest {
  conn: NeonConnectionInfo
  /** From `Authorization: Bearer ...`; undefined when the header is absent. */
  token: string | undefined
  /** A batch (`{ queries: [...] }`) runs in one transaction; a single query in autocommit. */
  batch: boolean
  queries: ParsedQuery[]
  /** Neon-Array-Mode and Neon-Raw-Text-Output. */
  arrayModeDefault: boolean
  rawText: boolean
  /** The batch's transaction mode, from the Neon-Batch-* headers. */
  isolation: { header: string; sql: string } | undefined
  readOnly: boolean
  deferrable: boolean
}

/** Neon's four isolation level names, mapped to SQL. */
const ISOLATION: Readonly<Record<string, string>> = {
  ReadUncommitted: 'READ UNCOMMITTED',
  ReadCommitted: 'READ COMMITTED',
  RepeatableRead: 'REPEATABLE READ',
  Serializable: 'SERIALIZABLE',
}

const MAX_PARAMS = 65535 // the Bind message counts parameters in an int16

const utf8 = new TextDecoder('utf-8', { fatal: true })

function badRequest(message: string): PgAuthorizeError {
  return new PgAuthorizeError('ERR_BAD_REQUEST', message)
}

/**
 * Params arrive as text or null (what the Neon driver sends). Numbers and booleans are accepted and
 * stringified as the driver would (Neon's own server accepts them too); objects and arrays are refused
 * rather than guessed at, since the driver never sends them.
 */
function parseParams(raw: unknown, where: string): (string | null)[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) throw badRequest(`${where}params must be an array`)
  if (raw.length > MAX_PARAMS) throw badRequest(`${where}params has more than ${MAX_PARAMS} values`)
  const out = new Array<string | null>(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const v: unknown = raw[i]
    if (typeof v === 'string' || v === null) out[i] = v
    else if (typeof v === 'number' && Number.isFinite(v)) out[i] = String(v)
    else if (typeof v === 'boolean') out[i] = v ? 'true' : 'false'
    else throw badRequest(`${where}params[${i}] must be a string, number, boolean or null`)
  }
  return out
}

/**
 * A batch runs in the gateway's own transaction, with the claims installed transaction-locally: a statement
 * of the batch that ends it (COMMIT, ROLLBACK, END, ABORT, PREPARE TRANSACTION, ... AND CHAIN) would run
 * the rest without claims and outside READ ONLY, and one that starts one (BEGIN, START TRANSACTION) would
 * only warn. Detected by the statement's leading keyword after comments and whitespace (the statements
 * are one each: Postgres refuses several in one Parse). Savepoints (SAVEPOINT, RELEASE, ROLLBACK TO) stay
 * inside the transaction and are allowed. Transaction control hidden in a procedure is refused by
 * Postgres itself inside a transaction block (2D000).
 */
function refuseTransactionControl(text: string, index: number): void {
  const head = leadingWords(text)
  const ends = /^(BEGIN|START|COMMIT|END|ABORT|PREPARE TRANSACTION)\b/.test(head) ||
    (/^ROLLBACK\b/.test(head) && !/^ROLLBACK( WORK| TRANSACTION)? TO\b/.test(head))
  if (ends) {
    throw new PgAuthorizeError(
      'ERR_TRANSACTION_CONTROL',
      `queries[${index}] is transaction control (${head.split(' ')[0]}); a batch already runs in one transaction`,
      { hint: 'send the statements without BEGIN/COMMIT/ROLLBACK; use Neon-Batch-Isolation-Level, Neon-Batch-Read-Only for the transaction\'s mode' },
    )
  }
}

/** The first three words of a statement, upper-cased, after leading whitespace and comments (nested too). */
function leadingWords(text: string): string {
  let i = 0
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++
    if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i)
      i = nl < 0 ? text.length : nl + 1
    } else if (text.startsWith('/*', i)) {
      let depth = 0
      for (; i < text.length; i++) {
        if (text.startsWith('/*', i)) {
          depth++
          i++
        } else if (text.startsWith('*/', i)) {
          depth--
          i++
          if (depth === 0) {
            i++
            break
          }
        }
      }
    } else break
  }
  return (text.slice(i, i + 64).match(/[A-Za-z_]+/g) ?? []).slice(0, 3).join(' ').toUpperCase()
}

function parseQuery(raw: unknown, where: string): ParsedQuery {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest(`${where || 'request body'} must be a JSON object`)
  }
  const q = raw as { query?: unknown; params?: unknown; arrayMode?: unknown }
  if (typeof q.query !== 'string') throw badRequest(`${where}query must be a string`)
  if (q.arrayMode !== undefined && typeof q.arrayMode !== 'boolean') {
    throw badRequest(`${where}arrayMode must be a boolean`)
  }
  return { text: q.query, values: parseParams(q.params, where), arrayMode: q.arrayMode }
}

/**
 * Checks the request's headers, then `precheckToken(token)` (so a request that cannot authenticate costs
 * no body read), then reads and parses the body (at most `maxRequestBytes`).
 */
export async function parseSqlRequest(
  req: SqlRequest,
  maxRequestBytes: number,
  precheckToken: ((token: string | undefined) => void) | undefined,
): Promise<ParsedSqlRequest> {
  const conn = parseConnectionString(req.header('neon-connection-string'))
  const isoHeader = req.header('neon-batch-isolation-level')
  let isolation: ParsedSqlRequest['isolation']
  if (isoHeader !== null) {
    // Own properties only: `constructor` or `__proto__` must not pass as a level (they would reach SQL).
    const level = Object.hasOwn(ISOLATION, isoHeader) ? ISOLATION[isoHeader] : undefined
    if (level === undefined) {
      throw new PgAuthorizeError(
        'ERR_ISOLATION_LEVEL_INVALID',
        `invalid isolation level: Neon-Batch-Isolation-Level must be one of ${Object.keys(ISOLATION).join(', ')}`,
      )
    }
    isolation = { header: isoHeader, sql: level }
  }
  const authz = req.header('authorization')
  let token: string | undefined
  if (authz !== null) {
    if (!/^Bearer /i.test(authz)) {
      throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the Authorization header must use the Bearer scheme')
    }
    token = authz.slice(7).trim()
  }
  precheckToken?.(token)

  let text: string
  try {
    text = utf8.decode(await req.body(maxRequestBytes))
  } catch (err) {
    if (isPgAuthorizeError(err)) throw err
    throw badRequest('request body is not valid UTF-8')
  }
  let payload: unknown
  try {
    payload = JSON.parse(text)
  } catch {
    throw badRequest('request body is not valid JSON')
  }
  const batch = payload !== null && typeof payload === 'object' && !Array.isArray(payload) && 'queries' in payload
  let queries: ParsedQuery[]
  if (batch) {
    const list = (payload as { queries: unknown }).queries
    if (!Array.isArray(list)) throw badRequest('queries must be an array')
    queries = list.map((q, i) => parseQuery(q, `queries[${i}].`))
    queries.forEach((q, i) => refuseTransactionControl(q.text, i))
  } else {
    queries = [parseQuery(payload, '')]
  }
  return {
    conn,
    token,
    batch,
    queries,
    arrayModeDefault: req.header('neon-array-mode') === 'true',
    rawText: req.header('neon-raw-text-output') === 'true',
    isolation,
    readOnly: req.header('neon-batch-read-only') === 'true',
    deferrable: req.header('neon-batch-deferrable') === 'true',
  }
}
