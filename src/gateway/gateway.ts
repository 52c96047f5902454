/**
 * The gateway process: SQL over HTTP (`POST /sql`, Neon-compatible), the Postgres wire protocol over TCP
 * (and TLS), and the same wire protocol over WebSocket (`/v1`, `/v2`) on the HTTP port. All three share
 * one {@link Databases}: one verifier per served database, providers shared through the database.
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
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Databases, type DatabasesOptions } from './databases.js'
import { GatewayPools } from './pool.js'
import { createSqlHttpHandler } from './http/handler.js'
import { createNodeListener, type FetchHandler } from './http/node.js'
import { createWireGateway, type WireGateway } from './wire/server.js'
import { createConsoleHandler, newAdminToken } from '../console/index.js'

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
  /** Request and response size caps for `/sql`, bytes. Default 10 MiB each. */
  maxRequestBytes?: number
  maxResponseBytes?: number
  /** Verifier and provider settings. */
  databases?: Omit<DatabasesOptions, 'ownerUrl' | 'allowAnonymous'>
  /** Extra routes on the HTTP port, tried before `/sql` (e.g. `/.well-known/jwks.json` in `dev`). */
  routes?: (req: Request) => Promise<Response | undefined> | Response | undefined
  /** The web console at `/console` (off by default); `adminToken` defaults to a random one, see `Gateway.console`. */
  console?: { adminToken?: string } | false
  /** Observability hook; events never carry tokens or secrets. */
  onEvent?: (e: { kind: string; [k: string]: unknown }) => void
}

export interface Gateway {
  /** `http://host:port` of the HTTP listener. */
  readonly url: string
  readonly port: number
  /** The wire listener's port, or undefined when it is off. */
  readonly pgPort: number | undefined
  readonly host: string
  readonly databases: Databases
  readonly pools: GatewayPools
  readonly wire: WireGateway
  /** The console's URL and admin token, when it is on (print the token once, at start). */
  readonly console: { url: string; adminToken: string } | undefined
  /** Re-reads providers and credentials (SIGHUP). */
  reload(): Promise<void>
  /** Stops accepting, ends wire sessions, closes the pools. */
  close(): Promise<void>
}

/** Starts the gateway's listeners. Verifies the default database is set up before listening. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1'
  const onEvent = options.onEvent
  const databases = new Databases({
    ...options.databases,
    ownerUrl: options.databaseUrl,
    allowAnonymous: options.allowAnonymous ?? false,
  })
  // Fail fast, before listening, when the default database is not set up.
  await databases.open()

  const pools = new GatewayPools({
    connectionConfig: (database, role) => databases.connectionConfig(database, role),
    max: options.poolSize ?? 10,
    acquireTimeoutMillis: options.poolTimeoutMs ?? 5000,
    repairRole: (database, role) => databases.repairRole(database, role),
    ...(onEvent ? { onEvent } : {}),
  })

  const sql = createSqlHttpHandler({
    pools,
    authenticate: (req) => databases.authenticate({ token: req.token, role: req.role, database: req.database, transport: 'http' }),
    ...(options.maxRequestBytes ? { maxRequestBytes: options.maxRequestBytes } : {}),
    ...(options.maxResponseBytes ? { maxResponseBytes: options.maxResponseBytes } : {}),
    ...(onEvent ? { onEvent } : {}),
  })
  // The console (when on) is mounted first; it answers only under /console.
  let listening: { url: string; port: number; pgPort: number | undefined } | undefined
  const consoleToken = options.console ? (options.console.adminToken ?? newAdminToken()) : undefined
  const consoleHandler = consoleToken === undefined ? undefined : createConsoleHandler({
    databases,
    ownerUrl: options.databaseUrl,
    adminToken: consoleToken,
    endpoints: () => ({ httpUrl: listening!.url, host, pgPort: listening!.pgPort }),
  })
  const handler: FetchHandler = async (req) =>
    (consoleHandler && (await consoleHandler(req))) || (options.routes && (await options.routes(req))) || sql(req)

  const wire = createWireGateway({
    authenticate: async (req) => {
      const identity = await databases.authenticate({
        token: req.password || undefined,
        role: req.user,
        database: req.database,
        transport: req.transport,
      })
      return {
        role: identity.role,
        database: identity.database,
        envelope: identity.envelope,
        expiresAt: identity.expiresAt,
        upstream: await databases.connectionConfig(identity.database, identity.role),
        repair: () => databases.repairRole(identity.database, identity.role),
      }
    },
    ...(options.tls ? { tls: options.tls } : {}),
    allowInsecurePassword: options.allowInsecurePassword ?? false,
    ...(onEvent ? { onEvent } : {}),
  })

  const server = http.createServer(createNodeListener(handler))
  wire.attachWebSocket(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 4444, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  let pgPort: number | undefined
  if (options.pgPort !== false) {
    try {
      pgPort = (await wire.listen(options.pgPort ?? 5433, options.pgHost ?? host)).port
    } catch (err) {
      server.close()
      throw err
    }
  }
  const urlHost = host.includes(':') ? `[${host}]` : host
  listening = { url: `http://${urlHost}:${port}`, port, pgPort }

  let closing: Promise<void> | undefined
  return {
    url: `http://${urlHost}:${port}`,
    port,
    pgPort,
    host,
    databases,
    pools,
    wire,
    console: consoleToken === undefined ? undefined : { url: `http://${urlHost}:${port}/console`, adminToken: consoleToken },
    reload: () => databases.reload(),
    close() {
      closing ??= (async () => {
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        await wire.close()
        await httpClosed
        await pools.close()
        consoleHandler?.close()
        await databases.close()
      })()
      return closing
    },
  }
}
