/**
 * The web console as one Hono app, mounted by the gateway's router at `/console`:
 * `app.route('/console', createConsoleApp(options))`. Its links, its cookie's `Path` and its redirects
 * name `/console`, so that is where it must be mounted.
 *
 * - Without a session every console route, page, asset and API answers 401 (pages show the login form).
 * - `POST /console/login` exchanges the admin token for a session cookie (`HttpOnly; SameSite=Strict;
 *   Path=/console`, and `Secure` over HTTPS); `POST /console/logout` ends it. Ten wrong tokens from one
 *   address in a minute, and that address gets 429 `ERR_TOO_MANY_ATTEMPTS` with `Retry-After` until the
 *   minute ends (./login-limit.ts).
 * - Behind a TLS-terminating proxy, `trustProxy` makes the console believe its `X-Forwarded-Proto`
 *   (the cookie's `Secure`, the same-origin check) and the last `X-Forwarded-For` hop (the address the
 *   limit counts). Without it both headers are ignored: any client could send them.
 * - Every state-changing request must be same-origin (`Sec-Fetch-Site` / `Origin`) and carry the session's
 *   CSRF token; API bodies must be JSON, which a cross-site HTML form cannot send.
 * - Every response carries a strict CSP (no inline script), `X-Frame-Options: DENY`, `Referrer-Policy:
 *   no-referrer` and `Cache-Control: no-store`.
 * - No API returns a secret: role passwords and the sealing key are never read into a response, and the
 *   owner connection string is masked.
 *
 * The order of the routes below is the order of the checks: the security headers wrap everything, the
 * login form needs no session, everything after it does (and a CSRF token when it changes state), and
 * the last route answers 404 or 405 for whatever is left under `/console`.
 *
 * @example
 * const consoleApp = createConsoleApp({ databases, ownerUrl, adminToken, endpoints: () => ({ httpUrl, host, pgPort }) })
 * app.route('/console', consoleApp)
 * // at shutdown
 * consoleApp.close()
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Hono, type Context } from 'hono'
import type { ConsoleBackend } from './backend.js'
import {
  checkCsrf,
  crossSiteReason,
  errorJson,
  fail,
  json,
  loginAddress,
  publicOrigin,
  readForm,
  readJson,
  securityHeaders,
  str,
  styleHash,
} from './http.js'
import { inspectToken, ConsoleVerifier } from './inspect.js'
import { BASE, LOGIN_CSS, PAGES, loginPage, page } from './pages.js'
import { parseIdentity, runAs, type RunResult } from './playground.js'
import { policiesView } from './policies.js'
import { addProviderView, listProviderViews, refreshProviders, removeProviderByName } from './providers.js'
import { rolesView, runSetup, type ConsoleEndpoints } from './roles.js'
import { AdminSessions, SESSION_COOKIE, readCookie, type AdminSession } from './session.js'
import { LoginLimiter, type LoginLimitOptions } from './login-limit.js'
import { PgAuthorizeError } from '../errors.js'

export interface ConsoleOptions {
  /** The gateway's databases (its `Databases` fits as it is); the console manages the default one. */
  databases: ConsoleBackend
  /** Owner connection string of the served database (never shown unmasked). */
  ownerUrl: string
  /** The admin credential, at least 16 characters. */
  adminToken: string
  /** Where clients reach the gateway, for the connection strings (asked per request: ports are known late). */
  endpoints: () => ConsoleEndpoints
  /** Session lifetime, ms. Default 8 hours. */
  sessionTtlMs?: number
  /** Playground statement timeout, ms. Default 10000. */
  statementTimeoutMs?: number
  /**
   * Believe `X-Forwarded-Proto` and `X-Forwarded-For` from the one proxy in front of the gateway. Only
   * for a gateway that nothing but that proxy can reach. Default false.
   */
  trustProxy?: boolean
  /** The login attempt limit (tests shorten its window). */
  loginLimit?: LoginLimitOptions
}

/** What the routes after the session check may read. */
export interface ConsoleEnv {
  Variables: { session: AdminSession }
}

/** The console's Hono app, to mount at `/console`, with what it must stop at shutdown. */
export type ConsoleApp = Hono<ConsoleEnv> & {
  /** Stops the console's verifier timers. */
  close(): void
}

// The pages' JS and CSS are plain files under src/console/static/. Run from source they sit beside this
// module; run from dist/ (tsc copies no asset) they are read from the source tree next to it.
const HERE = path.dirname(fileURLToPath(import.meta.url))
const STATIC_DIRS = [path.join(HERE, 'static'), path.resolve(HERE, '../../src/console/static')]
/** Every asset served, by name: nothing else under static/ is reachable. */
const STATIC: Readonly<Record<string, string>> = Object.fromEntries([
  ['console.css', 'text/css; charset=utf-8'],
  // The shared helpers every page's module imports.
  ['console.js', 'text/javascript; charset=utf-8'],
  ...PAGES.map((p) => [`${p.path}.js`, 'text/javascript; charset=utf-8']),
])
const LOGIN_STYLE = styleHash(LOGIN_CSS)
const SAFE = new Set(['GET', 'HEAD'])
/** Every API route; any method it does not take is answered 405. */
const API_PATHS = ['/api/providers', '/api/providers/refresh', '/api/providers/:name', '/api/providers/:name/refresh', '/api/roles', '/api/setup', '/api/policies', '/api/inspect', '/api/playground']

/** A gateway bound to every address is reached by the name the browser used; show that one. */
function reachable(ep: ConsoleEndpoints, req: Request): ConsoleEndpoints {
  if (ep.host !== '0.0.0.0' && ep.host !== '::') return ep
  const u = new URL(req.url)
  const http = new URL(ep.httpUrl)
  http.hostname = u.hostname
  return { ...ep, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), httpUrl: http.origin }
}

/** The path under `/console` (`/` for the console itself). */
const subPath = (c: Context) => c.req.path.slice(BASE.length) || '/'

const toProviders = () => new Response(null, { status: 303, headers: { location: `${BASE}/providers` } })

export function createConsoleApp(options: ConsoleOptions): ConsoleApp {
  const { ownerUrl, databases } = options
  const sessions = new AdminSessions(options.adminToken, options.sessionTtlMs ? { ttlMs: options.sessionTtlMs } : {})
  const verifier = new ConsoleVerifier(databases)
  const assets = new Map<string, Promise<string>>()
  const asset = (name: string) => {
    let a = assets.get(name)
    if (!a) {
      a = readFile(path.join(STATIC_DIRS[0]!, name), 'utf8').catch(() => readFile(path.join(STATIC_DIRS[1]!, name), 'utf8'))
      a.catch(() => assets.delete(name))
      assets.set(name, a)
    }
    return a
  }

  const trustProxy = options.trustProxy === true
  const limiter = new LoginLimiter(options.loginLimit)
  /** Where the browser sent the request: the proxy's word for the scheme, when it is trusted. */
  const origin = (req: Request) => publicOrigin(req, trustProxy)
  const cookieFlags = (req: Request) => `HttpOnly; SameSite=Strict; Path=${BASE}${origin(req).startsWith('https:') ? '; Secure' : ''}`
  const notAllowed = (c: Context): never => {
    throw fail('ERR_METHOD_NOT_ALLOWED', `${c.req.method} is not allowed here`)
  }

  const app = new Hono<ConsoleEnv>()
  // Errors become the JSON error body: a stable code, nothing the client sent, and a 500 for anything unexpected.
  app.onError((err) => errorJson(err))

  // Every response, the 401s, 404s and errors too. The login page is the only one with an inline <style>,
  // allowed by its hash.
  app.use(async (c, next) => {
    await next()
    for (const [k, v] of Object.entries(securityHeaders(LOGIN_STYLE))) c.res.headers.set(k, v)
  })

  app.post('/login', async (c) => {
    const req = c.req.raw
    if (crossSiteReason(req, origin(req))) return c.html(loginPage('Cross-site login refused.'), 403)
    const address = loginAddress(req, trustProxy)
    const wait = limiter.blockedFor(address)
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000)
      const err = new PgAuthorizeError('ERR_TOO_MANY_ATTEMPTS', `Too many wrong admin tokens from your address; try again in ${seconds} s.`)
      return c.html(loginPage(err.message, err.code), err.status as 429, { 'retry-after': String(seconds) })
    }
    const form = await readForm(req)
    if (!sessions.checkToken(form.get('token'))) {
      limiter.failed(address)
      return c.html(loginPage('That is not the admin token.'), 401)
    }
    limiter.succeeded(address)
    const s = sessions.create()
    return new Response(null, {
      status: 303,
      headers: {
        location: `${BASE}/providers`,
        'set-cookie': `${SESSION_COOKIE}=${s.id}; ${cookieFlags(req)}; Max-Age=${Math.floor(sessions.ttlMs / 1000)}`,
      },
    })
  })

  // From here on a session is required, and a state-changing request must be same-origin and carry the
  // session's CSRF token (the log-out form sends its token as a field, checked by its route).
  app.use(async (c, next): Promise<Response | void> => {
    const session = sessions.get(readCookie(c.req.header('cookie') ?? null, SESSION_COOKIE))
    if (!session) {
      return subPath(c).startsWith('/api/')
        ? json(401, { error: { code: 'ERR_UNAUTHORIZED', message: 'log in to the console first' } })
        : c.html(loginPage(), 401)
    }
    c.set('session', session)
    if (!SAFE.has(c.req.method) && !(c.req.method === 'POST' && subPath(c) === '/logout')) {
      checkCsrf(c.req.raw, session, undefined, origin(c.req.raw))
    }
    return next()
  })

  app.post('/logout', async (c) => {
    const req = c.req.raw
    const session = c.get('session')
    const form = await readForm(req)
    checkCsrf(req, session, form.get('csrf') ?? undefined, origin(req))
    sessions.end(session.id)
    return new Response(null, {
      status: 303,
      headers: { location: `${BASE}/`, 'set-cookie': `${SESSION_COOKIE}=; ${cookieFlags(req)}; Max-Age=0` },
    })
  })

  // Pages and their assets.
  app.get('/', toProviders)
  app.get('/login', toProviders)
  app.get('/static/:name', async (c) => {
    const name = c.req.param('name')
    if (!Object.hasOwn(STATIC, name)) throw fail('ERR_NOT_FOUND', 'no such console page')
    return new Response(await asset(name), { status: 200, headers: { 'content-type': STATIC[name]! } })
  })
  for (const p of PAGES) {
    app.get(`/${p.path}`, async (c) => {
      const { ctx } = await databases.open()
      return c.html(page(p.path, { csrf: c.get('session').csrf, roles: ctx.roles, database: ctx.database }))
    })
  }

  // The JSON API. `DELETE /api/providers/refresh` removes a provider named "refresh": the named routes
  // come before the catch-alls that answer 405. Hono answers HEAD with the GET route; the API does not
  // take HEAD (it would run the query for nothing), so it answers 405 first.
  for (const known of API_PATHS) app.use(known, async (c, next) => (c.req.method === 'HEAD' ? notAllowed(c) : next()))
  app.get('/api/providers', async () => json(200, { providers: await listProviderViews(ownerUrl) }))
  app.post('/api/providers', async (c) => json(201, { provider: await addProviderView(ownerUrl, databases, await readJson(c.req.raw)) }))
  app.post('/api/providers/refresh', async () => json(200, { providers: await refreshProviders(ownerUrl, databases) }))
  app.delete('/api/providers/:name', async (c) => {
    const name = c.req.param('name')
    await removeProviderByName(ownerUrl, databases, name)
    return json(200, { removed: name })
  })
  app.post('/api/providers/:name/refresh', async (c) => {
    const name = c.req.param('name')
    const providers = await refreshProviders(ownerUrl, databases, name)
    if (providers.length === 0) throw fail('ERR_PROVIDER_NOT_FOUND', `no provider named '${name}'`)
    return json(200, { provider: providers[0] })
  })
  app.get('/api/roles', async (c) => json(200, await rolesView(ownerUrl, reachable(options.endpoints(), c.req.raw))))
  app.post('/api/setup', async () => json(200, { setup: await runSetup(ownerUrl, databases) }))
  app.get('/api/policies', async () => json(200, await policiesView(ownerUrl)))
  app.post('/api/inspect', async (c) => {
    const body = await readJson(c.req.raw, 64 * 1024)
    return json(200, await inspectToken(await verifier.get(), body.token))
  })
  app.post('/api/playground', async (c) => {
    const body = await readJson(c.req.raw)
    const sql = str(body, 'sql', 100_000)
    if (!sql) throw fail('ERR_INVALID_ARGUMENT', 'write a SQL statement first')
    const raw = Array.isArray(body.identities) ? body.identities : []
    if (raw.length < 1 || raw.length > 2) throw fail('ERR_INVALID_ARGUMENT', 'give one or two identities')
    const identities = raw.map(parseIdentity)
    const { ctx } = await databases.open()
    const v = await verifier.get()
    const results: RunResult[] = []
    // One after the other: each is its own rolled-back transaction on its own connection.
    for (const identity of identities) {
      results.push(await runAs(ctx, v, sql, identity, options.statementTimeoutMs ? { statementTimeoutMs: options.statementTimeoutMs } : {}))
    }
    return json(200, { results })
  })
  for (const known of API_PATHS) app.all(known, notAllowed)

  // Whatever is left under /console.
  app.all('*', (c) => {
    const sub = subPath(c)
    if (sub.startsWith('/api/')) throw fail('ERR_NOT_FOUND', 'no such console API')
    if (!SAFE.has(c.req.method)) return notAllowed(c)
    // `/console/`: Hono's default strict routing tells it from `/console`, the route '/' above.
    if (sub === '/') return toProviders()
    throw fail('ERR_NOT_FOUND', 'no such console page')
  })

  return Object.assign(app, { close: () => verifier.close() })
}
