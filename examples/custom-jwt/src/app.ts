/**
 * The guide's app: a token route, a JWKS route, and API routes that query as the caller.
 * A Hono app, so the same code runs on Node (src/server.ts), Cloudflare Workers, Deno or Bun.
 *
 *   GET  /token?user=alice|bob       a JWT for a demo user (the guide's claims: sub, tenant_id)
 *   GET  /.well-known/jwks.json      the public key, for `pg-authorize providers add --jwks-url`
 *   GET  /api/tenants                the caller's tenant          (Authorization: Bearer JWT)
 *   GET  /api/users                  the caller's user row
 *   GET  /api/todos, POST /api/todos the caller's todos ({ "task": "..." })
 *
 * @module
 */
import { Hono, type Context } from 'hono'
import { importJWK, SignJWT, type JWK } from 'jose'
import { NeonDbError } from '@neondatabase/serverless'
import { addTodo, createDb, listTenants, listTodos, listUsers } from './queries.js'
import { DEMO, type DemoUserName } from './users.js'

export interface AppConfig {
  /** `postgresql://authenticated@HOST/DB`: the role the gateway logs in as. */
  databaseAuthenticatedUrl: string
  privateJwk: JWK
  publicJwk: JWK
}

export function createApp(config: AppConfig): Hono {
  const app = new Hono()
  const db = createDb(config.databaseAuthenticatedUrl)
  const alg = config.privateJwk.alg ?? 'RS256'
  const signingKey = importJWK(config.privateJwk, alg)

  app.get('/token', async (c) => {
    const name = (c.req.query('user') ?? 'alice') as DemoUserName
    const user = DEMO[name]
    if (!user) return c.json({ error: `unknown user; try ${Object.keys(DEMO).join(' or ')}` }, 400)
    const jwt = await new SignJWT({ tenant_id: user.tenantId })
      .setProtectedHeader({ alg, kid: config.privateJwk.kid! })
      .setSubject(user.sub)
      .setExpirationTime('1h')
      .setIssuedAt()
      .sign(await signingKey)
    return c.text(jwt)
  })

  app.get('/.well-known/jwks.json', (c) => c.json({ keys: [config.publicJwk] }))

  /** The caller's JWT, passed through to the database untouched: the gateway verifies it. */
  const bearer = (c: Context) => c.req.header('authorization')?.replace(/^Bearer\s+/i, '') ?? ''

  app.get('/api/tenants', async (c) => c.json(await listTenants(config.databaseAuthenticatedUrl, bearer(c))))
  app.get('/api/users', async (c) => c.json(await listUsers(db, bearer(c))))
  app.get('/api/todos', async (c) => c.json(await listTodos(db, bearer(c))))
  app.post('/api/todos', async (c) => {
    const body = await c.req.json<{ task?: unknown }>().catch(() => ({}) as { task?: unknown })
    if (typeof body.task !== 'string' || !body.task) return c.json({ error: 'task must be a non-empty string' }, 400)
    return c.json(await addTodo(db, bearer(c), body.task), 201)
  })

  app.onError((err, c) => {
    // drizzle wraps the driver's error; the SQLSTATE tells a refused identity (28000) from a denied write.
    const cause = err instanceof NeonDbError ? err : (err as { cause?: unknown }).cause
    if (cause instanceof NeonDbError) {
      const status = cause.code === '28000' ? 401 : cause.code === '42501' ? 403 : 400
      return c.json({ error: cause.message, code: cause.code }, status)
    }
    console.error(err)
    return c.json({ error: 'internal error' }, 500)
  })
  return app
}
