/**
 * A Hono middleware running each request's handler inside `createAuthorizer`'s transaction: the bearer
 * token is verified, the connection is logged in as the restricted role, the sealed claims are installed,
 * and `c.var.db` is that connection until the handler returns. A request without a token runs as
 * `anonymous` when `allowAnonymous` is set; otherwise it gets 401.
 *
 * A handler that throws (or answers 5xx) rolls the transaction back; anything else commits.
 *
 * @example
 * const authz = await createAuthorizer({ databaseUrl: process.env.GATEWAY_DATABASE_URL! })
 * const app = new Hono<AuthorizedEnv>()
 * app.use('/api/*', authorize(authz))
 * app.get('/api/todos', async (c) => c.json((await c.var.db.query('select * from todos')).rows))
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import { errorMapping, isPgAuthorizeError } from '../../src/errors.js'
import type { AuthorizedClient, Authorizer } from '../../src/auth/authorizer.js'

export interface AuthorizedEnv {
  Variables: { db: AuthorizedClient }
}

/** Thrown inside the transaction to roll it back once Hono has rendered the handler's failure. */
class RolledBack extends Error {}

export function authorize(authz: Authorizer, options: { allowAnonymous?: boolean } = {}): MiddlewareHandler<AuthorizedEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization')
    const token = header === undefined ? undefined : /^Bearer +(\S+)$/i.exec(header)?.[1]
    const run = async (db: AuthorizedClient) => {
      c.set('db', db)
      await next()
      // Hono has already turned a thrown error into a response (c.error is set): roll back all the same.
      if (c.error || c.res.status >= 500) throw new RolledBack()
    }
    try {
      if (token !== undefined) await authz.withToken(token, run)
      else if (options.allowAnonymous) await authz.anonymous(run)
      else return c.json({ code: 'ERR_TOKEN_MISSING', message: 'a bearer token is required' }, 401, { 'www-authenticate': 'Bearer' })
    } catch (err) {
      if (err instanceof RolledBack) return
      if (!isPgAuthorizeError(err)) throw err
      // Our own errors carry no secret; the status comes from the one error table.
      // (Neon's clients read SQLSTATEs from 400s only, so the table says 400 for auth failures; a JSON API says 401.)
      const mapped = errorMapping(err)
      const status = mapped.sqlstate.startsWith('28') ? 401 : mapped.status
      return c.json({ code: err.code, message: err.message }, status as 400, status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {})
    }
    return
  }
}
