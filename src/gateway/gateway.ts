/**
 * The gateway process, wiring only: SQL over HTTP (`POST /sql`, Neon-compatible), the Postgres wire
 * protocol over TCP (and TLS), and the same wire protocol over WebSocket (`/v1`, `/v2`) on the HTTP port,
 * all routed by one Hono app (router.ts). All three transports share one {@link Authenticator}: one
 * verifier per served database, providers shared through the database.
 *
 * Stateless: run more instances behind any load balancer.
 *
 * @example
 * const gw = await startGateway({ databaseUrl: process.env.DATABASE_URL!, port: 4444, pgPort: 5433 })
 * // ... later
 * await gw.close()
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import { Authenticator, type AuthenticatorOptions } from '../auth/authenticator.js'
import { createConsoleApp, newAdminToken } from '../console/index.js'
import { AuditTrail } from '../observability/audit.js'
import type { GatewayEvent } from '../observability/events.js'
import { silentLogger, type Logger } from '../observability/logger.js'
import { GatewayMetrics } from '../observability/metrics.js'
import { Observer } from '../observability/observer.js'
import { mountRest, type RestMountOptions } from './rest/mount.js'
import { listen, urlHost } from '../lib/listen.js'
import { createSqlCore, webHandler } from './http/handler.js'
import { createNodeListener, createNodeSqlListener } from './http/node.js'
import { GatewayPools } from './http/pool.js'
import { parsePoolerUrl, throughPooler } from './http/pooler.js'
import { createRouter, errorResponse, type FetchHandler } from './router.js'
import { createWireGateway, type WireGateway, type WireLimits } from './wire/server.js'
import type { WorkerHooks } from './cluster.js'

export interface GatewayOptions {
  /** Owner connection string of the database to serve (others on the same server are served on demand). */
  databaseUrl: string
  /** HTTP port (SQL over HTTP, WebSocket, health). Default 4444; 0 picks a free one. */
  port?: number
  /** Address to bind. Default 127.0.0.1. */
  host?: string
  /** Wire-protocol port; `false` turns the TCP listener off. Default 5433. */
  pgPort?: number | false
  /** Address for the wire listener. Default: `host`. */
  pgHost?: string
  /** Run requests without a token as `anonymous`. Default false. */
  allowAnonymous?: boolean
  /** PEM certificate and key: the wire listener answers SSLRequest with TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** Accept a JWT as cleartext password without TLS from non-loopback clients. Default false. */
  allowInsecurePassword?: boolean
  /** Connections per (database, role) pool. Default 10. */
  poolSize?: number
  /** How long a request waits for a pooled connection, ms. Default 5000. */
  poolTimeoutMs?: number
  /**
   * `postgresql://HOST:PORT` of a transaction-mode pooler (PgBouncer) that HTTP and Data API queries go
   * through (http/pooler.ts); wire and WebSocket sessions stay direct. Default: none, straight to Postgres.
   */
  poolerUrl?: string
  /**
   * Each identity's share of an HTTP pool (provider + `sub`; anonymous requests share one): at most
   * `perIdentity` connections at once (default half the pool) and `queuePerIdentity` waiting (default the
   * pool size); past that 429. `false`: no caps, one FIFO queue per pool (the behaviour before issue 22).
   */
  fairShare?: { perIdentity?: number; queuePerIdentity?: number } | false
  /** Wire and WebSocket sessions: limits checked at login, before anything is opened upstream. */
  wireLimits?: WireLimits
  /** Request and response size caps for `/sql`, bytes. Default 10 MiB each. */
  maxRequestBytes?: number
  maxResponseBytes?: number
  /** Verifier and provider settings. */
  databases?: Omit<AuthenticatorOptions, 'ownerUrl' | 'allowAnonymous' | 'onEvent' | 'onKeyRotated'>
  /** Extra routes on the HTTP port, tried before `/sql` (e.g. `/.well-known/jwks.json` in `dev`). */
  routes?: (req: Request) => Promise<Response | undefined> | Response | undefined
  /** The web console at `/console` (off by default); `adminToken` defaults to a random one, see `Gateway.console`. */
  console?: { adminToken?: string } | false
  /**
   * The owner's connection string, for the console's provider and setup pages only, when `databaseUrl` is
   * the least-privilege gateway role's (issue 19). Default: `databaseUrl`.
   */
  ownerUrl?: string
  /**
   * Believe `X-Forwarded-Proto` and `X-Forwarded-For` from the one proxy in front (the console's `Secure`
   * cookie and login limit). Only when nothing but that proxy can reach the gateway. Default false.
   */
  trustProxy?: boolean
  /**
   * The Data API (PostgREST-compatible REST) at `/rest/v1/` and `/<database>/rest/v1/`. Off by default.
   * `schemas`: the exposed schemas, the first the default (default `['public']`); `maxRows`: the most rows a
   * read returns (default 1000, `null`: none).
   */
  rest?: Omit<RestMountOptions, 'allowAnonymous'> | false
  /** Observability hook; events never carry tokens or secrets. */
  onEvent?: (e: GatewayEvent) => void
  /** Structured logs (pino). Default: none. */
  logger?: Logger
  /**
   * Prometheus metrics: `port` serves `/metrics` on a separate listener (bound to `host`); `token` serves it
   * on the HTTP port behind `Authorization: Bearer <token>`. Neither: no `/metrics` endpoint.
   */
  metrics?: { port?: number; token?: string }
  /** The audit trail: to the log stream, and to `pgauthorize.audit_log` when `table`. */
  audit?: { table?: boolean; retentionDays?: number } | false
  /** How long requests in flight get to finish on `close()`, ms. Default 10000. */
  shutdownTimeoutMs?: number
  /** Set in each worker of `serve --workers N` (cluster.ts): wire cancels routed across workers, /metrics summed. */
  worker?: WorkerHooks
}

export interface Gateway {
  /** `http://host:port` of the HTTP listener. */
  readonly url: string
  readonly port: number
  /** The wire listener's port, or undefined when it is off. */
  readonly pgPort: number | undefined
  readonly host: string
  /** The authenticator every transport shares. */
  readonly databases: Authenticator
  readonly pools: GatewayPools
  readonly wire: WireGateway
  /** The console's URL and admin token, when it is on (print the token once, at start). */
  readonly console: { url: string; adminToken: string } | undefined
  /** Metrics of this gateway (also when no endpoint serves them). */
  readonly metrics: GatewayMetrics
  /** The `/metrics` listener's URL when `metrics.port` is set. */
  readonly metricsUrl: string | undefined
  /** The HTTP port's router as a Web-standard handler (what the listener serves, minus WebSocket upgrades). */
  fetch(req: Request): Promise<Response>
  /** Requests currently being served over HTTP. */
  inFlight(): number
  /** Re-reads providers and credentials (SIGHUP); `audit` switches the audit trail. */
  reload(settings?: { audit?: { table?: boolean; retentionDays?: number } | false; logLevel?: string }): Promise<void>
  /** Stops accepting, ends wire sessions, closes the pools. */
  close(): Promise<void>
}

/** Compares a presented credential with the expected one in time independent of where they differ. */
function sameSecret(presented: string, expected: string): boolean {
  const digest = (v: string) => createHash('sha256').update(v).digest()
  return timingSafeEqual(digest(presented), digest(expected))
}

/** Starts the gateway's listeners. Verifies the default database is set up before listening. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1'
  // Refused before anything is opened.
  const pooler = options.poolerUrl !== undefined ? parsePoolerUrl(options.poolerUrl) : undefined
  const logger = options.logger ?? silentLogger
  const makeAudit = (a: GatewayOptions['audit']) =>
    a ? new AuditTrail({ logger, tableUrl: a.table ? options.databaseUrl : undefined, retentionDays: a.retentionDays ?? 30 }) : undefined
  let audit = makeAudit(options.audit)
  // The gauges read pools and sessions at scrape time; both exist before the first scrape can happen.
  let pools: GatewayPools | undefined
  let wire: WireGateway | undefined
  const metrics: GatewayMetrics = new GatewayMetrics({
    pools: () => pools?.stats() ?? [],
    wireSessions: () => wire?.sessions() ?? 0,
    jwksAges: (): Array<{ database: string; provider: string; ageSeconds: number }> => observer.jwksAges(),
  })
  const observer: Observer = new Observer({ logger, metrics, audit })
  // With several workers, the text summed over all of them (cluster.ts); else this process's own.
  const metricsText = options.worker?.metricsText ?? (() => metrics.text())
  const onEvent = (e: GatewayEvent) => {
    observer.onEvent(e)
    options.onEvent?.(e)
  }
  const databases = new Authenticator({
    ...options.databases,
    ownerUrl: options.databaseUrl,
    allowAnonymous: options.allowAnonymous ?? false,
    onEvent,
    // A rotation reaches HTTP at once (every request seals with the current key); live wire sessions are
    // resealed at their next idle moment, before the old key retires.
    onKeyRotated: (database, generation) => {
      const sessions = wire?.reseal(database) ?? 0
      logger.info({ database, generation, sessions }, 'sealing key rotated')
      onEvent({ kind: 'key-rotated', database, generation, sessions })
    },
  })
  // Fail fast, before listening, when the default database is not set up.
  await databases.open()

  pools = new GatewayPools({
    connectionConfig: pooler
      ? async (database, role) => throughPooler(await databases.connectionConfig(database, role), pooler)
      : (database, role) => databases.connectionConfig(database, role),
    transactionPooler: pooler !== undefined,
    max: options.poolSize ?? 10,
    acquireTimeoutMillis: options.poolTimeoutMs ?? 5000,
    loginAsRole: (target, connect) => databases.loginAsRole(target, 'http', connect),
    ...(options.fairShare !== undefined ? { fairShare: options.fairShare } : {}),
    onEvent,
  })

  const sqlCore = createSqlCore({
    pools,
    // Before the body is read (up to maxRequestBytes): a request that cannot authenticate costs no more.
    precheckToken: (token) => databases.checkCredential(token),
    authenticate: (req) => databases.authenticate({ token: req.token, role: req.role, database: req.database, transport: 'http' }),
    ...(options.maxRequestBytes ? { maxRequestBytes: options.maxRequestBytes } : {}),
    ...(options.maxResponseBytes ? { maxResponseBytes: options.maxResponseBytes } : {}),
    onEvent,
  })
  const sql = webHandler(sqlCore)
  const rest = options.rest
    ? mountRest({ databases, pools, onEvent }, {
      ...(options.maxResponseBytes ? { maxResponseBytes: options.maxResponseBytes } : {}),
      ...options.rest,
      allowAnonymous: options.allowAnonymous ?? false,
    })
    : undefined
  // The console (when on) is mounted under /console.
  let listening: { url: string; port: number; pgPort: number | undefined } | undefined
  const consoleToken = options.console ? (options.console.adminToken ?? newAdminToken()) : undefined
  const consoleApp = consoleToken === undefined ? undefined : createConsoleApp({
    databases,
    ownerUrl: options.ownerUrl ?? options.databaseUrl,
    adminToken: consoleToken,
    trustProxy: options.trustProxy === true,
    endpoints: () => ({ httpUrl: listening!.url, host, pgPort: listening!.pgPort }),
  })
  let readiness: { at: number; result: ReturnType<Authenticator['readiness']> } | undefined
  let draining = false
  let inFlight = 0
  let drained: (() => void) | undefined
  const router = createRouter({
    sql,
    draining: () => draining,
    async ready() {
      // Cached for a second: a load balancer polling /ready must not open an owner connection per probe.
      if (!readiness || readiness.at < Date.now() - 1000) readiness = { at: Date.now(), result: databases.readiness() }
      return draining ? { ready: false, database: false, providers: false, shuttingDown: true } : await readiness.result
    },
    async metrics(req) {
      if (options.metrics?.token) {
        if (!sameSecret(req.headers.get('authorization') ?? '', `Bearer ${options.metrics.token}`)) {
          return Response.json({ message: 'a valid metrics token is required', code: '28000' }, { status: 401, headers: { 'www-authenticate': 'Bearer' } })
        }
        return new Response(await metricsText(), { status: 200, headers: { 'content-type': metrics.contentType } })
      }
      // A bare "not found" here sends operators looking for a bug; say how metrics are turned on.
      return errorResponse(
        'ERR_NOT_FOUND',
        options.metrics?.port !== undefined
          ? '/metrics is served on its own listener (--metrics-port), not on this port; add --metrics-token to serve it here too'
          : '/metrics is off: start serve with --metrics-token <token> (here, behind a bearer token) or --metrics-port <port> (a separate listener)',
      )
    },
    console: consoleApp,
    rest: rest?.handler,
    routes: options.routes,
  })
  const handler: FetchHandler = async (req) => {
    inFlight++
    try {
      return await router.fetch(req)
    } finally {
      if (--inFlight === 0) drained?.()
    }
  }

  wire = createWireGateway({
    authenticate: async (req) => {
      const identity = await databases.authenticate({
        token: req.password || undefined,
        role: req.user,
        database: req.database,
        transport: req.transport,
      })
      observer.auditSession({
        transport: req.transport, role: identity.role, database: identity.database,
        provider: identity.provider, subject: identity.subject,
      })
      return {
        identity,
        upstream: {
          config: await databases.connectionConfig(identity.database, identity.role),
          loginAsRole: (connect) => databases.loginAsRole(identity, req.transport, connect),
          reap: (pid, backendStart) => databases.reapBackend(identity.database, identity.role, pid, backendStart),
        },
      }
    },
    ...(options.tls ? { tls: options.tls } : {}),
    allowInsecurePassword: options.allowInsecurePassword ?? false,
    ...(options.wireLimits ? { limits: options.wireLimits } : {}),
    ...(options.worker ? { shard: options.worker } : {}),
    // After login a WebSocket message may be as large as a /sql body (before it, a few tens of kB).
    ...(options.maxRequestBytes ? { maxWebSocketMessageBytes: options.maxRequestBytes } : {}),
    onEvent,
  })

  // POST /sql, the hot path, goes straight to the handler's core on Node's own objects; every other route
  // (console, /ready, /metrics, /health, OPTIONS) through the router.
  const webListener = createNodeListener(handler)
  const sqlListener = createNodeSqlListener(sqlCore)
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || draining || !(req.url === '/sql' || req.url?.startsWith('/sql?'))) {
      void webListener(req, res)
      return
    }
    inFlight++
    sqlListener(req, res).then(
      () => {
        if (--inFlight === 0) drained?.()
      },
      () => {
        if (--inFlight === 0) drained?.()
        if (!res.headersSent) res.writeHead(500).end()
      },
    )
  })
  wire.attachWebSocket(server)
  const { port } = await listen(server, options.port ?? 4444, host)
  let pgPort: number | undefined
  if (options.pgPort !== false) {
    try {
      pgPort = (await wire.listen(options.pgPort ?? 5433, options.pgHost ?? host)).port
    } catch (err) {
      server.close()
      throw err
    }
  }
  const hostInUrl = urlHost(host)
  listening = { url: `http://${hostInUrl}:${port}`, port, pgPort }
  let metricsServer: http.Server | undefined
  let metricsUrl: string | undefined
  if (options.metrics?.port !== undefined) {
    const ms = http.createServer((req, res) => {
      if (req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404).end()
        return
      }
      metricsText().then(
        (text: string) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        () => res.writeHead(500).end(),
      )
    })
    const { port: metricsPort } = await listen(ms, options.metrics.port, host)
    metricsServer = ms
    metricsUrl = `http://${hostInUrl}:${metricsPort}/metrics`
  }
  logger.info({ http: listening.url, pgPort, metrics: metricsUrl }, 'gateway listening')

  let closing: Promise<void> | undefined
  return {
    url: `http://${hostInUrl}:${port}`,
    port,
    pgPort,
    host,
    databases,
    pools: pools!,
    wire: wire!,
    console: consoleToken === undefined ? undefined : { url: `http://${hostInUrl}:${port}/console`, adminToken: consoleToken },
    metrics,
    metricsUrl,
    fetch: async (req) => handler(req),
    inFlight: () => inFlight,
    async reload(settings) {
      if (settings?.logLevel) logger.level = settings.logLevel
      if (settings && 'audit' in settings) {
        await audit?.close()
        audit = makeAudit(settings.audit)
        observer.setAudit(audit)
      }
      await databases.reload()
      logger.info('configuration and providers reloaded')
    },
    close() {
      closing ??= (async () => {
        // Stop accepting; requests in flight get shutdownTimeoutMs to finish; then sessions and pools end.
        draining = true
        logger.info({ inFlight }, 'shutting down')
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        const deadline = Date.now() + (options.shutdownTimeoutMs ?? 10_000)
        if (inFlight > 0) {
          await new Promise<void>((resolve) => {
            drained = resolve
            setTimeout(resolve, deadline - Date.now()).unref()
          })
        }
        // A handler has returned, but its response may still be writing: close each connection once it
        // is idle, and cut whatever is left at the deadline.
        let closed = false
        void httpClosed.then(() => (closed = true))
        while (!closed && Date.now() < deadline) {
          server.closeIdleConnections()
          await new Promise((r) => setTimeout(r, 20))
        }
        server.closeAllConnections()
        await wire!.close()
        await httpClosed
        await rest?.close()
        await pools!.close()
        consoleApp?.close()
        await databases.close()
        await audit?.close()
        await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()))
        logger.info('stopped')
        logger.flush?.()
      })()
      return closing
    },
  }
}
