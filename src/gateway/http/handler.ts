/**
 * The SQL-over-HTTP endpoint, wire-compatible with Neon's (`POST /sql`), as a Web-standard
 * `(Request) => Promise<Response>` handler. See shared/reference/neon-http-protocol.md §1 and §5.
 *
 * Per request: route, parse and validate everything (headers, size, UTF-8, JSON, params) *before* anything
 * touches the database, then `authenticate` (pluggable: JWT verification lives elsewhere), lease a connection
 * logged in as the identity's role, and run the statements in one pipelined round trip (execute.ts):
 *
 * - single query: `set_config(claims, local)` + `set_config(application_name, local)` + the query, in one
 *   implicit transaction (Sync only at the end), so the query runs in autocommit, never without its claims,
 *   and the claims vanish when it ends. Trade-off: statements
 *   that refuse to run in a pipeline/transaction block (VACUUM, CREATE INDEX CONCURRENTLY, CREATE DATABASE)
 *   fail here; restricted roles cannot usefully run them anyway;
 * - batch: `BEGIN <isolation> [READ ONLY] [DEFERRABLE]` + claims + the queries + `COMMIT`; the first error
 *   skips the rest and the pool rolls the transaction back before reuse.
 *
 * A connection's previous session state is undone by `RESET_SESSION_STEPS` at the head of the next request's
 * pipeline, at no round trip of its own (a failed reset skips the request's statements); a connection
 * left in a transaction is reset by the pool before reuse instead (pool.ts). If the client disconnects
 * (`request.signal` aborts), the backend query is cancelled and the connection discarded.
 *
 * @example
 * const handler = createSqlHttpHandler({ authenticate, pools })
 * serveHttp(handler, { port: 4444 })   // see node.ts
 *
 * @module
 */
import pg from 'pg'
import { statementKind } from '../../observability/audit.js'
import { readCapped } from '../../lib/body.js'
import { ERROR_TABLE, PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { RESET_SESSION_STEPS, SESSION_SETTING, installClaimsParamSql } from '../../database/session.js'
import type { GatewayPools, Lease } from '../pool.js'
import { parseConnectionString } from './connection-string.js'
import { Pipeline, StepError, type Step } from './execute.js'

export interface HttpIdentity {
  /** The restricted role to run as (already checked against the provider). */
  role: string
  /** For audit records: the provider that verified the token and its `sub`. */
  provider?: string
  subject?: string
  database: string
  /** Sealed claims to install; null = no identity (e.g. anonymous without a token). */
  envelope: string | null
  /** Epoch seconds, informational. */
  expiresAt?: number
}

export interface HttpAuthRequest {
  /** From `Authorization: Bearer ...`; undefined when the header is absent. */
  token: string | undefined
  /** User of Neon-Connection-String, percent-decoded. */
  role: string
  /** First path segment of Neon-Connection-String, percent-decoded. */
  database: string
  connectionString: URL
  applicationName?: string
}

/** What one request did, emitted as `{ kind: 'request', ...info }` when it ends (never tokens or params). */
export interface HttpRequestInfo {
  requestId: string
  status: number
  outcome: 'ok' | 'unauthorized' | 'rejected' | 'sql_error' | 'cancelled' | 'error'
  /** SQLSTATE of a Postgres error, or the pg-authorize error code. */
  code?: string
  role?: string
  database?: string
  provider?: string
  subject?: string
  /** Statement kinds, e.g. `SELECT` or `INSERT,SELECT` for a batch. */
  statements?: string
  /** Time from asking for a connection to having one. */
  poolWaitMs?: number
  /** Time from having a connection to the last result. */
  queryMs?: number
  ms: number
}

/** The subset of AbortSignal the handler uses, so a Node adapter need not build a real one per request. */
export type AbortLike = Pick<AbortSignal, 'aborted' | 'addEventListener' | 'removeEventListener'>

/**
 * What the handler needs from one request. A Web `Request` gives it (`webRequest`), and so does a Node
 * `IncomingMessage` directly (node.ts), which spares the hot path the Web object allocations.
 */
export interface SqlRequest {
  method: string
  /** Absolute URL or path, with any query. */
  url: string
  /** A header's value, or null; names are lowercase. */
  header(name: string): string | null
  /** The body, refused with ERR_REQUEST_TOO_LARGE past `max` bytes (declared or read). */
  body(max: number): Promise<Uint8Array>
  /** Aborts when the client goes away. */
  signal: AbortLike
}

/** What the handler answers: a status, headers and a body (JSON text, or none). */
export interface SqlResponse {
  status: number
  headers: Readonly<Record<string, string>>
  body: string | null
}

export interface SqlHttpHandlerOptions {
  /** Decides who the request runs as; throws a PgAuthorizeError on failure. */
  authenticate(req: HttpAuthRequest): Promise<HttpIdentity>
  /** Where connections come from (only `acquire` is used). */
  pools: Pick<GatewayPools, 'acquire'>
  /**
   * Checks the `Authorization` token's presence and shape (never its signature: `authenticate` does that)
   * before the body is read, so a request that cannot authenticate costs no body read (up to
   * `maxRequestBytes`). Throws a PgAuthorizeError. The gateway refuses a missing token (unless anonymous
   * requests are allowed) and one that is not three base64url segments.
   */
  precheckToken?(token: string | undefined): void
  /** Largest request body in bytes; larger gets 413. Default 10 MiB (Neon's). */
  maxRequestBytes?: number
  /** Largest response body in bytes, enforced while rows arrive; larger gets 507. Default 10 MiB (Neon's). */
  maxResponseBytes?: number
  /** Hook for metrics and logs; events never carry tokens or secrets. */
  onEvent?: (e: { kind: string; [k: string]: unknown }) => void
}

const MiB = 1024 * 1024

/** Neon's four isolation level names, mapped to SQL. */
const ISOLATION: Readonly<Record<string, string>> = {
  ReadUncommitted: 'READ UNCOMMITTED',
  ReadCommitted: 'READ COMMITTED',
  RepeatableRead: 'REPEATABLE READ',
  Serializable: 'SERIALIZABLE',
}

const APP_NAME_SQL = `select pg_catalog.set_config('application_name', $1, true)`
/** Claims and application_name in one statement: one Parse/Bind/Execute less per request. */
const CLAIMS_AND_APP_NAME_SQL = `select pg_catalog.set_config('${SESSION_SETTING}', $1, true), pg_catalog.set_config('application_name', $2, true)`
/** The pool's reset as pipeline steps, built once (not captured: they are the gateway's own). */
const RESET_STEPS: readonly Step[] = RESET_SESSION_STEPS.map((text) => ({ text, values: [], capture: false, arrayMode: true, rawText: true }))
const MAX_PARAMS = 65535 // the Bind message counts parameters in an int16

const JSON_HEADERS = { 'content-type': 'application/json', 'access-control-allow-origin': '*' } as const
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  allow: 'OPTIONS, POST',
  'access-control-allow-methods': 'OPTIONS, POST',
  'access-control-allow-headers':
    'Authorization, Content-Type, Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, ' +
    'Neon-Pool-Opt-In, Neon-Batch-Read-Only, Neon-Batch-Isolation-Level, Neon-Batch-Deferrable, X-Neon-Query-ID',
  'access-control-max-age': '86400',
} as const

/** The PG error fields Neon returns (all present, null when absent). */
const PG_ERROR_FIELDS = [
  'severity',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const

const utf8 = new TextDecoder('utf-8', { fatal: true })

interface ParsedQuery {
  text: string
  values: (string | null)[]
  arrayMode: boolean | undefined
}

function jsonResponse(status: number, body: string, extra?: Record<string, string>): SqlResponse {
  return { status, headers: extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS, body }
}

function errorBody(message: string, code: string, fields?: Record<string, unknown>): string {
  const out: Record<string, unknown> = { message, code }
  for (const k of PG_ERROR_FIELDS) out[k] = fields?.[k] ?? null
  return JSON.stringify(out)
}

function ownError(err: PgAuthorizeError): SqlResponse {
  const m = ERROR_TABLE[err.code]
  // 429 (past the identity's fair share): its share frees as soon as one of its own requests ends.
  const extra = m.status === 429 ? RETRY_AFTER : undefined
  return jsonResponse(m.status, errorBody(err.message, m.sqlstate, { detail: err.detail, hint: err.hint }), extra)
}

const RETRY_AFTER = { 'retry-after': '1' } as const

function badRequest(message: string): PgAuthorizeError {
  return new PgAuthorizeError('ERR_BAD_REQUEST', message)
}

/** The path of a request URL (absolute, or a path with a query), without parsing the whole URL. */
function pathOf(url: string): string {
  // A Node request carries only the path; a Web Request the absolute URL.
  const start = url.startsWith('/') ? 0 : url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return '/'
  let end = url.length
  const q = url.indexOf('?', start)
  if (q >= 0) end = q
  const h = url.indexOf('#', start)
  if (h >= 0 && h < end) end = h
  return url.slice(start, end)
}

/** A Web `Request` as the handler reads it. */
export function webRequest(req: Request): SqlRequest {
  return {
    method: req.method,
    url: req.url,
    header: (name) => req.headers.get(name),
    body: (max) => readCapped(req, max, () => tooLarge(max)),
    signal: req.signal,
  }
}

/** The ERR_REQUEST_TOO_LARGE of a body past `max` bytes (both adapters raise it). */
export function tooLarge(max: number): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REQUEST_TOO_LARGE', `request is too large (max is ${max} bytes)`)
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

/** Creates the `(Request) => Promise<Response>` handler of `POST /sql`, `OPTIONS /sql` and `GET /health`. */
export function createSqlHttpHandler(options: SqlHttpHandlerOptions): (req: Request) => Promise<Response> {
  return webHandler(createSqlCore(options))
}

/** The core as a Web-standard `(Request) => Promise<Response>` handler. */
export function webHandler(core: (req: SqlRequest) => Promise<SqlResponse>): (req: Request) => Promise<Response> {
  return async (req) => {
    const out = await core(webRequest(req))
    return new Response(out.body, { status: out.status, headers: out.headers })
  }
}

/** The handler on the runtime-neutral {@link SqlRequest} / {@link SqlResponse}; see the module comment. */
export function createSqlCore(options: SqlHttpHandlerOptions): (req: SqlRequest) => Promise<SqlResponse> {
  const maxRequest = options.maxRequestBytes ?? 10 * MiB
  const maxResponse = options.maxResponseBytes ?? 10 * MiB
  const { authenticate, pools, onEvent } = options

  function unexpected(err: unknown): SqlResponse {
    onEvent?.({ kind: 'internal-error', error: err })
    return jsonResponse(500, errorBody('internal error', 'XX000'))
  }

  async function sql(req: SqlRequest, info: Partial<HttpRequestInfo>): Promise<SqlResponse> {
    const h = { get: req.header }
    // 1. Everything that can be checked without the database, so bad input never executes anything.
    const conn = parseConnectionString(h.get('neon-connection-string'))
    const isoHeader = h.get('neon-batch-isolation-level')
    let isolation: string | undefined
    if (isoHeader !== null) {
      // Own properties only: `constructor` or `__proto__` must not pass as a level (they would reach SQL).
      isolation = Object.hasOwn(ISOLATION, isoHeader) ? ISOLATION[isoHeader] : undefined
      if (isolation === undefined) {
        throw new PgAuthorizeError(
          'ERR_ISOLATION_LEVEL_INVALID',
          `invalid isolation level: Neon-Batch-Isolation-Level must be one of ${Object.keys(ISOLATION).join(', ')}`,
        )
      }
    }
    const authz = h.get('authorization')
    let token: string | undefined
    if (authz !== null) {
      if (!/^Bearer /i.test(authz)) {
        throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the Authorization header must use the Bearer scheme')
      }
      token = authz.slice(7).trim()
    }
    options.precheckToken?.(token)
    const arrayModeDefault = h.get('neon-array-mode') === 'true'
    const rawText = h.get('neon-raw-text-output') === 'true'

    let text: string
    try {
      text = utf8.decode(await req.body(maxRequest))
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
    const batch =
      payload !== null && typeof payload === 'object' && !Array.isArray(payload) && 'queries' in payload
    let queries: ParsedQuery[]
    if (batch) {
      const list = (payload as { queries: unknown }).queries
      if (!Array.isArray(list)) throw badRequest('queries must be an array')
      queries = list.map((q, i) => parseQuery(q, `queries[${i}].`))
      queries.forEach((q, i) => refuseTransactionControl(q.text, i))
    } else {
      queries = [parseQuery(payload, '')]
    }

    // 2. Who is asking.
    const identity = await authenticate({
      token,
      role: conn.role,
      database: conn.database,
      connectionString: conn.url,
      ...(conn.applicationName === undefined ? {} : { applicationName: conn.applicationName }),
    })
    info.role = identity.role
    info.database = identity.database
    if (identity.provider !== undefined) info.provider = identity.provider
    if (identity.subject !== undefined) info.subject = identity.subject
    info.statements = queries.map((q) => statementKind(q.text)).join(',')

    // 3. The statements, gateway's own first (not captured), then the user's.
    const steps: Step[] = []
    const own = (stepText: string, values: (string | null)[] = []) =>
      steps.push({ text: stepText, values, capture: false, arrayMode: true, rawText: true })
    let extraHeaders: Record<string, string> | undefined
    if (batch) {
      const readOnly = h.get('neon-batch-read-only') === 'true'
      const deferrable = h.get('neon-batch-deferrable') === 'true'
      own(
        'BEGIN' +
          (isolation ? ` ISOLATION LEVEL ${isolation}` : '') +
          (readOnly ? ' READ ONLY' : '') +
          (deferrable ? ' DEFERRABLE' : ''),
      )
      extraHeaders = {}
      if (isoHeader !== null) extraHeaders['neon-batch-isolation-level'] = isoHeader
      if (readOnly) extraHeaders['neon-batch-read-only'] = 'true'
      if (deferrable) extraHeaders['neon-batch-deferrable'] = 'true'
    }
    // As bind parameters: SQL text shows in pg_stat_activity to other sessions of the role (replayable).
    if (identity.envelope !== null && conn.applicationName !== undefined) {
      own(CLAIMS_AND_APP_NAME_SQL, [identity.envelope, conn.applicationName])
    } else if (identity.envelope !== null) {
      own(installClaimsParamSql(true), [identity.envelope])
    } else if (conn.applicationName !== undefined) {
      own(APP_NAME_SQL, [conn.applicationName])
    }
    let firstUser = steps.length
    for (const q of queries) {
      steps.push({ text: q.text, values: q.values, capture: true, arrayMode: q.arrayMode ?? arrayModeDefault, rawText })
    }
    if (batch) own('COMMIT')

    if (batch && queries.length === 0) return jsonResponse(200, '{"results":[]}', extraHeaders)

    // 4. Run them on a connection logged in as the identity's role.
    const signal = req.signal
    const waitStart = performance.now()
    const lease: Lease = await pools.acquire(identity.database, identity.role, signal, {
      pipelineReset: true,
      identity: { provider: identity.provider, subject: identity.subject },
    })
    if (lease.resetPending) {
      // The previous request's session state is undone first, in this request's pipeline (pool.ts).
      steps.unshift(...RESET_STEPS)
      firstUser += RESET_STEPS.length
    }
    const queryStart = performance.now()
    info.poolWaitMs = queryStart - waitStart
    const onAbort = () => {
      onEvent?.({ kind: 'cancelled', database: identity.database, role: identity.role })
      lease.cancel().catch(() => {})
    }
    if (signal.aborted) {
      lease.release()
      return cancelled()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    const pipeline = new Pipeline(steps, maxResponse)
    let results: string[]
    try {
      lease.client.query(pipeline as unknown as pg.QueryConfig)
      results = await pipeline.promise
    } catch (err) {
      info.queryMs = performance.now() - queryStart
      signal.removeEventListener('abort', onAbort)
      if (signal.aborted) return cancelled()
      if (isPgAuthorizeError(err)) {
        // Response too large: stop the backend from producing the rest.
        lease.cancel().catch(() => {})
        return ownError(err)
      }
      const cause = err instanceof StepError ? err.error : err
      if (cause instanceof pg.DatabaseError && cause.severity !== 'FATAL' && cause.severity !== 'PANIC') {
        lease.release()
        if (err instanceof StepError && err.step < firstUser) onEvent?.({ kind: 'setup-step-failed', code: cause.code })
        info.outcome = 'sql_error'
        if (cause.code) info.code = cause.code
        return jsonResponse(400, errorBody(cause.message, cause.code ?? 'XX000', cause as unknown as Record<string, unknown>))
      }
      // The connection itself failed (terminated, socket error): its state is unknown.
      lease.destroy()
      if (cause instanceof pg.DatabaseError) {
        return jsonResponse(400, errorBody(cause.message, cause.code ?? 'XX000', cause as unknown as Record<string, unknown>))
      }
      return ownError(new PgAuthorizeError('ERR_DB_CONNECT', 'the database connection was lost', { cause }))
    }
    info.queryMs = performance.now() - queryStart
    signal.removeEventListener('abort', onAbort)
    lease.release()
    const body = batch ? `{"results":[${results.join(',')}]}` : results[0]!
    return jsonResponse(200, body, extraHeaders)
  }

  async function route(req: SqlRequest, info: Partial<HttpRequestInfo>): Promise<SqlResponse> {
    const path = pathOf(req.url)
    const method = req.method
    try {
      if (path === '/sql') {
        if (method === 'POST') return await sql(req, info)
        if (method === 'OPTIONS') return { status: 200, headers: CORS_HEADERS, body: null }
        throw new PgAuthorizeError('ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed on /sql`)
      }
      if (path === '/health') {
        if (method === 'GET' || method === 'HEAD') return jsonResponse(200, '{"status":"ok"}')
        throw new PgAuthorizeError('ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed on /health`)
      }
      throw new PgAuthorizeError('ERR_NOT_FOUND', 'not found')
    } catch (err) {
      if (isPgAuthorizeError(err)) {
        onEvent?.({ kind: 'rejected', code: err.code })
        info.code = err.code
        info.outcome = ERROR_TABLE[err.code].sqlstate.startsWith('28') ? 'unauthorized' : err.status >= 500 ? 'error' : 'rejected'
        return ownError(err)
      }
      info.outcome = 'error'
      return unexpected(err)
    }
  }

  return async function handle(req: SqlRequest): Promise<SqlResponse> {
    const started = performance.now()
    const incoming = req.header('x-request-id')
    const requestId = incoming && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID()
    const info: Partial<HttpRequestInfo> = { requestId }
    const res = await route(req, info)
    const out: SqlResponse = { ...res, headers: { ...res.headers, 'x-request-id': requestId } }
    if (onEvent) {
      info.status = res.status
      info.outcome ??= res.status < 300 ? 'ok' : res.status >= 500 ? 'error' : req.signal.aborted ? 'cancelled' : 'rejected'
      info.ms = performance.now() - started
      onEvent({ kind: 'request', ...info })
    }
    return out
  }
}

function cancelled(): SqlResponse {
  return jsonResponse(400, errorBody('Query cancelled, connection was terminated', '08P01'))
}
