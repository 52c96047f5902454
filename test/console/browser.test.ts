/**
 * A real headless Chromium (Debian's `chromium`, driven by playwright-core) uses the console end to end:
 * logs in, adds a provider pointing at a local JWKS and sees its keys, runs the set-up, inspects demo user
 * A's token (verified) and a tampered one (the reason it fails), runs `select * from users` as A and as B
 * side by side, and shows that a cross-site form POST from another origin is refused. Then every page
 * shows hostile values from the database as text, and at 420 px wide every page fits. Screenshots of each
 * page go to test-artifacts/console/.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { DEMO_USERS } from '../../src/dev/demo.js'
import { addProvider, listProviders, withOwner } from '../../src/database/providers.js'
import { generateSigningKey } from '../../src/keys/generate.js'
import { startConsoleHarness, ADMIN_TOKEN, type ConsoleHarness } from './harness.js'
import { CHROMIUM, needs } from '../helpers/requires.js'

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// Skipped loudly without Chromium, except under CI=true, where its absence fails the file.
const skip = needs(CHROMIUM)
const ARTIFACTS = path.resolve('test-artifacts/console')

let h: ConsoleHarness
let browser: Browser
let page: Page

before(async () => {
  if (skip) return
  await mkdir(ARTIFACTS, { recursive: true })
  h = await startConsoleHarness()
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } })
  page = await context.newPage()
  page.setDefaultTimeout(30_000)
})

after(async () => {
  await browser?.close().catch(() => {})
  await h?.close()
})

const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true })

/** The same token with `sub` changed to `sub`: the signature no longer matches. */
function tamper(token: string, sub: string): string {
  const [header, payload, signature] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'))
  claims.sub = sub
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.')
}

test('the console in Chromium: log in, provider, set-up, inspector, playground side by side', { skip }, async () => {
  const [alice, bob] = DEMO_USERS
  // Take the grants away, so that "Run set-up" has something visible to restore.
  await withOwner(h.db.url, (c) => c.query('revoke all on table users, tenants from authenticated'))

  // Log in: without a session the console answers its login form.
  const first = await page.goto(`${h.base}/providers`)
  assert.equal(first!.status(), 401)
  await shot('login')
  await page.fill('#token', ADMIN_TOKEN)
  await Promise.all([page.waitForURL(`${h.base}/providers`), page.click('button[type=submit]')])
  await page.waitForSelector('#providers .empty')

  // Add the provider: the JWKS is fetched at once and its keys are shown.
  await page.fill('#jwksUrl', h.jwks.url)
  await page.fill('#provider-name', 'app')
  await page.click('#add-provider button[type=submit]')
  const kidCell = page.locator('#add-result td.kid')
  await kidCell.waitFor()
  assert.equal(await kidCell.textContent(), h.kid)
  await page.locator('#providers-table').waitFor()
  assert.match(await page.locator('#providers-table').innerText(), new RegExp(`app[\\s\\S]*${h.kid.slice(0, 12)}`))
  await shot('providers')

  // Roles and set-up: no grant on users, run the set-up, the grants are back.
  await page.goto(`${h.base}/roles`)
  await page.locator('#auth-installed').waitFor()
  assert.match(await page.locator('#auth-installed').innerText(), /installed\s+version \d+/)
  const usersRow = page.locator('table[data-schema="public"] tr', { hasText: 'users' })
  assert.doesNotMatch(await usersRow.innerText(), /SELECT, INSERT, UPDATE, DELETE\s*$/)
  await page.click('#run-setup')
  await page.locator('#setup-done').waitFor()
  await page.waitForFunction(() => /users[\s\S]*SELECT, INSERT, UPDATE, DELETE\s*$/.test(
    [...document.querySelectorAll('table[data-schema="public"] tr')].find((tr) => tr.textContent!.includes('users'))?.textContent ?? ''))
  assert.match(await page.locator('#connection').innerText(), /postgresql:\/\/authenticated@127\.0\.0\.1:\d+\//)
  assert.match(await page.locator('#connection').innerText(), /:\*\*\*\*@/, 'the owner password is masked')
  await shot('roles')

  // The inspector: A's token verifies against the new provider and its key.
  await page.goto(`${h.base}/inspect`)
  await page.fill('#inspect-token', h.tokens.alice)
  await page.click('#inspect-form button[type=submit]')
  const verdict = page.locator('[data-testid=verdict]')
  await verdict.waitFor()
  const verified = await verdict.innerText()
  assert.match(verified, /^Verified\./)
  assert.match(verified, /provider app with key/)
  assert.ok(verified.includes(h.kid), 'names the key')
  assert.match(await page.locator('#claims-json').innerText(), new RegExp(alice!.sub))
  await shot('inspect')

  // A tampered token: the exact reason it fails.
  await page.fill('#inspect-token', tamper(h.tokens.alice, bob!.sub))
  await page.click('#inspect-form button[type=submit]')
  await page.waitForFunction(() => document.querySelector('[data-testid=verdict]')?.textContent?.startsWith('Not verified'))
  const refused = await verdict.innerText()
  assert.match(refused, /ERR_JWT_SIGNATURE_INVALID/)
  assert.match(refused, /signature verification failed \(provider 'app'\)/)
  await shot('inspect-tampered')

  // The playground: the same query as A and as B, side by side.
  await page.goto(`${h.base}/playground`)
  await page.fill('#sql', 'select * from users')
  await page.fill('#token-a', h.tokens.alice)
  await page.check('input[name=kind-b][value=token]')
  await page.fill('#token-b', h.tokens.bob)
  await page.click('#run')
  await page.locator('#play-results article[data-side=b]').waitFor()
  const rowsA = page.locator('#play-results article[data-side=a] table.rows tbody tr')
  const rowsB = page.locator('#play-results article[data-side=b] table.rows tbody tr')
  assert.equal(await rowsA.count(), 1, 'A sees exactly one row')
  assert.match(await rowsA.innerText(), new RegExp(`${alice!.sub}[\\s\\S]*Alice`))
  assert.equal(await rowsB.count(), 1)
  assert.match(await rowsB.innerText(), new RegExp(`${bob!.sub}[\\s\\S]*Bob`), "B sees B's row")
  assert.doesNotMatch(await rowsB.innerText(), /Alice/)
  const appliedA = await page.locator('#play-results article[data-side=a] li.applies').allInnerTexts()
  assert.equal(appliedA.length, 1)
  assert.match(appliedA[0]!, /crud-authenticated-policy-select/)
  await shot('playground')

  // An error carries its SQLSTATE.
  await page.fill('#sql', 'select * from pgauthorize.sealing_key')
  await page.check('input[name=kind-b][value=off]')
  await page.click('#run')
  await page.waitForFunction(() => document.querySelector('#play-results [data-testid=sql-error]'))
  assert.match(await page.locator('#play-results [data-testid=sql-error]').innerText(), /^42501[\s\S]*permission denied/)

  await page.goto(`${h.base}/policies`)
  await page.locator('table.matrix').first().waitFor()
  assert.match(await page.locator('#policies').innerText(), /public\.users[\s\S]*crud-authenticated-policy-select/)
  await shot('policies')
})

test('a cross-site form POST from another origin is refused by the console', { skip }, async () => {
  // Another origin on the same host (so the same site: the SameSite cookie alone would not stop it).
  const evil = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/html')
    res.end(`<!doctype html><form method="post" action="${h.base}/api/providers" enctype="text/plain">
      <input name='{"name":"evil","jwksUrl":"http://127.0.0.1:9/jwks.json","x":"' value='"}'></form>
      <script>document.forms[0].submit()</script>`)
  })
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
  try {
    const before = await withOwner(h.db.url, (c) => listProviders(c))
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${h.base}/api/providers` && r.request().method() === 'POST'),
      page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`),
    ])
    // 403, not 401: the browser did send the session cookie, and the cross-site check refused the request.
    assert.equal(response.status(), 403)
    assert.match(await response.text(), /cross-site request refused/)
    assert.deepEqual(await withOwner(h.db.url, (c) => listProviders(c)), before, 'no provider was added')
  } finally {
    await new Promise<void>((resolve) => evil.close(() => resolve()))
  }
})

/** Logs the page in, unless it already is (each test can run after a failed one). */
async function ensureLoggedIn() {
  const res = await page.goto(`${h.base}/providers`)
  if (res!.status() !== 401) return
  await page.fill('#token', ADMIN_TOKEN)
  await Promise.all([page.waitForURL(`${h.base}/providers`), page.click('button[type=submit]')])
}

/** Markup, if a page ever parsed a value as HTML; its onerror would not run anyway (the CSP), so look for the element. */
const HOSTILE = '<img src=x onerror=alert(1)>'

test('every page shows hostile values from the database as text, never as markup', { skip }, async () => {
  const key = await generateSigningKey({ alg: 'ES256' })
  await withOwner(h.db.url, async (c) => {
    await addProvider(c, { name: 'hostile', issuer: HOSTILE, audience: [HOSTILE], jwks: { keys: [{ ...key.publicJwk, kid: HOSTILE }] } })
    await c.query(`create table public."${HOSTILE}" (id int)`)
    await c.query(`alter table public."${HOSTILE}" enable row level security`)
    await c.query(`create policy "${HOSTILE}" on public."${HOSTILE}" for select to authenticated using (id = 1)`)
  })
  try {
    await ensureLoggedIn()
    const showsAsText = async (where: string, what: string) => {
      const box = page.locator(where)
      assert.equal(await box.locator('img').count(), 0, `${what}: no element made from the value`)
      assert.ok((await box.innerText()).includes(HOSTILE), `${what}: the value is shown, as text`)
    }
    await page.locator('#providers-table').waitFor()
    await showsAsText('#providers', 'providers (issuer, audience, kid)')

    await page.goto(`${h.base}/roles`)
    await page.locator('table[data-schema="public"]').waitFor()
    await showsAsText('#grants', 'roles (table name)')

    await page.goto(`${h.base}/policies`)
    await page.locator('table.matrix').first().waitFor()
    await showsAsText('#policies', 'policies (table and policy names)')

    // A token that does not verify: its header and claims are still shown.
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    await page.goto(`${h.base}/inspect`)
    await page.fill('#inspect-token', `${part({ alg: 'ES256', kid: HOSTILE })}.${part({ sub: HOSTILE })}.${part('sig')}`)
    await page.click('#inspect-form button[type=submit]')
    await page.locator('[data-testid=verdict]').waitFor()
    await showsAsText('#inspect-result', 'inspector (header and claims)')

    await page.goto(`${h.base}/playground`)
    await page.fill('#sql', `select '${HOSTILE}' as "${HOSTILE}"`)
    await page.check('input[name=kind-a][value=claims]')
    await page.fill('#claims-a', JSON.stringify({ sub: HOSTILE }))
    await page.click('#run')
    await page.locator('#play-results article[data-side=a] table.rows').waitFor()
    await showsAsText('#play-results', 'playground (column, cell and subject)')
  } finally {
    await withOwner(h.db.url, async (c) => {
      await c.query(`delete from pgauthorize.providers where name = 'hostile'`)
      await c.query(`drop table public."${HOSTILE}"`)
    })
  }
})

test('at 420 px wide every page fits; the JWKS URL wraps readably; removing a provider clears the "Added" note', { skip }, async () => {
  await ensureLoggedIn()
  await page.setViewportSize({ width: 420, height: 900 })
  try {
    const fits = async (what: string) => {
      const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }))
      assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide in a ${width} px window`)
    }
    // A provider added through the form, so that the page shows its "Added" note.
    await page.fill('#jwksUrl', `${h.jwks.url}?${'long-query-string'.repeat(4)}`)
    await page.fill('#provider-name', 'narrow')
    await page.click('#add-provider button[type=submit]')
    await page.locator('#add-result td.kid').waitFor()
    const row = page.locator('#providers-table tr', { hasText: 'narrow' })
    await row.waitFor()
    const url = await row.locator('.url').boundingBox()
    assert.ok(url && url.width >= 200, `the URL is ${url?.width} px wide: it wraps at line ends, not after each character`)
    await fits('providers')
    await shot('providers-420')

    page.once('dialog', (d) => void d.accept())
    await row.locator('button', { hasText: 'Remove' }).click()
    await row.waitFor({ state: 'detached' })
    assert.equal(await page.locator('#add-result').innerText(), '', 'the note about the removed provider is gone')

    await page.goto(`${h.base}/roles`)
    await page.locator('#connection pre').first().waitFor()
    await fits('roles')
    await shot('roles-420')

    await page.goto(`${h.base}/inspect`)
    await page.fill('#inspect-token', h.tokens.alice)
    await page.click('#inspect-form button[type=submit]')
    await page.locator('#claims-json').waitFor()
    await fits('inspect')

    await page.goto(`${h.base}/playground`)
    await page.fill('#sql', 'select * from users')
    await page.fill('#token-a', h.tokens.alice)
    await page.click('#run')
    await page.locator('#play-results table.rows').waitFor()
    await fits('playground')
    await shot('playground-420')

    await page.goto(`${h.base}/policies`)
    await page.locator('table.matrix').first().waitFor()
    await fits('policies')
  } finally {
    await page.setViewportSize({ width: 1360, height: 900 })
  }
})
