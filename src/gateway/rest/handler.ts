/**
 * The Data API: PostgREST-compatible REST at `/rest/v1/` (the default database) and `/<database>/rest/v1/`,
 * as a Web-standard `(Request) => Promise<Response | undefined>` handler (undefined: not a Data API path).
 *
 * Per request: route and parse everything that can be checked without the database (path, query string,
 * headers, sizes); authenticate the Bearer token through the backend (the same providers as `/sql`); load
 * the role's schema cache; read the body (capped); build one statement (build-sql.ts); run it in one
 * transaction with the sealed claims installed (the backend); answer in PostgREST's shape.
 *
 * The handler knows nothing of pools, envelopes or the verifier: everything it needs from the gateway is the
 * narrow {@link RestBackend}, implemented by mount.ts.
 *
 * @module
 */
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { readCapped } from '../../lib/body.js'
import { buildRead, buildRpc, buildWrite, type Statement } from './build-sql.js'
import { restError } from './errors.js'
import { negotiate, parsePrefer, parseRange, pickSchema, preferenceApplied, type MediaType } from './headers.js'
import { openApi } from './openapi.js'
import { DEFAULT_PARSE_LIMITS, parseQuery, type Filter, type ParsedQuery } from './parse-query.js'
import { CONTENT_TYPE, CORS, checkSingular, readResponse, resultRow, type RestResponse, type ResultRow } from './respond.js'
import { SchemaCaches, type CatalogQueryRunner, type RestFunction, type SchemaCache, type Table } from './schema-cache.js'
import type { StepResult } from './pipeline.js'

/** Who a request runs as; made by the backend, opaque to the handler beyond these fields. */
export interface RestIdentity {
  readonly role: string
  readonly database: string
  /** No identity (no token): a 42501 is then 401, not 403. */
  readonly anonymous: boolean
}

/** One transaction: `query` runs a statement; with `end`, the COMMIT/ROLLBACK goes in the same round trip. */
export interface RestTransaction {
  query(statement: Statement, end?: 'commit' | 'rollback'): Promise<StepResult>
}

/** What the Data API needs from the gateway (mount.ts implements it over the gateway's internals). */
export interface RestBackend {
  /** The database `/rest/v1` serves. */
  readonly defaultDatabase: string
  /**
   * Verifies the token (undefined: none) for `database` and picks the role: the token's `role` claim when
   * its provider allows it, else the provider's default; no token: anonymous where allowed. Throws.
   */
  authenticate(token: string | undefined, database: string): Promise<RestIdentity>
  /**
   * Runs `fn` in one transaction on a connection logged in as the identity's role with its sealed claims
   * installed transaction-locally; commits when `fn` says so (and has not ended it), else rolls back.
   */
  runAs<T>(identity: RestIdentity, mode: { readOnly: boolean; signal?: AbortSignal }, fn: (tx: RestTransaction) => Promise<{ value: T; commit: boolean }>): Promise<T>
  /** Catalog queries as `role` in `database`, without claims (for the schema cache). */
  catalog(database: string, role: string): CatalogQueryRunner
}

export interface RestHandlerOptions {
  backend: RestBackend
  /** Exposed schemas; the first is the default. Default `['public']`. */
  schemas?: readonly string[]
  /** The most rows a read returns (PostgREST's `db-max-rows`). Default 1000; `undefined` in `maxRows: null` means none. */
  maxRows?: number | null
  /** Largest request body, bytes. Default 1 MiB. */
  maxRequestBytes?: number
  /** Largest response body, bytes. Default 10 MiB. */
  maxResponseBytes?: number
  /** Longest URL (path and query), characters. Default 8192 (Node refuses request heads past 16 KiB anyway, 431). */
  maxUrlLength?: number
  /** Deepest embedding in `select=`. Default 8. */
  maxEmbedDepth?: number
  onEvent?: (e: { kind: string; [k: string]: unknown }) => void
}

export interface RestHandler {
  (req: Request): Promise<Response | undefined>
  readonly caches: SchemaCaches
}

const PATH = /^\/(?:([^/]+)\/)?rest\/v1(\/.*)?$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

interface Route {
  database: string | undefined
  /** '' for the root, `rpc/fn`, or a table name. */
  resource: string
}

function route(pathname: string): Route | undefined {
  const m = PATH.exec(pathname)
  if (!m) return undefined
  let resource = (m[2] ?? '/').slice(1)
  if (resource.endsWith('/')) resource = resource.slice(0, -1)
  let database: string | undefined
  try {
    database = m[1] === undefined ? undefined : decodeURIComponent(m[1])
    resource = resource.split('/').map(decodeURIComponent).join('/')
  } catch {
    throw new PgAuthorizeError('ERR_REST_PATH', 'Invalid path specified in request URL')
  }
  return { database, resource }
}

/** Creates the Data API handler. */
export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const { backend } = options
  const schemas = options.schemas?.length ? options.schemas : ['public']
  const maxRows = options.maxRows === null ? undefined : options.maxRows ?? 1000
  const maxRequest = options.maxRequestBytes ?? 1024 * 1024
  const maxUrl = options.maxUrlLength ?? 8192
  const maxBody = options.maxResponseBytes ?? 10 * 1024 * 1024
  const limits = { ...DEFAULT_PARSE_LIMITS, maxDepth: options.maxEmbedDepth ?? DEFAULT_PARSE_LIMITS.maxDepth }
  const caches = new SchemaCaches((database, role) => backend.catalog(database, role), schemas)

  async function serve(req: Request, url: URL, r: Route, state: { anonymous: boolean }): Promise<RestResponse> {
    const method = req.method
    const h = req.headers
    if (method === 'OPTIONS') {
      return {
        status: 200,
        headers: {
          ...CORS,
          allow: 'OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE',
          'access-control-allow-methods': 'OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE',
          'access-control-allow-headers': 'Authorization, Content-Type, Accept, Accept-Profile, Content-Profile, Prefer, Range, apikey, X-Client-Info',
          'access-control-max-age': '86400',
        },
        body: null,
      }
    }
    if (!['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
      throw new PgAuthorizeError('ERR_REST_METHOD', `Unsupported HTTP method: ${method.slice(0, 16)}`)
    }
    const isRead = method === 'GET' || method === 'HEAD'
    const rpc = r.resource.startsWith('rpc/') ? r.resource.slice(4) : undefined
    if (r.resource.includes('/') && (rpc === undefined || rpc.includes('/'))) throw new PgAuthorizeError('ERR_REST_PATH', 'Invalid path specified in request URL')
    if (rpc !== undefined && !['GET', 'HEAD', 'POST'].includes(method)) throw new PgAuthorizeError('ERR_REST_RPC_METHOD', `Cannot use the ${method} method on RPC`)
    if (r.resource === '' && !isRead) throw new PgAuthorizeError('ERR_REST_METHOD', `Unsupported HTTP method: ${method}`)

    // 1. Everything checkable without the database.
    const query = parseQuery(url.searchParams, limits)
    const prefer = parsePrefer(h.get('prefer'))
    const { type: media, stripNulls } = negotiate(h.get('accept'), r.resource === '')
    const { schema, explicit } = pickSchema(isRead ? h.get('accept-profile') : h.get('content-profile'), schemas)
    const range = isRead ? parseRange(h.get('range')) : undefined
    const authz = h.get('authorization')
    let token: string | undefined
    if (authz !== null && authz.trim() !== '') {
      if (!/^Bearer /i.test(authz)) throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the Authorization header must use the Bearer scheme')
      token = authz.slice(7).trim()
    }

    // 2. Who is asking, then what that role can see.
    const identity = await backend.authenticate(token, r.database ?? backend.defaultDatabase)
    state.anonymous = identity.anonymous
    const cache = await caches.get(identity.database, identity.role)
    const headers: Record<string, string> = { ...CORS }
    if (explicit || schemas.length > 1) headers['content-profile'] = schema
    const applied = preferenceApplied(prefer, method)
    if (applied) headers['preference-applied'] = applied

    if (r.resource === '') {
      if (query.raw.length) throw new PgAuthorizeError('ERR_REST_PARSE', 'the API description takes no query parameters')
      return { status: 200, headers: { ...headers, 'content-type': CONTENT_TYPE.openapi }, body: method === 'HEAD' ? null : JSON.stringify(openApi(cache, schema, url)) }
    }
    if (media === 'openapi') throw new PgAuthorizeError('ERR_REST_ACCEPT', 'None of these media types are available: application/openapi+json')
    const bodyMedia: MediaType | 'none' = method === 'HEAD' ? 'none' : media
    const run = (stmt: Statement, readOnly: boolean, decide: (row: ResultRow) => boolean, fixedEnd?: 'commit' | 'rollback') =>
      backend.runAs(identity, { readOnly, signal: req.signal }, async (tx) => {
        const res = await tx.query(stmt, fixedEnd)
        const row = resultRow(res.rows[0])
        // Past the cap, Postgres kept the body back; a write is rolled back rather than answered without it.
        return { value: row, commit: row.tooLarge === undefined && decide(row) }
      }).then((row) => {
        if (row.tooLarge !== undefined) throw new PgAuthorizeError('ERR_RESPONSE_TOO_LARGE', `response is too large (${row.tooLarge} bytes; max is ${maxBody} bytes)`)
        return row
      })

    if (rpc !== undefined) return rpcCall(rpc, req, query, cache, schema, media, bodyMedia, stripNulls, prefer, range, headers, run)

    // 3. Tables and views.
    if (query.others.length) {
      const [k, v] = query.others[0]!
      throw new PgAuthorizeError('ERR_REST_PARSE', `"failed to parse filter (${v.slice(0, 60)})" (line 1, column 1)`, { detail: `unexpected "${v.slice(0, 1)}" expecting operator for '${k.slice(0, 63)}'` })
    }
    const base = { cache, schema, query, maxRows, maxBodyBytes: maxBody }
    if (isRead) {
      const stmt = buildRead({ ...base, table: r.resource, media: bodyMedia, stripNulls, count: prefer.count !== undefined, range })
      const row = await run(stmt, true, () => true, 'commit')
      if (media === 'object') checkSingular(row)
      const offset = query.levels.get('')?.offset ?? 0
      return readResponse(row, offset, media, method === 'HEAD', headers)
    }
    if (query.select.length === 0) query.select = [{ kind: 'star' }]
    const root = query.levels.get('')
    const write = await writeRequest(req, method, r.resource, query, cache, schema, prefer)
    if (write === 'noop') {
      return prefer.return === 'representation' ? { status: 200, headers: { ...headers, 'content-type': CONTENT_TYPE[media] }, body: '[]' } : { status: 204, headers, body: null }
    }
    const stmt = buildWrite({ ...base, ...write, prefer, media: bodyMedia, stripNulls })
    const end = prefer.tx === 'rollback' ? 'rollback' : undefined
    let failure: unknown
    const row = await run(stmt, false, (row) => {
      // A singular or max-affected violation rolls the write back.
      if (media === 'object' && prefer.return === 'representation' && row.page !== 1) failure = singularError(row)
      else if (prefer.handling === 'strict' && prefer.maxAffected !== undefined && row.page > prefer.maxAffected) {
        failure = new PgAuthorizeError('ERR_REST_MAX_AFFECTED', 'Query result exceeds max-affected preference constraint', { detail: `The query affects ${row.page} rows` })
      }
      return failure === undefined && end !== 'rollback'
    })
    if (failure) throw failure
    void root
    return writeResponse(method, write, row, prefer, media, r.resource, headers)
  }

  async function writeRequest(req: Request, method: string, table: string, query: ParsedQuery, cache: SchemaCache, schema: string, prefer: ReturnType<typeof parsePrefer>): Promise<WriteInfo | 'noop'> {
    const t = cache.tables.get(`${schema}.${table}`)
    if (!t) return { table, kind: 'delete' } // buildWrite reports the unknown table
    if (method === 'DELETE') return { table, kind: 'delete' }
    const json = await readJson(req)
    if (method === 'PATCH') {
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new PgAuthorizeError('ERR_REST_BODY', 'Empty or invalid json', { detail: 'PATCH takes one JSON object' })
      const columns = query.columns ?? Object.keys(json)
      if (columns.length === 0) return 'noop'
      checkColumns(t, columns)
      return { table, kind: 'update', body: JSON.stringify(json), columns }
    }
    const rows = Array.isArray(json) ? json : [json]
    if (!rows.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) throw new PgAuthorizeError('ERR_REST_BODY', 'Empty or invalid json', { detail: 'the body must be a JSON object or an array of objects' })
    let columns = query.columns
    if (!columns) {
      const first = Object.keys(rows[0] ?? {})
      const key = first.slice().sort().join('\u0000')
      if (!rows.every((x) => Object.keys(x as object).sort().join('\u0000') === key)) throw new PgAuthorizeError('ERR_REST_BODY', 'All object keys must match')
      columns = first
    }
    checkColumns(t, columns)
    if (method === 'PUT') {
      const root = query.levels.get('')
      if (root?.limit !== undefined || root?.offset !== undefined) throw new PgAuthorizeError('ERR_REST_PUT_LIMIT', 'limit/offset querystring parameters are not allowed for PUT')
      const filters = (root?.conditions ?? []).filter((c): c is Filter => c.kind === 'filter')
      const pkEq = filters.length === (root?.conditions.length ?? 0) && filters.length === t.pk.length && t.pk.length > 0 &&
        filters.every((f) => f.op === 'eq' && !f.negate && f.field.path.length === 0 && t.pk.includes(f.field.name))
      if (!pkEq) throw new PgAuthorizeError('ERR_REST_PUT_FILTERS', 'Filters must include all and only primary key columns with \'eq\' operators')
      if (rows.length !== 1) throw new PgAuthorizeError('ERR_REST_BODY', 'PUT takes exactly one object')
      const row = rows[0] as Record<string, unknown>
      for (const f of filters) {
        if (!(f.field.name in row) || String(row[f.field.name]) !== f.value) throw new PgAuthorizeError('ERR_REST_PUT_MISMATCH', 'Payload values do not match URL in primary key column(s)')
      }
      return { table, kind: 'upsert', body: JSON.stringify(rows), columns, onConflict: t.pk, put: true }
    }
    const upsert = prefer.resolution !== undefined
    return { table, kind: upsert ? 'upsert' : 'insert', body: JSON.stringify(rows), columns, onConflict: query.onConflict }
  }

  async function readJson(req: Request): Promise<unknown> {
    const ct = (req.headers.get('content-type') ?? 'application/json').split(';')[0]!.trim().toLowerCase()
    if (ct !== 'application/json' && ct !== '' && ct !== 'application/vnd.pgrst.object+json') {
      throw new PgAuthorizeError('ERR_REST_BODY', `Content-Type not acceptable: ${ct.slice(0, 100)}`)
    }
    let text: string
    try {
      text = utf8.decode(await readBody(req, maxRequest))
    } catch (err) {
      if (isPgAuthorizeError(err)) throw err
      throw new PgAuthorizeError('ERR_REST_BODY', 'Empty or invalid json', { detail: 'the body is not valid UTF-8' })
    }
    try {
      return JSON.parse(text)
    } catch {
      throw new PgAuthorizeError('ERR_REST_BODY', 'Empty or invalid json')
    }
  }

  async function rpcCall(name: string, req: Request, query: ParsedQuery, cache: SchemaCache, schema: string, media: MediaType, bodyMedia: MediaType | 'none',
    stripNulls: boolean, prefer: ReturnType<typeof parsePrefer>, range: ReturnType<typeof parseRange>, headers: Record<string, string>,
    run: (stmt: Statement, readOnly: boolean, decide: (row: ResultRow) => boolean, end?: 'commit' | 'rollback') => Promise<ResultRow>): Promise<RestResponse> {
    const candidates = cache.functions.get(`${schema}.${name}`) ?? []
    const isRead = req.method === 'GET' || req.method === 'HEAD'
    let args: Record<string, unknown> = {}
    let rawBody: string | undefined
    if (isRead) {
      // Query parameters naming an argument are arguments; the rest are filters on the result.
      const names = new Set(candidates.flatMap((f) => f.args.map((a) => a.name)))
      const kept: [string, string][] = []
      for (const [k, v] of query.raw) {
        if (names.has(k)) args[k] = v
        else kept.push([k, v])
      }
      const reparsed = parseQuery(kept, limits)
      Object.assign(query, reparsed)
      if (query.others.length) {
        const [k] = query.others[0]!
        throw noFunction(schema, name, Object.keys(args).concat(k))
      }
    } else {
      const json = await readJson(req)
      rawBody = JSON.stringify(json)
      if (json !== null && typeof json === 'object' && !Array.isArray(json)) args = json as Record<string, unknown>
      else args = {}
    }
    const keys = Object.keys(args)
    let fn: RestFunction | undefined
    const single = candidates.filter((f) => f.singleJsonArg)
    const matching = candidates.filter((f) => !f.singleJsonArg && f.unnamedArgs === 0 &&
      keys.every((k) => f.args.some((a) => a.name === k)) && f.args.every((a) => a.optional || keys.includes(a.name)))
    if (matching.length === 1) fn = matching[0]
    else if (matching.length === 0 && single.length === 1 && !isRead) fn = single[0]
    else if (matching.length > 1) {
      throw new PgAuthorizeError('ERR_REST_AMBIGUOUS_FUNCTION', `Could not choose the best candidate function between: ${matching.map((f) => `${f.schema}.${f.name}(${f.args.map((a) => `${a.name} => ${a.type}`).join(', ')})`).join(', ')}`)
    }
    if (!fn) throw noFunction(schema, name, keys)
    const textArgs: Record<string, unknown> = {}
    for (const k of keys) textArgs[k] = args[k]
    const stmt = buildRpc({
      cache, schema, query, maxRows, maxBodyBytes: maxBody, fn, media: bodyMedia, stripNulls, count: prefer.count !== undefined, range,
      args: fn.singleJsonArg ? (rawBody ?? '{}') : JSON.stringify(textArgs), argNames: keys,
    })
    // GET runs read-only; POST too for a STABLE or IMMUTABLE function (PostgREST's access mode).
    const readOnly = isRead || fn.volatility !== 'volatile'
    const end = prefer.tx === 'rollback' ? 'rollback' : undefined
    let failure: unknown
    const row = await run(stmt, readOnly, (r) => {
      if (media === 'object' && (fn.returnsSet || fn.returnKind === 'composite') && r.page !== 1) failure = singularError(r)
      return failure === undefined && end !== 'rollback'
    }, isRead ? 'commit' : undefined) // GET: read-only, nothing to decide, one round trip
    if (failure) throw failure
    if (fn.returnKind === 'void') return { status: 204, headers, body: null }
    if (!fn.returnsSet && fn.returnKind === 'scalar') {
      return { status: 200, headers: { ...headers, 'content-type': CONTENT_TYPE[media === 'csv' ? 'json' : media] }, body: req.method === 'HEAD' ? null : row.body }
    }
    return readResponse(row, query.levels.get('')?.offset ?? 0, media, req.method === 'HEAD', headers)
  }

  const handler = async (req: Request): Promise<Response | undefined> => {
    const url = new URL(req.url)
    let r: Route | undefined
    const state = { anonymous: true }
    let res: RestResponse
    try {
      r = route(url.pathname)
      if (!r) return undefined
      if (url.pathname.length + url.search.length > maxUrl) throw new PgAuthorizeError('ERR_REQUEST_TOO_LARGE', `the URL is longer than ${maxUrl} characters`)
      res = await serve(req, url, r, state)
    } catch (err) {
      if (!isPgAuthorizeError(err) && !(err instanceof Error && 'severity' in err)) options.onEvent?.({ kind: 'internal-error', error: err })
      const e = restError(err, state.anonymous)
      res = { status: e.status, headers: { ...CORS, 'content-type': CONTENT_TYPE.json, ...e.headers }, body: e.body }
      options.onEvent?.({ kind: 'rest-error', status: e.status })
    }
    return new Response(res.body, { status: res.status, headers: res.headers })
  }
  return Object.assign(handler, { caches })
}

function singularError(row: ResultRow): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REST_SINGULAR', 'Cannot coerce the result to a single JSON object', { detail: `The result contains ${row.page} rows` })
}

function noFunction(schema: string, name: string, keys: string[]): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REST_NO_FUNCTION', `Could not find the function ${schema}.${name.slice(0, 63)}(${keys.map((k) => k.slice(0, 63)).sort().join(', ')}) in the schema cache`, {
    detail: `Searched for the function ${schema}.${name.slice(0, 63)} with parameters ${keys.length ? keys.map((k) => k.slice(0, 63)).sort().join(', ') : 'none'} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
  })
}

function checkColumns(t: Table, columns: string[]): void {
  for (const c of columns) {
    if (!t.columns.has(c)) throw new PgAuthorizeError('ERR_REST_NO_COLUMN', `Could not find the '${c.slice(0, 63)}' column of '${t.name}' in the schema cache`)
  }
}

function readBody(req: Request, max: number): Promise<Uint8Array> {
  return readCapped(req, max, () => new PgAuthorizeError('ERR_REQUEST_TOO_LARGE', `request is too large (max is ${max} bytes)`))
}

/** What a write request asks for, checked against the cache (the builder's input). */
interface WriteInfo {
  table: string
  kind: 'insert' | 'update' | 'delete' | 'upsert'
  body?: string
  columns?: string[]
  onConflict?: string[] | undefined
  put?: boolean
}

function writeResponse(method: string, write: WriteInfo, row: ResultRow, prefer: ReturnType<typeof parsePrefer>, media: MediaType, table: string, headers: Record<string, string>): RestResponse {
  const representation = prefer.return === 'representation'
  const out: Record<string, string> = { ...headers }
  if (representation) out['content-type'] = CONTENT_TYPE[media]
  const body = representation ? row.body : null
  if (method === 'POST' || method === 'PUT') {
    if (method === 'POST') out['content-range'] = `*/${prefer.count ? row.page : '*'}`
    if (prefer.return === 'headers-only' && row.location && row.page === 1) out.location = `/${encodeURIComponent(table)}?${row.location}`
    const inserted = write.kind === 'upsert' ? (row.inserted ?? 0) > 0 : true
    if (method === 'PUT') return { status: representation ? (inserted ? 201 : 200) : 204, headers: out, body }
    return { status: write.kind === 'upsert' && !inserted && prefer.resolution === 'merge-duplicates' ? 200 : 201, headers: out, body }
  }
  out['content-range'] = method === 'PATCH' ? (row.page ? `0-${row.page - 1}/*` : '*/*') : `*/${prefer.count ? row.page : '*'}`
  return { status: representation ? 200 : 204, headers: out, body }
}
