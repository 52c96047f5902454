/**
 * A real stack for the HTTP gateway tests: throwaway Postgres, `setup` (roles with stored passwords, the
 * sealed-claims mechanism), pools logging in as the restricted role, the handler on a loopback port, and the
 * real `@neondatabase/serverless` client pointed at it. Tokens are stand-ins: the `authenticate` hook here
 * maps `Bearer user:<sub>` to sealed claims `{ sub }` (JWT verification is tested elsewhere).
 */
import type { GatewayEvent } from '../../../src/observability/events.js'
import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless'
import pg from 'pg'
import { PgAuthorizeError } from '../../../src/errors.js'
import { gatewayUrl, openDatabaseContext, setup, type DatabaseContext } from '../../../src/database/index.js'
import { GatewayPools, type GatewayPoolsOptions } from '../../../src/gateway/http/pool.js'
import { createSqlHttpHandler, type SqlHttpHandlerOptions } from '../../../src/gateway/http/handler.js'
import { serveHttp, type HttpServerHandle } from '../../../src/gateway/http/node.js'
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js'

export interface Stack {
  db: TestDatabase
  ctx: DatabaseContext
  owner: pg.Client
  pools: GatewayPools
  server: HttpServerHandle
  handler: (req: Request) => Promise<Response>
  /** The endpoint, `http://127.0.0.1:PORT/sql`. */
  endpoint: string
  /** What applications put in DATABASE_AUTHENTICATED_URL. */
  authUrl: string
  events: GatewayEvent[]
  /** The real Neon client with a token for `sub`. */
  sql(sub?: string): NeonQueryFunction<false, false>
  /** A raw POST to /sql with the Neon client's headers (override with `headers`). */
  post(body: string | Uint8Array, headers?: Record<string, string>): Promise<Response>
  close(): Promise<void>
}

export interface StackOptions {
  pool?: Partial<GatewayPoolsOptions>
  handler?: Partial<SqlHttpHandlerOptions>
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const db = await createTestDatabase()
  try {
    await setup(db.url)
    // What the gateway loads, loaded as the least-privilege gateway role (issue 19), as `serve` does.
    const ctx = await openDatabaseContext(await gatewayUrl(db.url))
    const owner = new pg.Client(db.url)
    await owner.connect()
    const events: Stack['events'] = []
    const pools = new GatewayPools({
      connectionConfig: async (_database, role) => ctx.roleConnectionConfig(role),
      ...options.pool,
    })
    const handler = createSqlHttpHandler({
      pools,
      async authenticate(req) {
        if (req.token === undefined) {
          throw new PgAuthorizeError(
            'ERR_TOKEN_MISSING',
            'missing authentication credentials: required authorization bearer token in JWT format',
          )
        }
        const m = /^user:(.+)$/.exec(req.token)
        if (!m) throw new PgAuthorizeError('ERR_JWT_SIGNATURE_INVALID', 'the token signature is invalid')
        if (req.role !== 'authenticated') throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${req.role}' is not allowed`)
        // provider + subject: the identity the pools' fair share counts (user:alice and user:bob are two).
        return { role: req.role, database: ctx.database, provider: 'test', subject: m[1], envelope: ctx.seal({ sub: m[1] }, 'authenticated', 'test') }
      },
      onEvent: (e) => events.push(e),
      ...options.handler,
    })
    const server = await serveHttp(handler, { port: 0 })
    const endpoint = `${server.url}/sql`
    neonConfig.fetchEndpoint = endpoint
    const authUrl = `postgresql://authenticated@db.localtest.me:5432/${ctx.database}?sslmode=require`
    const clientHeaders = {
      'Neon-Connection-String': authUrl,
      'Neon-Raw-Text-Output': 'true',
      'Neon-Array-Mode': 'true',
      Authorization: 'Bearer user:alice',
    }
    return {
      db,
      ctx,
      owner,
      pools,
      server,
      handler,
      endpoint,
      authUrl,
      events,
      sql: (sub = 'alice') => neon(authUrl, { authToken: `user:${sub}` }),
      post: (body, headers = {}) =>
        fetch(endpoint, { method: 'POST', body: body as BodyInit, headers: { ...clientHeaders, ...headers } }),
      async close() {
        await server.close().catch(() => {})
        await pools.close().catch(() => {})
        await owner.end().catch(() => {})
        await db.close()
      },
    }
  } catch (err) {
    await db.close()
    throw err
  }
}

