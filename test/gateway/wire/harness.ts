/**
 * Shared setup for the wire-gateway tests: a real Postgres, a gateway whose `authenticate` hook accepts a
 * fixed test password (standing in for a verified JWT) and logs in upstream with the owner URL, and a
 * way to count the gateway's upstream connections in pg_stat_activity.
 */
import type { GatewayEvent } from '../../../src/observability/events.js'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { PgAuthorizeError } from '../../../src/errors.js'
import type { Identity } from '../../../src/auth/identity.js'
import {
  createWireGateway,
  type WireAuthRequest,
  type WireGateway,
  type WireGatewayOptions,
  type Upstream,
} from '../../../src/gateway/wire/index.js'
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js'

export const GOOD_PASSWORD = 'test.jwt.accepted'
/** Marks the gateway's own upstream logins in pg_stat_activity. */
export const UPSTREAM_APP = 'pga-wire-upstream'

export interface Harness {
  db: TestDatabase
  gateway: WireGateway
  port: number
  /** Port of an HTTP server with the WebSocket endpoint attached. */
  httpPort: number
  requests: WireAuthRequest[]
  events: GatewayEvent[]
  /** Per-test override of the identity the hook returns. */
  identity: Partial<Identity>
  /** Per-test override of how the session reaches Postgres. */
  upstream: Partial<Upstream>
  url(user?: string, password?: string): string
  upstreamConnections(): Promise<number>
  /** Polls until `fn` is true (bounded); throws on timeout. */
  until(fn: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

export async function startHarness(extra: Partial<WireGatewayOptions> = {}): Promise<Harness> {
  const db = await createTestDatabase()
  const requests: WireAuthRequest[] = []
  const events: Harness['events'] = []
  const h = { identity: {} as Partial<Identity>, upstream: {} as Partial<Upstream> }
  const gateway = createWireGateway({
    async authenticate(req) {
      requests.push(req)
      if (req.password !== GOOD_PASSWORD) {
        throw new PgAuthorizeError('ERR_JWT_SIGNATURE_INVALID', 'JWT verification failed: signature invalid')
      }
      if (req.user === 'not_allowed') {
        throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `the provider does not allow role "${req.user}"`)
      }
      return {
        identity: { role: req.user, database: req.database, envelope: null, expiresAt: undefined, ...h.identity },
        upstream: { config: { connectionString: db.url, application_name: UPSTREAM_APP }, ...h.upstream },
      }
    },
    onEvent: (e) => events.push(e),
    ...extra,
  })
  const { port } = await gateway.listen(0, '127.0.0.1')
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  gateway.attachWebSocket(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const httpPort = (server.address() as AddressInfo).port
  const admin = new pg.Client(db.adminUrl)
  await admin.connect()
  const until: Harness['until'] = async (fn, what, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    while (!(await fn())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return {
    db,
    gateway,
    port,
    httpPort,
    requests,
    events,
    get identity() {
      return h.identity
    },
    set identity(v) {
      h.identity = v
    },
    get upstream() {
      return h.upstream
    },
    set upstream(v) {
      h.upstream = v
    },
    url: (user = 'postgres', password = GOOD_PASSWORD) =>
      `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db.database}`,
    async upstreamConnections() {
      // The gateway's logins for clients, whatever application_name the client later set: every backend of a
      // restricted role on the test database (the owner pool's own connections are not client sessions).
      const r = await admin.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = $1 and backend_type = 'client backend'
            and usename in ('authenticated', 'anonymous')`,
        [db.database],
      )
      return r.rows[0]!.n
    },
    until,
    async close() {
      await gateway.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await admin.end()
      await db.close()
    },
  }
}
