/**
 * The console's security properties, over real HTTP against a real gateway and Postgres:
 * 401 everywhere without the admin credential, cross-site and token-less state changes refused,
 * security headers on every response, and no API (nor the playground) able to read a secret.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { withOwner, addProvider, listProviders } from '../../src/database/providers.js'
import { generateSigningKey } from '../../src/keys/generate.js'
import { startConsoleHarness, ADMIN_TOKEN, type ConsoleHarness } from './harness.js'

let h: ConsoleHarness
before(async () => {
  h = await startConsoleHarness()
  // The browser test adds the provider through the page; here it is added directly.
  await withOwner(h.db.url, (c) => addProvider(c, { name: 'app', jwksUrl: h.jwks.url }))
  await h.gw.reload()
})
after(async () => {
  await h?.close()
})

/** Every route the console serves, with a method and a plausible body. */
const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', ''],
  ['GET', '/'],
  ['GET', '/providers'],
  ['GET', '/roles'],
  ['GET', '/inspect'],
  ['GET', '/playground'],
  ['GET', '/policies'],
  ['GET', '/no-such-page'],
  ['GET', '/static/console.js'],
  ['GET', '/static/console.css'],
  ['GET', '/api/providers'],
  ['GET', '/api/roles'],
  ['GET', '/api/policies'],
  ['POST', '/api/providers', { jwksUrl: 'http://127.0.0.1:1/jwks.json' }],
  ['POST', '/api/providers/refresh', {}],
  ['POST', '/api/providers/app/refresh', {}],
  ['DELETE', '/api/providers/app'],
  ['POST', '/api/setup', {}],
  ['POST', '/api/inspect', { token: 'a.b.c' }],
  ['POST', '/api/playground', { sql: 'select 1', identities: [{ kind: 'none' }] }],
  ['POST', '/logout'],
]

async function call(method: string, sub: string, body: unknown, headers: Record<string, string>) {
  return fetch(`${h.base}${sub}`, {
    method,
    redirect: 'manual',
    headers: { origin: h.gw.url, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
}

function assertSecurityHeaders(res: Response, what: string) {
  const csp = res.headers.get('content-security-policy') ?? ''
  assert.match(csp, /script-src 'self'(;|$)/, `${what}: CSP allows only same-origin scripts`)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${what}: no unsafe CSP`)
  assert.match(csp, /frame-ancestors 'none'/, what)
  assert.equal(res.headers.get('x-frame-options'), 'DENY', what)
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what)
  assert.equal(res.headers.get('cache-control'), 'no-store', what)
}

test('without the admin credential every console route and API answers 401', async () => {
  const forged = { cookie: 'pga_console=not-a-session' }
  for (const headers of [{}, forged]) {
    for (const [method, sub, body] of ROUTES) {
      const res = await call(method, sub, body, headers)
      const text = await res.text()
      assert.equal(res.status, 401, `${method} /console${sub} with ${JSON.stringify(headers)}`)
      assertSecurityHeaders(res, `${method} ${sub}`)
      // Nothing but the login form or the error: no data, no script.
      assert.doesNotMatch(text, /users|tenants|crud-authenticated|csrf-token/, `${method} ${sub} leaks nothing`)
    }
  }
  // A page answers the login form (with its 401), an API a JSON error.
  const pageRes = await call('GET', '/roles', undefined, {})
  assert.match(await pageRes.text(), /name="token"/)
  const apiRes = await call('GET', '/api/roles', undefined, {})
  assert.deepEqual((await apiRes.json()).error.code, 'ERR_UNAUTHORIZED')
  // A wrong admin token does not log in.
  const bad = await fetch(`${h.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: h.gw.url },
    body: 'token=' + encodeURIComponent(ADMIN_TOKEN + 'x'),
  })
  assert.equal(bad.status, 401)
  assert.equal(bad.headers.get('set-cookie'), null)
  // Paths outside /console are not the console's business.
  const sql = await fetch(`${h.gw.url}/consoles`)
  assert.notEqual(sql.headers.get('x-frame-options'), 'DENY')
})

test('login sets an HttpOnly, SameSite=Strict session cookie scoped to /console; logout ends it', async () => {
  const res = await fetch(`${h.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: h.gw.url },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  })
  assert.equal(res.status, 303)
  const setCookie = res.headers.get('set-cookie')!
  assert.match(setCookie, /^pga_console=[A-Za-z0-9_-]{40,};/)
  assert.match(setCookie, /; HttpOnly/)
  assert.match(setCookie, /; SameSite=Strict/)
  assert.match(setCookie, /; Path=\/console/)
  assert.doesNotMatch(setCookie, new RegExp(ADMIN_TOKEN), 'the cookie is not the admin token')
  const cookie = setCookie.split(';')[0]!
  const page = await fetch(`${h.base}/providers`, { headers: { cookie } })
  assert.equal(page.status, 200)
  assertSecurityHeaders(page, 'providers page')
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(await page.text())![1]!
  // The page's script is a separate file (no inline script anywhere).
  const js = await fetch(`${h.base}/static/console.js`, { headers: { cookie } })
  assert.equal(js.status, 200)
  assert.match(js.headers.get('content-type')!, /javascript/)

  // Logout needs the CSRF token too.
  const noToken = await fetch(`${h.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: h.gw.url } })
  assert.equal(noToken.status, 403)
  const out = await fetch(`${h.base}/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, origin: h.gw.url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf }).toString(),
  })
  assert.equal(out.status, 303)
  assert.equal((await fetch(`${h.base}/api/roles`, { headers: { cookie } })).status, 401, 'the session is gone')
})

test('a cross-site or token-less POST is refused and changes nothing', async () => {
  const { cookie, csrf } = await h.login()
  const before = await withOwner(h.db.url, (c) => listProviders(c))
  const body = { name: 'evil', jwksUrl: 'http://127.0.0.1:9/.well-known/jwks.json' }
  const attempts: Array<[string, Record<string, string>]> = [
    ['Sec-Fetch-Site cross-site', { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' }],
    ['Sec-Fetch-Site same-site (another port)', { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:1' }],
    ['foreign Origin', { cookie, 'x-csrf-token': csrf, origin: 'http://evil.example' }],
    ['no CSRF token', { cookie, origin: h.gw.url }],
    ['wrong CSRF token', { cookie, 'x-csrf-token': csrf.slice(1) + 'x', origin: h.gw.url }],
  ]
  for (const [what, headers] of attempts) {
    for (const [method, sub] of [['POST', '/api/providers'], ['POST', '/api/setup'], ['DELETE', '/api/providers/app']] as const) {
      const res = await fetch(`${h.base}${sub}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
      assert.equal(res.status, 403, `${what}: ${method} ${sub}`)
      assert.equal((await res.json()).error.code, 'ERR_FORBIDDEN')
    }
  }
  // A plain HTML form (urlencoded) cannot drive the API even with the right token.
  const form = await fetch(`${h.base}/api/providers`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ jwksUrl: body.jwksUrl }).toString(),
  })
  assert.equal(form.status, 400)
  // A cross-site login is refused as well.
  const login = await fetch(`${h.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  })
  assert.equal(login.status, 403)
  assert.equal(login.headers.get('set-cookie'), null)
  assert.deepEqual(await withOwner(h.db.url, (c) => listProviders(c)), before, 'no provider was added or removed')
  // The same request, same-origin and with the token, does go through (the checks are not refusing everything).
  const ok = await fetch(`${h.base}/api/providers`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, name: 'same-origin-ok' }),
  })
  assert.equal(ok.status, 201)
  await withOwner(h.db.url, (c) => c.query(`delete from pgauthorize.providers where name = 'same-origin-ok'`))
})

test('the console API cannot be used to read provider secrets, role passwords or the sealing key', async () => {
  const { cookie, csrf } = await h.login()
  // A provider stored (by mistake) with a private key inline.
  const key = await generateSigningKey({ alg: 'ES256' })
  await withOwner(h.db.url, (c) => addProvider(c, { name: 'inline-private', jwks: { keys: [key.privateJwk as Record<string, unknown>] } }))
  const secrets = await withOwner(h.db.url, async (c) => {
    const creds = (await c.query<{ password: string }>('select password from pgauthorize.role_credentials')).rows.map((r) => r.password)
    const k = (await c.query<{ key: Buffer }>('select key from pgauthorize.sealing_key where retire_at is null')).rows[0]!.key
    return [...creds, k.toString('hex'), k.toString('base64'), k.toString('base64url'), new URL(h.db.url).password, ADMIN_TOKEN, String(key.privateJwk.d)]
  })
  assert.ok(secrets.every((s) => s.length >= 8))

  const get = async (p: string) => {
    const res = await fetch(`${h.base}${p}`, { headers: { cookie } })
    assert.equal(res.status, 200, p)
    return res.text()
  }
  const post = async (p: string, body: unknown) => {
    const res = await fetch(`${h.base}/api${p}`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.status, text: await res.text() }
  }
  const claims = { kind: 'claims', claims: { sub: 'x' } }
  const outputs = [
    await get('/api/providers'),
    await get('/api/roles'),
    await get('/api/policies'),
    ...(await Promise.all(['/providers', '/roles', '/inspect', '/playground', '/policies'].map(get))),
    (await post('/providers/refresh', {})).text,
    (await post('/setup', {})).text,
  ]
  const providers = JSON.parse(outputs[0]!).providers as Array<{ name: string; keys: Array<Record<string, unknown>> }>
  const inline = providers.find((p) => p.name === 'inline-private')!
  assert.equal(inline.keys.length, 1, 'the inline key is listed')
  assert.deepEqual(Object.keys(inline.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use'].filter((k) => k in inline.keys[0]!).sort())
  assert.ok(!('d' in inline.keys[0]!) && !('x' in inline.keys[0]!), 'only the key identity is shown')
  // The owner URL is shown masked.
  assert.match(JSON.parse(outputs[1]!).connection.owner, /:\*\*\*\*@/)

  // The playground runs as the restricted role: the private tables are out of reach, whatever the identity.
  for (const sql of ['select * from pgauthorize.role_credentials', 'select key from pgauthorize.sealing_key', 'select auth.session()', `select current_setting('pg_authorize.session')`]) {
    const r = await post('/playground', { sql, identities: [{ kind: 'token', token: h.tokens.alice }, claims] })
    assert.equal(r.status, 200)
    outputs.push(r.text)
  }
  const denied = JSON.parse((await post('/playground', { sql: 'select * from pgauthorize.sealing_key', identities: [claims] })).text).results[0]
  assert.equal(denied.ok, false)
  assert.equal(denied.error.sqlstate, '42501', 'permission denied, as the restricted role')
  // Running as the owner (or any role set-up did not make) is refused outright.
  for (const role of [new URL(h.db.url).username, 'postgres', 'pg_read_all_data']) {
    const r = JSON.parse((await post('/playground', { sql: 'select * from pgauthorize.sealing_key', identities: [{ ...claims, role }] })).text).results[0]
    assert.equal(r.ok, false, role)
    assert.equal(r.error.code, 'ERR_ROLE_NOT_ALLOWED', role)
    outputs.push(JSON.stringify(r))
  }
  const all = outputs.join('\n')
  for (const s of secrets) assert.ok(!all.includes(s), 'no secret appears in any console response')
  await withOwner(h.db.url, (c) => c.query(`delete from pgauthorize.providers where name = 'inline-private'`))
})

test('the playground always rolls back, even when the statement tries to commit', async () => {
  const { cookie, csrf } = await h.login()
  const run = async (sql: string) => {
    const res = await fetch(`${h.base}/api/playground`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'content-type': 'application/json' },
      body: JSON.stringify({ sql, identities: [{ kind: 'token', token: h.tokens.alice }] }),
    })
    return (await res.json()).results[0]
  }
  const count = () => withOwner(h.db.url, async (c) => (await c.query(`select name from users order by name`)).rows.map((r) => r.name))
  const names = await count()
  const upd = await run(`update users set name = 'changed' where true`)
  assert.equal(upd.ok, true, JSON.stringify(upd.error))
  assert.equal(upd.rowCount, 1, 'Alice may update her own row only')
  const smuggled = await run(`commit; update users set name = 'changed' where true`)
  assert.equal(smuggled.ok, false, 'two statements are refused')
  assert.equal(smuggled.error.sqlstate, '42601')
  assert.deepEqual(await count(), names, 'nothing was committed')
})
