/**
 * The SQL-over-HTTP endpoint, wire-compatible with Neon's (`POST /sql`), as a runtime-neutral core
 * (`createSqlCore`, on request.ts's SqlRequest/SqlResponse) and a Web-standard `(Request) => Promise<Response>`
 * handler around it. See shared/reference/neon-http-protocol.md §1 and §5.
 *
 * One request, in order:
 * 1. parse.ts: everything that can be checked without the database (headers, token shape, size, UTF-8,
 *    JSON, params), so bad input never executes anything;
 * 2. `authenticate` (the authenticator, auth/authenticator.ts): who the request runs as;
 * 3. plan.ts: the statements, the gateway's own first (claims, application_name, BEGIN/COMMIT);
 * 4. run.ts: one pipelined round trip on a pooled connection logged in as the identity's role.
 *
 * @example
 * const handler = createSqlHttpHandler({ authenticate: (req) => authenticator.authenticate({ ...req, transport: 'http' }), pools })
 * serveHttp(handler, { port: 4444 })   // see node.ts
 *
 * @module
 */
import { ERROR_TABLE, PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { statementKind } from '../../observability/audit.js'
import type { Identity } from '../../auth/identity.js'
import type { EventSink, HttpRequestInfo } from '../../observability/events.js'
import { parseSqlRequest } from './parse.js'
import { planSql } from './plan.js'
import type { GatewayPools } from './pool.js'
import { webRequest, type SqlRequest, type SqlResponse } from './request.js'
import { CORS_HEADERS, errorBody, jsonResponse, ownError } from './respond.js'
import { runSql } from './run.js'

export type { AbortLike, SqlRequest, SqlResponse } from './request.js'
export { tooLarge, webRequest } from './request.js'
export type { HttpRequestInfo } from '../../observability/events.js'

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

export interface SqlHttpHandlerOptions {
  /** Decides who the request runs as; throws a PgAuthorizeError on failure. */
  authenticate(req: HttpAuthRequest): Promise<Identity>
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
  onEvent?: EventSink
}

const MiB = 1024 * 1024

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

/** Creates the `(Request) => Promise<Response>` handler of `POST /sql` and `OPTIONS /sql`. */
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

  async function sql(req: SqlRequest, info: Partial<HttpRequestInfo>): Promise<SqlResponse> {
    const parsed = await parseSqlRequest(req, maxRequest, options.precheckToken)
    const { conn } = parsed
    const identity = await authenticate({
      token: parsed.token,
      role: conn.role,
      database: conn.database,
      connectionString: conn.url,
      ...(conn.applicationName === undefined ? {} : { applicationName: conn.applicationName }),
    })
    info.role = identity.role
    info.database = identity.database
    if (identity.provider !== undefined) info.provider = identity.provider
    if (identity.subject !== undefined) info.subject = identity.subject
    info.statements = parsed.queries.map((q) => statementKind(q.text)).join(',')
    const plan = planSql(parsed, identity)
    if (parsed.batch && parsed.queries.length === 0) return jsonResponse(200, '{"results":[]}', plan.headers)
    return runSql(plan, identity, parsed.batch, { pools, maxResponseBytes: maxResponse, onEvent, signal: req.signal, info })
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
      throw new PgAuthorizeError('ERR_NOT_FOUND', 'not found')
    } catch (err) {
      if (isPgAuthorizeError(err)) {
        onEvent?.({ kind: 'rejected', code: err.code })
        info.code = err.code
        info.outcome = ERROR_TABLE[err.code].sqlstate.startsWith('28') ? 'unauthorized' : err.status >= 500 ? 'error' : 'rejected'
        return ownError(err)
      }
      info.outcome = 'error'
      onEvent?.({ kind: 'internal-error', error: err })
      return jsonResponse(500, errorBody('internal error', 'XX000'))
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
      onEvent({ kind: 'request', ...(info as HttpRequestInfo) })
    }
    return out
  }
}
