/**
 * Running it in production: metrics, logs, audit, readiness, graceful shutdown, reload, scale-out.
 * The gateway runs as a real `pg-authorize serve` child process where signals and logs matter.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { freePort } from '../../src/database/embedded.js'
import { DEMO_USERS, demoClaims, loadDemo } from '../../src/dev/demo.js'
import { ensureKeys, generateSigningKey, toPublicJwk, type KeyDir } from '../../src/keys/index.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { startGateway } from '../../src/gateway/gateway.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { ATTACK_TOKENS, goodClaims } from '../security/attack-tokens.js'
import { startCli } from '../helpers/cli.js'

const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]
const METRICS_TOKEN = 'metrics-token-7f3a9c'

let db: TestDatabase
let keys: KeyDir
let jwks: JwksServer

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  await loadDemo(db.url)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pga-ops-'))
  await chmod(dir, 0o755)
  keys = await ensureKeys(path.join(dir, 'keys'))
  jwks = await serveJwks({ dir: keys.dir, port: 0 })
  await withOwner(db.url, (c) => addProvider(c, { name: 'local', jwksUrl: jwks.url, roles: ['authenticated', 'anonymous'] }))
})
after(async () => {
  await jwks?.close()
  await db?.close()
})

const token = (user = alice, extra: Record<string, unknown> = {}) => {
  const { sub, ...claims } = demoClaims(user)
  return signToken({ privateJwk: keys.current.privateJwk, sub: sub as string, claims: { ...claims, ...extra }, expiresIn: '10m' })
}

async function sqlOver(base: string, tok: string | undefined, query: string, params: unknown[] = []): Promise<Response> {
  return fetch(`${base}/sql`, {
    method: 'POST',
    headers: {
      'neon-connection-string': `postgresql://authenticated@x/${db.database}`,
      'neon-array-mode': 'true',
      'neon-raw-text-output': 'true',
      ...(tok ? { authorization: `Bearer ${tok}` } : {}),
    },
    body: JSON.stringify({ query, params }),
  })
}

async function serve(extra: string[] = []) {
  const port = await freePort()
  const pgPort = await freePort()
  const proc = await startCli(
    ['serve', '--database-url', db.url, '--port', String(port), '--pg-port', String(pgPort), '--metrics-token', METRICS_TOKEN, ...extra],
    /gateway ready/,
    { env: { PG_AUTHORIZE_LOG_LEVEL: 'debug' } },
  )
  return { ...proc, base: `http://127.0.0.1:${port}`, port, pgPort }
}

/** Minimal Prometheus text-format check: every line is a comment, blank, or `name{labels} value`. */
function parseProm(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? ([-+]?(?:[0-9.]+(?:e[-+]?\d+)?|[Nn]a[Nn]|Inf))(?: \d+)?$/.exec(line)
    assert.ok(m, `not Prometheus text: ${line}`)
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]))
  }
  return samples
}

test('/metrics parses as Prometheus text, needs its token, and its counters move with real traffic', async () => {
  const gw = await serve()
  try {
    const scrape = async () => {
      const r = await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type') ?? '', /text\/plain/)
      return parseProm(await r.text())
    }
    assert.equal((await fetch(`${gw.base}/metrics`)).status, 401)
    assert.equal((await fetch(`${gw.base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
    const before = await scrape()
    const ok = 'pg_authorize_requests_total{transport="http",outcome="ok"}'
    const unauthorized = 'pg_authorize_requests_total{transport="http",outcome="unauthorized"}'
    const tok = await token()
    for (let i = 0; i < 5; i++) assert.equal((await sqlOver(gw.base, tok, 'select id from users')).status, 200)
    assert.equal((await sqlOver(gw.base, tok.slice(0, -4) + 'AAAA', 'select 1')).status, 400)
    assert.equal((await sqlOver(gw.base, undefined, 'select 1')).status, 400)
    // One wire session.
    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'authenticated', database: db.database, password: tok })
    await c.connect()
    const wireSessions = (await scrape()).get('pg_authorize_wire_sessions')
    await c.end()
    const afterS = await scrape()
    assert.equal((afterS.get(ok) ?? 0) - (before.get(ok) ?? 0), 5)
    assert.equal((afterS.get(unauthorized) ?? 0) - (before.get(unauthorized) ?? 0), 2)
    assert.ok((afterS.get('pg_authorize_verification_failures_total{code="ERR_JWT_SIGNATURE_INVALID"}') ?? 0) >= 1)
    assert.ok((afterS.get('pg_authorize_requests_total{transport="tcp",outcome="ok"}') ?? 0) >= 1)
    assert.equal(wireSessions, 1)
    assert.ok((afterS.get('pg_authorize_verify_duration_seconds_count') ?? 0) >= 6)
    assert.ok((afterS.get('pg_authorize_query_duration_seconds_count') ?? 0) >= 5)
    assert.ok((afterS.get('pg_authorize_pool_wait_seconds_count') ?? 0) >= 5)
    assert.ok([...afterS.keys()].some((k) => k.startsWith('pg_authorize_pool_connections{')))
    assert.ok([...afterS.keys()].some((k) => k.startsWith('pg_authorize_jwks_fetches_total{provider="local"')))
    assert.ok([...afterS.keys()].some((k) => k.startsWith('pg_authorize_jwks_age_seconds{')))
  } finally {
    await gw.stop()
  }
})

test('/metrics on a separate port, /health and /ready', async () => {
  const gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false, metrics: { port: 0 } })
  try {
    assert.ok(gw.metricsUrl)
    parseProm(await (await fetch(gw.metricsUrl!)).text())
    // Not on the public port without a token, and the 404 says where it is.
    const off = await fetch(`${gw.url}/metrics`)
    assert.equal(off.status, 404)
    const offBody = (await off.json()) as { code: string; message: string }
    assert.equal(offBody.code, '42704')
    assert.match(offBody.message, /--metrics-port/)
    assert.match(offBody.message, /--metrics-token/)
    const health = await fetch(`${gw.url}/health`)
    assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }])
    assert.equal((await fetch(`${gw.url}/health`, { method: 'POST' })).status, 405)
    // One router answers every path of the port: an unknown one gets the JSON 404 with CORS.
    const unknown = await fetch(`${gw.url}/nope`)
    assert.equal(unknown.status, 404)
    assert.equal(unknown.headers.get('access-control-allow-origin'), '*')
    assert.equal(((await unknown.json()) as { code: string }).code, '42704')
    const ready = await fetch(`${gw.url}/ready`)
    assert.equal(ready.status, 200)
    assert.deepEqual(await ready.json(), { status: 'ready', ready: true, database: true, providers: true })
  } finally {
    await gw.close()
  }
  // Not ready while no provider is registered.
  const other = await createTestDatabase()
  try {
    await setup(other.url)
    const gw2 = await startGateway({ databaseUrl: other.url, port: 0, pgPort: false })
    try {
      // Metrics are off altogether: the 404 says how to turn them on.
      const off2 = await fetch(`${gw2.url}/metrics`)
      assert.equal(off2.status, 404)
      assert.match(((await off2.json()) as { message: string }).message, /off.*--metrics-token.*--metrics-port/s)
      const r = await fetch(`${gw2.url}/ready`)
      assert.equal(r.status, 503)
      assert.equal(((await r.json()) as { providers: boolean }).providers, false)
    } finally {
      await gw2.close()
    }
  } finally {
    await other.close()
  }
})

test('logs are JSON with request ids, and hold no token, key, password or query parameter after the attack corpus', async () => {
  const gw = await serve(['--audit', '--audit-table'])
  const secrets: string[] = []
  try {
    const good = await token()
    const other = await token(bob)
    const forged = good.slice(0, good.lastIndexOf('.') + 1) + 'x'.repeat(40)
    const foreign = await signToken({ privateJwk: (await generateSigningKey({ alg: 'ES256' })).privateJwk, sub: alice.sub, expiresIn: '5m' })
    const paramSecret = 'param-secret-91b2c'
    secrets.push(good, other, forged, foreign, paramSecret, METRICS_TOKEN)
    // Signature parts alone must not leak either.
    for (const t of [good, other, foreign]) secrets.push(t.split('.')[2]!)
    await sqlOver(gw.base, good, 'select $1::text as x', [paramSecret])
    await sqlOver(gw.base, other, `insert into users (tenant_id, id, name, email) values ($1, $2, 'x', $3)`, [alice.tenantId, alice.sub.replace(/.$/, '0'), paramSecret])
    await sqlOver(gw.base, forged, 'select 1')
    await sqlOver(gw.base, foreign, 'select 1')
    await sqlOver(gw.base, good, `select set_config('pg_authorize.session', $1, false)`, [paramSecret])
    await sqlOver(gw.base, 'not.a.jwt', 'select 1')
    await sqlOver(gw.base, good, 'select nope from nowhere')
    for (const password of [forged, good, 'wrong']) {
      const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'authenticated', database: db.database, password })
      await c.connect().then(() => c.query('select $1::text', [paramSecret])).catch(() => {})
      await c.end().catch(() => {})
    }
    await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    // The security suite's whole attack corpus, over HTTP and the wire protocol.
    const ctx = {
      keys: {
        rs: await generateSigningKey({ alg: 'RS256' }),
        es: await generateSigningKey({ alg: 'ES256' }),
        ed: await generateSigningKey({ alg: 'EdDSA' }),
      },
      valid: '',
    }
    ctx.valid = await signToken({ privateJwk: ctx.keys.rs.privateJwk, claims: goodClaims(), expiresIn: '5m' })
    for (const attack of ATTACK_TOKENS) {
      const t = attack.make(ctx)
      if (t.length >= 20) secrets.push(t)
      const sig = t.split('.')[2] ?? ''
      if (sig.length >= 20) secrets.push(sig)
      await sqlOver(gw.base, t, 'select 1').catch(() => {})
      const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'authenticated', database: db.database, password: t })
      await c.connect().catch(() => {})
      await c.end().catch(() => {})
    }
    // The database's own secrets.
    const rows = await withOwner(db.url, async (c) => {
      const creds = await c.query<{ password: string }>('select password from pgauthorize.role_credentials')
      const key = await c.query<{ key: Buffer }>('select key from pgauthorize.sealing_key where retire_at is null')
      return { passwords: creds.rows.map((r) => r.password), key: key.rows[0]!.key }
    })
    secrets.push(...rows.passwords, rows.key.toString('hex'), rows.key.toString('base64'), rows.key.toString('base64url'))
    secrets.push(decodeURIComponent(new URL(db.url).password))
    await new Promise((r) => setTimeout(r, 1500)) // the audit table flushes every second
  } finally {
    await gw.stop()
  }
  const output = gw.output()
  for (const s of secrets) assert.ok(!output.includes(s), `a secret appears in the logs (length ${s.length})`)
  const lines = output.split('\n').filter((l) => l.startsWith('{'))
  assert.ok(lines.length > 10)
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const requests = records.filter((r) => r.msg === 'request')
  assert.ok(requests.length >= 7)
  for (const r of requests) assert.match(String(r.requestId), /^[0-9a-f-]{36}$/)
  assert.ok(records.some((r) => r.msg === 'wire authentication failed' && r.code === 'ERR_JWT_SIGNATURE_INVALID'))
  assert.ok(records.some((r) => r.msg === 'audit'))
  // The audit table: verified identities only, no token anywhere.
  const audit = await withOwner(db.url, (c) => c.query('select * from pgauthorize.audit_log order by id'))
  assert.ok(audit.rows.length >= 3, `audit rows: ${audit.rows.length}`)
  assert.ok(audit.rows.some((r) => r.subject === alice.sub && r.provider === 'local' && r.transport === 'http' && r.statement === 'SELECT' && r.outcome === 'ok'))
  assert.ok(audit.rows.some((r) => r.subject === bob.sub && r.statement === 'INSERT' && r.outcome === 'sql_error' && r.code === '42501'))
  assert.ok(audit.rows.some((r) => r.transport === 'tcp' && r.statement === 'SESSION'))
  const dump = JSON.stringify(audit.rows)
  for (const s of secrets) assert.ok(!dump.includes(s))
})

test('SIGTERM during load: requests in flight complete, new ones are refused, the process exits 0', async () => {
  const gw = await serve(['--shutdown-timeout', '20000'])
  const tok = await token()
  const inflight = Array.from({ length: 8 }, () => sqlOver(gw.base, tok, 'select pg_sleep(1.5), 42 as answer').then(async (r) => ({ status: r.status, body: await r.text() }), (e: Error) => ({ status: 0, body: String((e.cause as Error)?.message ?? e) + ' ' + gw.output().slice(-3000) })))
  // Only requests the gateway is already running are "in flight": wait until all 8 sleep in Postgres.
  for (let i = 0; i < 200; i++) {
    const n = await withOwner(db.url, async (c) =>
      (await c.query(`select count(*)::int as n from pg_stat_activity where usename = 'authenticated' and query like '%pg_sleep(1.5)%' and state = 'active'`)).rows[0].n)
    if (n === 8) break
    await new Promise((r) => setTimeout(r, 25))
  }
  const exited = gw.stop('SIGTERM')
  await new Promise((r) => setTimeout(r, 200))
  const late = await sqlOver(gw.base, tok, 'select 1').then((r) => r.status, () => 'refused')
  const results = await Promise.all(inflight)
  for (const r of results) {
    assert.equal(r.status, 200, r.body)
    assert.match(r.body, /"42"/)
  }
  assert.ok(late === 'refused' || late === 503, `a new request after SIGTERM got ${late}`)
  assert.equal(await exited, 0)
})

test('SIGHUP picks up a new provider (even with change notifications off)', async () => {
  const gw = await serve()
  try {
    const key = await generateSigningKey({ alg: 'EdDSA', kid: 'hup-key' })
    const tok = await signToken({ privateJwk: key.privateJwk, sub: alice.sub, claims: { tenant_id: alice.tenantId }, expiresIn: '5m' })
    assert.equal((await sqlOver(gw.base, tok, 'select 1')).status, 400)
    // Add the provider without NOTIFY, so only the reload can bring it in.
    await withOwner(db.url, async (c) => {
      await c.query('alter table pgauthorize.providers disable trigger providers_changed')
      try {
        await addProvider(c, { name: 'hup', jwks: { keys: [toPublicJwk(key.publicJwk) as Record<string, unknown>] }, roles: ['authenticated'] })
      } finally {
        await c.query('alter table pgauthorize.providers enable trigger providers_changed')
      }
    })
    await new Promise((r) => setTimeout(r, 300))
    assert.equal((await sqlOver(gw.base, tok, 'select 1')).status, 400, 'picked up without a reload')
    gw.signal('SIGHUP')
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100))
      status = (await sqlOver(gw.base, tok, 'select auth.user_id()')).status
    }
    assert.equal(status, 200)
    assert.match(gw.output(), /configuration and providers reloaded/)
  } finally {
    await gw.stop()
    await withOwner(db.url, (c) => c.query(`delete from pgauthorize.providers where name = 'hup'`))
  }
})

test('scale-out: two gateways share providers; one added through the database reaches both', async () => {
  const a = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
  const b = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
  try {
    const key = await generateSigningKey({ alg: 'ES256', kid: 'scale-key' })
    const tok = await signToken({ privateJwk: key.privateJwk, sub: alice.sub, claims: { tenant_id: alice.tenantId }, expiresIn: '5m' })
    for (const gw of [a, b]) assert.equal((await sqlOver(gw.url, tok, 'select 1')).status, 400)
    const t0 = Date.now()
    await withOwner(db.url, (c) => addProvider(c, { name: 'scale', jwks: { keys: [toPublicJwk(key.publicJwk) as Record<string, unknown>] }, roles: ['authenticated'] }))
    const seen: number[] = []
    for (const gw of [a, b]) {
      let status = 0
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await sqlOver(gw.url, tok, 'select auth.user_id() as u')).status
        if (status !== 200) await new Promise((r) => setTimeout(r, 50))
      }
      assert.equal(status, 200)
      seen.push(Date.now() - t0)
    }
    // Recorded, not asserted (shared machine): how long the change took to reach both instances.
    console.log(`# provider change reached both gateways after ${Math.max(...seen)} ms`)
  } finally {
    await a.close()
    await b.close()
    await withOwner(db.url, (c) => c.query(`delete from pgauthorize.providers where name = 'scale'`))
  }
})

test('the gateway\'s Node fast path cancels the backend query when the client goes away', async () => {
  const gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
  try {
    const tok = await token()
    const controller = new AbortController()
    const pending = fetch(`${gw.url}/sql`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'neon-connection-string': `postgresql://authenticated@x/${db.database}`, authorization: `Bearer ${tok}` },
      body: JSON.stringify({ query: 'select pg_sleep(30), 1 as fastpath_probe', params: [] }),
    }).catch((e: Error) => e.name)
    const running = async () =>
      withOwner(db.url, async (c) =>
        (await c.query(`select count(*)::int as n from pg_stat_activity where query like '%fastpath_probe%' and state = 'active' and pid <> pg_backend_pid()`)).rows[0].n as number)
    for (let i = 0; i < 200 && (await running()) === 0; i++) await new Promise((r) => setTimeout(r, 25))
    assert.equal(await running(), 1)
    controller.abort()
    assert.equal(await pending, 'AbortError')
    let n = 1
    for (let i = 0; i < 200 && n > 0; i++) {
      await new Promise((r) => setTimeout(r, 25))
      n = await running()
    }
    assert.equal(n, 0, 'the backend query still runs after the client left')
  } finally {
    await gw.close()
  }
})
