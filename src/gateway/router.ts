/**
 * The one router of the gateway's HTTP port (Hono): `/health`, `/ready`, `/metrics`, `/sql`, the console
 * under `/console`, extra routes the caller adds (e.g. `dev`'s JWKS), and a Neon-shaped 404 for the rest.
 * WebSocket upgrades (`/v1`, `/v2`) are not requests: the Node server hands them to ws/websocket.ts.
 *
 * The Node fast path for `POST /sql` (node.ts) sits in front of this router in `startGateway`; everything
 * else, and any runtime that is not Node, goes through `app.fetch`.
 *
 * @module
 */
import { Hono } from 'hono'
import { PgAuthorizeError, type ErrorCode } from '../errors.js'
import type { FetchHandler } from './http/request.js'
import { JSON_HEADERS } from './http/respond.js'

export type { FetchHandler } from './http/request.js'

export interface RouterOptions {
  /** `POST`/`OPTIONS /sql` (any other method there gets 405 from it). */
  sql: FetchHandler
  /** `GET /ready`: the readiness document and whether it is ready. */
  ready(): Promise<{ ready: boolean } & Record<string, unknown>>
  /** `GET /metrics`: the response, or an error saying why it is not served here. */
  metrics(req: Request): Promise<Response>
  /** The console's app, mounted at `/console`. */
  console?: Hono<any, any, any> | undefined
  /** Extra routes, tried before the 404. */
  routes?: ((req: Request) => Promise<Response | undefined> | Response | undefined) | undefined
  /** While true, every request gets 503 (shutting down). */
  draining(): boolean
}

/** An error of ours as the JSON every route of this port answers with. */
export function errorResponse(code: ErrorCode, message: string, headers?: Record<string, string>): Response {
  const err = new PgAuthorizeError(code, message)
  return Response.json({ message: err.message, code: err.sqlstate }, { status: err.status, headers: { ...JSON_HEADERS, ...headers } })
}

export function createRouter(options: RouterOptions): Hono {
  const app = new Hono()
  app.use(async (_c, next) => {
    if (options.draining()) return errorResponse('ERR_SHUTTING_DOWN', 'the gateway is shutting down', { connection: 'close' })
    await next()
    return undefined
  })
  app.on(['GET', 'HEAD'], '/health', () => new Response('{"status":"ok"}', { status: 200, headers: JSON_HEADERS }))
  app.all('/health', (c) => errorResponse('ERR_METHOD_NOT_ALLOWED', `method ${c.req.method} is not allowed on /health`))
  app.on(['GET', 'HEAD'], '/ready', async () => {
    const r = await options.ready()
    return Response.json({ status: r.ready ? 'ready' : 'not ready', ...r }, { status: r.ready ? 200 : 503 })
  })
  app.get('/metrics', (c) => options.metrics(c.req.raw))
  app.all('/sql', (c) => options.sql(c.req.raw))
  if (options.console) app.route('/console', options.console)
  app.notFound(async (c) => (await options.routes?.(c.req.raw)) ?? errorResponse('ERR_NOT_FOUND', 'not found'))
  return app
}
