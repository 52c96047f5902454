/**
 * The console's server-rendered HTML, without Postgres: the Hono app mounted the way the gateway's router
 * will mount it (`app.route('/console', createConsoleApp(...))`), over a stand-in for the gateway's
 * databases (the narrow `ConsoleBackend`) whose database and role names are hostile HTML. Every page must
 * show them as text, load only its own module (no inline script), and that module must be served.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Hono } from 'hono'
import { createConsoleApp, type ConsoleBackend } from '../../src/console/index.js'
import { PAGES, loginPage } from '../../src/console/pages.js'
import { Verifier } from '../../src/verify/verifier.js'

const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'
/** Breaks out of an attribute value and out of text, if either is not escaped. */
const HOSTILE = `"><img src=x onerror=alert(1)>`
const ESCAPED = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'

function fakeBackend(): ConsoleBackend {
  const unused = () => {
    throw new Error('not used by the pages')
  }
  const verifier = new Verifier({ cache: false })
  return {
    open: async () => ({
      ctx: { database: `db${HOSTILE}`, roles: ['authenticated', `role${HOSTILE}`], roleConnectionConfig: unused, seal: unused },
      verifier,
      watch: { reload: async () => {} },
    }),
    reload: async () => {},
  }
}

async function mounted() {
  const consoleApp = createConsoleApp({
    databases: fakeBackend(),
    ownerUrl: 'postgresql://owner:secret@127.0.0.1:1/db',
    adminToken: ADMIN_TOKEN,
    endpoints: () => ({ httpUrl: 'http://127.0.0.1:4444', host: '127.0.0.1', pgPort: 5433 }),
  })
  const app = new Hono().route('/console', consoleApp)
  const login = await app.request('http://127.0.0.1:4444/console/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1:4444' },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  })
  assert.equal(login.status, 303)
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!
  const get = (path: string) => app.request(`http://127.0.0.1:4444/console${path}`, { headers: { cookie } })
  return { app, consoleApp, get, cookie }
}

test('every page shows a hostile database or role name as text, never as markup', async () => {
  const { consoleApp, get } = await mounted()
  try {
    for (const p of PAGES) {
      const res = await get(`/${p.path}`)
      assert.equal(res.status, 200, p.path)
      assert.match(res.headers.get('content-type')!, /^text\/html/)
      assert.match(res.headers.get('content-security-policy')!, /script-src 'self'(;|$)/, p.path)
      const text = await res.text()
      assert.ok(!text.includes('<img'), `${p.path}: the hostile value became markup`)
      assert.ok(text.includes(`<span class="db" title="database">db${ESCAPED}</span>`), `${p.path}: the database name is shown, escaped`)
      if (p.path === 'playground') {
        assert.equal(text.split(`<option>role${ESCAPED}</option>`).length - 1, 2, 'the role is offered, escaped, for both identities')
      }
      // No inline script: each page loads its own module, which is served and builds on the shared one.
      const scripts = [...text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
      assert.deepEqual(scripts.map((m) => [m[1], m[2]]), [[` type="module" src="/console/static/${p.path}.js"`, '']], p.path)
      const js = await get(`/static/${p.path}.js`)
      assert.equal(js.status, 200)
      assert.match(js.headers.get('content-type')!, /javascript/)
      assert.match(await js.text(), /from '\.\/console\.js'/)
    }
  } finally {
    consoleApp.close()
  }
})

test('the login page escapes its message and code', async () => {
  const text = String(await loginPage(`message${HOSTILE}`, `code${HOSTILE}`))
  assert.ok(!text.includes('<img'))
  assert.ok(text.includes(`data-code="code${ESCAPED}">message${ESCAPED}</p>`))
  // The inline style is a constant, inserted as it is (its hash is in the CSP).
  assert.match(text, /<style>body\{font:16px\/1\.5 system-ui,-apple-system,"Segoe UI"/)
})

test('mounted on a Hono router, the console keeps its routes, its 401s and its headers; only listed assets are served', async () => {
  const { app, consoleApp, get, cookie } = await mounted()
  try {
    const anon = await app.request('http://127.0.0.1:4444/console/providers')
    assert.equal(anon.status, 401)
    assert.match(await anon.text(), /name="token"/)
    assert.equal(anon.headers.get('x-frame-options'), 'DENY')
    for (const path of ['', '/', '/login']) {
      const res = await get(path)
      assert.equal(res.status, 303, `/console${path}`)
      assert.equal(res.headers.get('location'), '/console/providers')
    }
    for (const path of ['/static/nope.js', '/static/..%2Fapp.ts', '/nope']) {
      const res = await get(path)
      assert.equal(res.status, 404, path)
      assert.equal((await res.json()).error.code, 'ERR_NOT_FOUND')
      assert.equal(res.headers.get('cache-control'), 'no-store')
    }
    assert.equal((await get('/api/nope')).status, 404)
    // HEAD is not an API method (Hono would run the GET route for it); a page does take it.
    const head = (path: string) => app.request(`http://127.0.0.1:4444/console${path}`, { method: 'HEAD', headers: { cookie } })
    assert.equal((await head('/api/roles')).status, 405)
    assert.equal((await head('/api/nope')).status, 404)
    assert.equal((await head('/policies')).status, 200)
  } finally {
    consoleApp.close()
  }
})
