/**
 * One user cannot starve everyone else (issue 22). Alice floods: more concurrent `pg_sleep` requests than
 * the pool holds, and wire sessions up to her limit and past it. Meanwhile Bob sends 50 sequential
 * requests over HTTP and logs in 10 times over the wire: every one of his succeeds, and Alice's excess is
 * refused with 429 (HTTP, Retry-After, SQLSTATE 53300) or 53300 at login (wire), before anything is opened
 * upstream.
 *
 * `PGA_TEST_NO_CAPS=1` runs the same test against a gateway without the caps (fair share off, no wire
 * session limits): then Bob's requests time out behind Alice's and the test fails, as it did before them.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import net from 'node:net'
import { Writable } from 'node:stream'
import pg from 'pg'
import { createLogger } from '../../src/observability/logger.js'
import { alice, bob, DATABASE, startStack, until, type Stack } from './stack.js'

const POOL = 4
const SLEEP_S = 4
const POOL_TIMEOUT_MS = 2000
const WIRE_PER_IDENTITY = 3
const STARTUP_PER_ADDRESS = 6
const noCaps = process.env.PGA_TEST_NO_CAPS === '1'

let s: Stack
const logLines: string[] = []
let aliceToken: string
let bobToken: string

before(async () => {
  const logger = createLogger({
    level: 'info',
    destination: new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb() } }) as never,
  })
  s = await startStack({
    poolSize: POOL,
    poolTimeoutMs: POOL_TIMEOUT_MS,
    gateway: {
      logger,
      ...(noCaps
        ? { fairShare: false, wireLimits: { maxSessionsPerIdentity: 0, maxSessions: 0, maxStartupPerAddress: 0 } }
        : { wireLimits: { maxSessionsPerIdentity: WIRE_PER_IDENTITY, maxStartupPerAddress: STARTUP_PER_ADDRESS } }),
    },
  })
  aliceToken = await s.token(s.claimsOf(alice))
  bobToken = await s.token(s.claimsOf(bob))
})
after(() => s?.close())

/** One `/sql` request, with its status and Retry-After. */
async function sql(token: string, query: string): Promise<{ status: number; code?: string; message?: string; retryAfter: string | null; rows?: unknown[] }> {
  const res = await fetch(`${s.gateway.url}/sql`, {
    method: 'POST',
    headers: {
      'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${DATABASE}`,
      'Content-Type': 'application/json',
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, params: [] }),
  })
  const json = (await res.json()) as { code?: string; message?: string; rows?: unknown[] }
  return { status: res.status, code: json.code, message: json.message, retryAfter: res.headers.get('retry-after'), rows: json.rows }
}

/** A wire login over TCP or WebSocket; resolves the client, or the login's SQLSTATE and message. */
async function login(transport: 'tcp' | 'ws', token: string): Promise<{ client?: pg.Client; close(): Promise<void>; code?: string; message?: string }> {
  try {
    const r = await s.rawSession(transport, token)
    return { client: r.client, close: r.close }
  } catch (err) {
    return { code: String((err as { code?: unknown }).code), message: (err as Error).message, close: async () => {} }
  }
}

test('noisy neighbour: Alice floods HTTP and the wire port; every one of Bob\'s requests and logins succeeds', async () => {
  // Alice's wire sessions, up to her limit, held open for the whole test.
  const held: Array<Awaited<ReturnType<typeof login>>> = []
  for (let i = 0; i < WIRE_PER_IDENTITY; i++) {
    const l = await login(i % 2 ? 'ws' : 'tcp', aliceToken)
    assert.ok(l.client, `Alice's session ${i + 1} (within her limit): ${l.message}`)
    held.push(l)
  }
  // Past her limit: refused at login with 53300, and no upstream login is made for it.
  await until(() => s.restrictedLogins() >= WIRE_PER_IDENTITY, 'the server log to show Alice\'s logins')
  const loginsBefore = s.restrictedLogins()
  const over: Array<Awaited<ReturnType<typeof login>>> = []
  for (const t of ['tcp', 'ws', 'tcp'] as const) over.push(await login(t, aliceToken))

  // Alice's HTTP flood: three times the pool, each holding a connection for SLEEP_S.
  const flood = Array.from({ length: POOL * 3 }, () => sql(aliceToken, `select pg_sleep(${SLEEP_S}) /* alice flood */`))
  // Her flood has the connections it may have before Bob starts.
  await until(() => s.gateway.pools.stats().some((p) => p.leased >= (noCaps ? POOL : POOL / 2)), 'Alice\'s flood to hold connections')
  const floodStarted = Date.now()

  const bobHttp: Array<{ status: number; code?: string; message?: string; rows?: unknown[] }> = []
  for (let i = 0; i < 50; i++) bobHttp.push(await sql(bobToken, `select auth.user_id() as me, ${i} as n`))
  const bobWire: Array<{ ok: boolean; me?: string; code?: string; message?: string }> = []
  for (let i = 0; i < 10; i++) {
    const l = await login(i % 2 ? 'ws' : 'tcp', bobToken)
    if (!l.client) {
      bobWire.push({ ok: false, code: l.code, message: l.message })
      continue
    }
    const r = await l.client.query('select auth.user_id() as me')
    bobWire.push({ ok: true, me: r.rows[0].me })
    await l.close()
  }
  const bobDone = Date.now()
  const alices = await Promise.all(flood)
  for (const h of held) await h.close()
  for (const o of over) await o.close()

  const bobFailed = bobHttp.filter((r) => r.status !== 200)
  assert.deepEqual(bobFailed.slice(0, 3), [], `${bobFailed.length} of Bob's 50 HTTP requests failed`)
  for (const r of bobHttp) assert.equal((r.rows as Array<{ me: string }>)[0]!.me, bob.sub)
  assert.deepEqual(bobWire.filter((r) => !r.ok), [], "Bob's wire logins")
  assert.ok(bobWire.every((r) => r.me === bob.sub))
  // Bob ran while Alice's flood held its connections (it lasts SLEEP_S from when it held them).
  assert.ok(bobDone - floodStarted < SLEEP_S * 1000, `Bob finished within Alice's flood (${bobDone - floodStarted} ms)`)

  // Alice's excess: 429 with Retry-After and SQLSTATE 53300; nothing else failed.
  const refused = alices.filter((r) => r.status === 429)
  assert.deepEqual(alices.filter((r) => r.status !== 200 && r.status !== 429), [], 'Alice got only results or 429s')
  assert.ok(refused.length >= POOL * 3 - POOL, `at least ${POOL * 2} of Alice's ${POOL * 3} requests were refused (got ${refused.length})`)
  for (const r of refused) {
    assert.equal(r.code, '53300')
    assert.equal(r.retryAfter, '1')
    assert.match(r.message!, /too many concurrent requests from this identity/)
  }
  assert.ok(alices.some((r) => r.status === 200), 'Alice still got her share')
  for (const o of over) {
    assert.equal(o.code, '53300', `Alice's login past her limit: ${o.message}`)
    assert.match(o.message!, new RegExp(`too many sessions for this identity: ${WIRE_PER_IDENTITY} open`))
  }
  await new Promise((r) => setTimeout(r, 200))
  // Bob's 10 logins and new pool connections happened since; Alice's refused ones added none before them.
  const refusedEvents = s.gatewayEvents.filter((e) => e.kind === 'limit-refused' && e.reason === 'wire-identity')
  assert.equal(refusedEvents.length, over.length)
  assert.ok(loginsBefore <= s.restrictedLogins())

  // Counted by reason in /metrics, and logged with the provider and a hash of the sub, never the token.
  const metrics = await s.gateway.metrics.text()
  assert.match(metrics, /pg_authorize_limit_refusals_total\{transport="http",reason="queue-full"\} [1-9]/)
  assert.match(metrics, /pg_authorize_limit_refusals_total\{transport="(tcp|websocket)",reason="wire-identity"\} [1-9]/)
  assert.match(metrics, /pg_authorize_limit_refusals_total\{transport="http",reason="share-timeout"\} [1-9]/)
  const hash = createHash('sha256').update(alice.sub).digest('hex').slice(0, 16)
  const refusals = logLines.filter((l) => l.includes('refused by a fair-share or session limit'))
  assert.ok(refusals.length > 0)
  for (const l of refusals) {
    const j = JSON.parse(l) as Record<string, unknown>
    assert.equal(j.provider, 'app')
    assert.equal(j.subjectHash, hash)
  }
  const logs = logLines.join('\n')
  assert.ok(!logs.includes(aliceToken) && !logs.includes(alice.sub), 'no token and no raw sub in the logs')
  assert.ok(!JSON.stringify(s.gatewayEvents).includes(aliceToken), 'no token in the events')
})

test('the wire refusal comes before any upstream connection', async () => {
  const held: Array<Awaited<ReturnType<typeof login>>> = []
  try {
    for (let i = 0; i < WIRE_PER_IDENTITY; i++) held.push(await login('tcp', aliceToken))
    assert.ok(held.every((h) => h.client))
    await until(() => s.gateway.wire.sessions() >= WIRE_PER_IDENTITY, 'Alice\'s sessions')
    // Nothing else logs in now: the restricted-role login count must not move for the refused ones.
    await new Promise((r) => setTimeout(r, 300))
    const before = s.restrictedLogins()
    for (let i = 0; i < 5; i++) assert.equal((await login(i % 2 ? 'ws' : 'tcp', aliceToken)).code, '53300')
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(s.restrictedLogins(), before, 'no restricted-role backend was opened for a refused login')
  } finally {
    for (const h of held) await h.close()
  }
  // Closing her sessions frees her slots.
  await until(async () => {
    const l = await login('tcp', aliceToken)
    await l.close()
    return l.client !== undefined
  }, 'a slot after Alice closed her sessions')
})

test('connections still logging in are bounded per client address', async () => {
  // Sockets that never send a startup packet: each sits in the startup phase until its timeout.
  const idle: net.Socket[] = []
  try {
    for (let i = 0; i < STARTUP_PER_ADDRESS; i++) {
      const sock = net.connect(s.gateway.pgPort!, '127.0.0.1')
      sock.on('error', () => {})
      await new Promise((r) => sock.once('connect', r))
      idle.push(sock)
    }
    await new Promise((r) => setTimeout(r, 100))
    const refused = await login('tcp', bobToken)
    assert.equal(refused.code, '53300', String(refused.message))
    assert.match(refused.message!, new RegExp(`still logging in \\(the limit is ${STARTUP_PER_ADDRESS}\\)`))
  } finally {
    for (const sock of idle) sock.destroy()
  }
  await until(async () => {
    const l = await login('tcp', bobToken)
    await l.close()
    return l.client !== undefined
  }, 'a login once the idle connections closed')
  assert.match(await s.gateway.metrics.text(), /pg_authorize_limit_refusals_total\{transport="tcp",reason="startup-address"\} [1-9]/)
})
