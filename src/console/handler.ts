/**
 * The web console at `/console`, as a Web-standard handler the gateway mounts on its HTTP port.
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
 * @example
 * const handler = createConsoleHandler({ databases, ownerUrl, adminToken, endpoints: () => ({ httpUrl, host, pgPort }) })
 * const res = await handler(request) // undefined when the path is not under /console
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Authenticator } from '../auth/authenticator.js'
import {
  checkCsrf,
  crossSiteReason,
  errorJson,
  fail,
  html,
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
import { BASE, LOGIN_CSS, PAGES, loginPage, page, type PageName } from './pages.js'
import { parseIdentity, runAs, type RunResult } from './playground.js'
import { policiesView } from './policies.js'
import { addProviderView, listProviderViews, refreshProviders, removeProviderByName } from './providers.js'
import { rolesView, runSetup, type ConsoleEndpoints } from './roles.js'
import { AdminSessions, SESSION_COOKIE, readCookie, type AdminSession } from './session.js'
import { LoginLimiter, type LoginLimitOptions } from './login-limit.js'
import { PgAuthorizeError } from '../errors.js'

export interface ConsoleOptions {
  /** The gateway's databases; the console manages the default one. */
  databases: Authenticator
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

export interface ConsoleHandler {
  (req: Request): Promise<Response | undefined>
  /** Stops the console's verifier timers. */
  close(): void
}

// The page's JS and CSS are plain files under src/console/static/. Run from source they sit beside this
// module; run from dist/ (tsc copies no asset) they are read from the source tree next to it.
const HERE = path.dirname(fileURLToPath(import.meta.url))
const STATIC_DIRS = [path.join(HERE, 'static'), path.resolve(HERE, '../../src/console/static')]
const STATIC: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
}
const LOGIN_STYLE = styleHash(LOGIN_CSS)
const KNOWN_APIS = ['/api/providers', '/api/providers/refresh', '/api/roles', '/api/setup', '/api/policies', '/api/inspect', '/api/playground']

/** A gateway bound to every address is reached by the name the browser used; show that one. */
function reachable(ep: ConsoleEndpoints, req: Request): ConsoleEndpoints {
  if (ep.host !== '0.0.0.0' && ep.host !== '::') return ep
  const u = new URL(req.url)
  const http = new URL(ep.httpUrl)
  http.hostname = u.hostname
  return { ...ep, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), httpUrl: http.origin }
}

export function createConsoleHandler(options: ConsoleOptions): ConsoleHandler {
  const sessions = new AdminSessions(options.adminToken, options.sessionTtlMs ? { ttlMs: options.sessionTtlMs } : {})
  const verifier = new ConsoleVerifier(options.databases)
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

  const unauthorized = (sub: string): Response =>
    sub.startsWith('/api/')
      ? json(401, { error: { code: 'ERR_UNAUTHORIZED', message: 'log in to the console first' } })
      : html(401, loginPage())

  const trustProxy = options.trustProxy === true
  const limiter = new LoginLimiter(options.loginLimit)
  /** Where the browser sent the request: the proxy's word for the scheme, when it is trusted. */
  const origin = (req: Request) => publicOrigin(req, trustProxy)
  const cookieFlags = (req: Request) => `HttpOnly; SameSite=Strict; Path=${BASE}${origin(req).startsWith('https:') ? '; Secure' : ''}`

  async function login(req: Request): Promise<Response> {
    if (crossSiteReason(req, origin(req))) return html(403, loginPage('Cross-site login refused.'))
    const address = loginAddress(req, trustProxy)
    const wait = limiter.blockedFor(address)
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000)
      const err = new PgAuthorizeError('ERR_TOO_MANY_ATTEMPTS', `Too many wrong admin tokens from your address; try again in ${seconds} s.`)
      return html(err.status, loginPage(err.message, err.code), { 'retry-after': String(seconds) })
    }
    const form = await readForm(req)
    if (!sessions.checkToken(form.get('token'))) {
      limiter.failed(address)
      return html(401, loginPage('That is not the admin token.'))
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
  }

  async function pageContext(session: AdminSession) {
    const { ctx } = await options.databases.open()
    return { csrf: session.csrf, roles: ctx.roles, database: ctx.database }
  }

  async function api(req: Request, sub: string): Promise<Response> {
    const method = req.method
    const route = `${method} ${sub}`
    const { ownerUrl, databases } = options
    if (route === 'GET /api/providers') return json(200, { providers: await listProviderViews(ownerUrl) })
    if (route === 'POST /api/providers') return json(201, { provider: await addProviderView(ownerUrl, databases, await readJson(req)) })
    if (route === 'POST /api/providers/refresh') return json(200, { providers: await refreshProviders(ownerUrl, databases) })
    const m = /^\/api\/providers\/([^/]+)(\/refresh)?$/.exec(sub)
    if (m) {
      const name = decodeURIComponent(m[1]!)
      if (method === 'DELETE' && !m[2]) {
        await removeProviderByName(ownerUrl, databases, name)
        return json(200, { removed: name })
      }
      if (method === 'POST' && m[2]) {
        const providers = await refreshProviders(ownerUrl, databases, name)
        if (providers.length === 0) throw fail('ERR_PROVIDER_NOT_FOUND', `no provider named '${name}'`)
        return json(200, { provider: providers[0] })
      }
    }
    if (route === 'GET /api/roles') return json(200, await rolesView(ownerUrl, reachable(options.endpoints(), req)))
    if (route === 'POST /api/setup') return json(200, { setup: await runSetup(ownerUrl, databases) })
    if (route === 'GET /api/policies') return json(200, await policiesView(ownerUrl))
    if (route === 'POST /api/inspect') {
      const body = await readJson(req, 64 * 1024)
      return json(200, await inspectToken(await verifier.get(), body.token))
    }
    if (route === 'POST /api/playground') {
      const body = await readJson(req)
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
    }
    if (KNOWN_APIS.includes(sub) || m) {
      throw fail('ERR_METHOD_NOT_ALLOWED', `${method} is not allowed here`)
    }
    throw fail('ERR_NOT_FOUND', 'no such console API')
  }

  async function route(req: Request, sub: string): Promise<Response> {
    if (sub === '/login' && req.method === 'POST') return login(req)
    const session = sessions.get(readCookie(req.headers.get('cookie'), SESSION_COOKIE))
    if (!session) return unauthorized(sub)

    const safe = req.method === 'GET' || req.method === 'HEAD'
    if (!safe) {
      if (sub === '/logout' && req.method === 'POST') {
        const form = await readForm(req)
        checkCsrf(req, session, form.get('csrf') ?? undefined, origin(req))
        sessions.end(session.id)
        return new Response(null, {
          status: 303,
          headers: { location: `${BASE}/`, 'set-cookie': `${SESSION_COOKIE}=; ${cookieFlags(req)}; Max-Age=0` },
        })
      }
      checkCsrf(req, session, undefined, origin(req))
    }
    if (sub.startsWith('/api/')) return api(req, sub)
    if (!safe) throw fail('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed here`)
    if (sub === '/' || sub === '/login') return new Response(null, { status: 303, headers: { location: `${BASE}/providers` } })
    const staticName = sub.startsWith('/static/') ? sub.slice('/static/'.length) : undefined
    if (staticName !== undefined && Object.hasOwn(STATIC, staticName)) {
      return new Response(await asset(staticName), { status: 200, headers: { 'content-type': STATIC[staticName]! } })
    }
    const name = sub.slice(1) as PageName
    if (PAGES.some((p) => p.path === name)) return html(200, page(name, await pageContext(session)))
    throw fail('ERR_NOT_FOUND', 'no such console page')
  }

  const handler = (async (req: Request): Promise<Response | undefined> => {
    const url = new URL(req.url)
    if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) return undefined
    const sub = url.pathname.slice(BASE.length) || '/'
    let res: Response
    try {
      res = await route(req, sub)
    } catch (err) {
      res = errorJson(err)
    }
    // The login page is the only one with an inline <style>, allowed by its hash.
    for (const [k, v] of Object.entries(securityHeaders(LOGIN_STYLE))) res.headers.set(k, v)
    return res
  }) as ConsoleHandler
  handler.close = () => verifier.close()
  return handler
}
