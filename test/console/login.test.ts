/**
 * The console login behind and without a proxy, over real HTTP against a real gateway and Postgres:
 * the attempt limit per client address (429 with Retry-After and ERR_TOO_MANY_ATTEMPTS, a success
 * resets it), and `trustProxy`: only then do X-Forwarded-Proto (the cookie's Secure flag, the origin
 * check) and X-Forwarded-For (the address counted) count.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { LoginLimiter, addressKey } from '../../src/console/login-limit.js'
import { startConsoleHarness, ADMIN_TOKEN, type ConsoleHarness } from './harness.js'

let direct: ConsoleHarness
let proxied: ConsoleHarness
before(async () => {
  direct = await startConsoleHarness()
  proxied = await startConsoleHarness({ trustProxy: true })
})
after(async () => {
  await direct?.close()
  await proxied?.close()
})

async function login(h: ConsoleHarness, token: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: h.gw.url, ...headers },
    body: new URLSearchParams({ token }).toString(),
  })
  return { status: res.status, cookie: res.headers.get('set-cookie'), retryAfter: res.headers.get('retry-after'), text: await res.text() }
}
const WRONG = ADMIN_TOKEN + 'x'

test('without trustProxy, X-Forwarded-Proto and X-Forwarded-For are ignored', async () => {
  const ok = await login(direct, ADMIN_TOKEN, { 'x-forwarded-proto': 'https' })
  assert.equal(ok.status, 303)
  assert.doesNotMatch(ok.cookie!, /;\s*Secure/i, 'a header any client can send must not decide the cookie')
  // Ten failures, each claiming another address: they all count against the real one.
  for (let i = 0; i < 10; i++) assert.equal((await login(direct, WRONG, { 'x-forwarded-for': `203.0.113.${i}` })).status, 401)
  const blocked = await login(direct, ADMIN_TOKEN, { 'x-forwarded-for': '198.51.100.7' })
  assert.equal(blocked.status, 429)
})

test('trustProxy: the Secure flag follows X-Forwarded-Proto, and so does the same-origin check', async () => {
  // Behind a TLS proxy the browser's Origin is the https one.
  const httpsOrigin = proxied.gw.url.replace(/^http:/, 'https:')
  const tls = { origin: httpsOrigin, 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.1' }
  const viaTls = await login(proxied, ADMIN_TOKEN, tls)
  assert.equal(viaTls.status, 303)
  assert.match(viaTls.cookie!, /; Secure(;|$)/)
  const plain = await login(proxied, ADMIN_TOKEN, { 'x-forwarded-proto': 'http', 'x-forwarded-for': '192.0.2.1' })
  assert.equal(plain.status, 303)
  assert.doesNotMatch(plain.cookie!, /Secure/)
  // Without Sec-Fetch-Site the origin decides, and it is compared with the scheme the proxy reports.
  assert.equal((await login(proxied, ADMIN_TOKEN, { ...tls, 'x-forwarded-proto': 'http' })).status, 403)
  assert.equal((await login(proxied, ADMIN_TOKEN, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.1' })).status, 403)
  // Logging out clears the cookie with the same flags.
  const cookie = viaTls.cookie!.split(';')[0]!
  const page = await (await fetch(`${proxied.base}/providers`, { headers: { cookie } })).text()
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(page)![1]!
  const out = await fetch(`${proxied.base}/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, origin: httpsOrigin, 'x-forwarded-proto': 'https', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf }).toString(),
  })
  assert.equal(out.status, 303)
  assert.match(out.headers.get('set-cookie')!, /; Secure/)
})

test('login attempts are limited per client address: 10 failures, then 429 with Retry-After; a success resets', async () => {
  const from = (address: string) => ({ 'x-forwarded-for': `198.51.100.99, ${address}` })
  // Nine failures, then a success: the count starts again.
  for (let i = 0; i < 9; i++) assert.equal((await login(proxied, WRONG, from('192.0.2.10'))).status, 401)
  assert.equal((await login(proxied, ADMIN_TOKEN, from('192.0.2.10'))).status, 303)
  for (let i = 0; i < 10; i++) assert.equal((await login(proxied, WRONG, from('192.0.2.10'))).status, 401, `failure ${i + 1} after the reset`)
  // The eleventh try is refused before the token is looked at: the right token too.
  const blocked = await login(proxied, ADMIN_TOKEN, from('192.0.2.10'))
  assert.equal(blocked.status, 429)
  assert.equal(blocked.cookie, null)
  const wait = Number(blocked.retryAfter)
  assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 60, `Retry-After ${blocked.retryAfter}`)
  assert.match(blocked.text, /data-code="ERR_TOO_MANY_ATTEMPTS"/)
  assert.doesNotMatch(blocked.text, new RegExp(ADMIN_TOKEN))
  // Another address is not affected; what a client writes before the proxy's hop does not matter.
  assert.equal((await login(proxied, ADMIN_TOKEN, from('192.0.2.11'))).status, 303)
  assert.equal((await login(proxied, ADMIN_TOKEN, { 'x-forwarded-for': '192.0.2.11, 192.0.2.10' })).status, 429)
})

test('the limiter: the window ends, a success clears it, IPv6 counts by /64, memory is bounded', () => {
  let now = 1_000_000
  const limiter = new LoginLimiter({ maxFailures: 3, windowMs: 60_000, maxAddresses: 4, now: () => now })
  for (let i = 0; i < 3; i++) limiter.failed('10.0.0.1')
  assert.equal(limiter.blockedFor('10.0.0.1'), 60_000)
  assert.equal(limiter.blockedFor('::ffff:10.0.0.1'), 60_000, 'an IPv4-mapped address is the same client')
  now += 59_000
  assert.equal(limiter.blockedFor('10.0.0.1'), 1_000)
  now += 1_000
  assert.equal(limiter.blockedFor('10.0.0.1'), 0, 'the window has ended')
  limiter.failed('10.0.0.1')
  limiter.failed('10.0.0.1')
  limiter.succeeded('10.0.0.1')
  limiter.failed('10.0.0.1')
  limiter.failed('10.0.0.1')
  assert.equal(limiter.blockedFor('10.0.0.1'), 0, 'the success cleared the earlier failures')
  for (let i = 1; i <= 3; i++) limiter.failed(`2001:db8:1:2::${i}`)
  assert.ok(limiter.blockedFor('2001:db8:1:2:ffff::9') > 0, 'one /64 is one client')
  assert.equal(limiter.blockedFor('2001:db8:1:3::1'), 0)
  assert.equal(addressKey('2001:0db8:0001:0002:0:0:0:1'), addressKey('2001:db8:1:2::1'))
  for (let i = 0; i < 100; i++) limiter.failed(`192.0.2.${i}`)
  assert.equal(limiter.blockedFor('2001:db8:1:2::1'), 0, 'the oldest entries made room')
})
