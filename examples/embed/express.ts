/**
 * An Express (5) middleware for `createAuthorizer`. Express calls `next()` and returns at once, so a
 * middleware cannot hold a transaction around the handler and still commit before the response is sent.
 * Instead it gives each request `req.authorized(fn)`: the bearer token's identity, one transaction per
 * call, committed before the handler answers (so a failed COMMIT can still become an error response).
 * Requests without a token run as `anonymous` when `allowAnonymous` is set, else get 401.
 *
 * @example
 * const authz = await createAuthorizer({ databaseUrl: process.env.GATEWAY_DATABASE_URL! })
 * const app = express()
 * app.use(authorize(authz))
 * app.get('/todos', async (req, res) => res.json(await req.authorized(async (db) => (await db.query('select * from todos')).rows)))
 * app.use(authorizeErrors())
 *
 * @module
 */
import type { ErrorRequestHandler, Request, RequestHandler } from 'express'
import { PgAuthorizeError, errorMapping, isPgAuthorizeError } from '../../src/errors.js'
import type { AuthorizedClient, Authorizer, TransactionOptions } from '../../src/auth/authorizer.js'

export type Authorized = <T>(fn: (db: AuthorizedClient) => Promise<T>, options?: TransactionOptions) => Promise<T>

/** `req.authorized`, set by {@link authorize}. */
export function authorized(req: Request): Authorized {
  const fn = (req as Request & { authorized?: Authorized }).authorized
  if (!fn) throw new Error('authorize(authz) is not installed before this route')
  return fn
}

export function authorize(authz: Authorizer, options: { allowAnonymous?: boolean } = {}): RequestHandler {
  return (req, _res, next) => {
    const header = req.get('authorization')
    const token = header === undefined ? undefined : /^Bearer +(\S+)$/i.exec(header)?.[1]
    const run: Authorized = token !== undefined
      ? (fn, opts) => authz.withToken(token, fn, opts)
      : options.allowAnonymous
        ? (fn, opts) => authz.anonymous(fn, opts)
        : () => Promise.reject(new PgAuthorizeError('ERR_TOKEN_MISSING', 'a bearer token is required'))
    ;(req as Request & { authorized?: Authorized }).authorized = run
    next()
  }
}

/** Answers pg-authorize's own errors (401 for a refused credential); passes everything else on. */
export function authorizeErrors(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isPgAuthorizeError(err)) return next(err)
    const mapped = errorMapping(err)
    const status = mapped.sqlstate.startsWith('28') ? 401 : mapped.status
    if (status === 401) res.set('www-authenticate', 'Bearer error="invalid_token"')
    res.status(status).json({ code: err.code, message: err.message })
  }
}
