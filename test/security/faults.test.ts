/**
 * Faults: the JWKS endpoint down and back, key rotation under load, Postgres restarted under load, the gateway
 * killed in the middle of a batch, pool exhaustion, and thousands of idle or slow connections. Every request
 * settles (a per-request deadline turns a hang into a failure), errors are clean, nothing is partly committed.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import path from 'node:path'
import { rm } from 'node:fs/promises'
import { ensureKeys, loadKeyDir, rotateKeys } from '../../src/keys/keydir.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { freePort } from '../../src/database/embedded.js'
import { withOwner } from '../../src/database/providers.js'
import { startCli } from '../helpers/cli.js'
import { alice, childGateway, startPostgres, startStack, TRANSPORTS, until, type Outcome, type Transport } from './stack.js'
import { tempDir } from '../helpers/fs.js'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

/** A request that does not settle in `ms` is a hang: reported as such instead of stalling the suite. */
function settle(p: Promise<Outcome>, ms = 20_000): Promise<Outcome> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.catch((err: Error): Outcome => ({ ok: false, code: 'CLIENT', message: err.message })),
    new Promise<Outcome>((r) => { timer = setTimeout(() => r({ ok: false, code: 'HANG', message: `no answer in ${ms} ms` }), ms) }),
  ]).finally(() => clearTimeout(timer))
}

const claims = { tenant_id: alice.tenantId, role: 'authenticated' }

test('JWKS down: cached keys keep working, an unknown kid gets a clear error, and the gateway recovers', async () => {
  const dir = await tempDir('pga-jwks-')
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const keys = await ensureKeys(path.join(dir, 'keys'))
  const port = await freePort()
  let jwks: JwksServer = await serveJwks({ dir: keys.dir, port })
  cleanups.push(() => jwks.close())
  const s = await startStack({ jwksUrl: jwks.url, gateway: { databases: { verifier: { jwksCooldownMs: 300, jwksTimeoutMs: 1000 } } } })
  cleanups.push(() => s.close())
  const sign = async () => signToken({ privateJwk: (await loadKeyDir(keys.dir)).current.privateJwk, sub: alice.sub, claims, expiresIn: '10m' })
  for (const t of TRANSPORTS) assert.equal((await s.run(t, await sign(), 'select 1 as one')).ok, true, t)

  await jwks.close()
  // Fresh tokens (no verified-token cache) still verify against the cached key set.
  for (const t of TRANSPORTS) {
    const out = await settle(s.run(t, await sign(), 'select 1 as one'))
    assert.equal(out.ok, true, `${t} with the JWKS down: ${JSON.stringify(out)}`)
  }
  // A key the gateway has never seen cannot be fetched: a clear auth error, not a hang.
  await rotateKeys(keys.dir)
  await new Promise((r) => setTimeout(r, 400)) // past the refetch cooldown
  for (const t of TRANSPORTS) {
    const mark = s.verifierEvents.length
    const out = await settle(s.run(t, await sign(), 'select 1 as one'))
    assert.equal(out.ok, false, t)
    assert.equal(out.code, t === 'http' ? '28000' : '28P01', `${t}: ${JSON.stringify(out)}`)
    const failed = s.verifierEvents.slice(mark).find((e) => e.kind === 'verify-failed')
    assert.ok(failed && failed.kind === 'verify-failed' && ['ERR_JWKS_FETCH_FAILED', 'ERR_JWKS_NO_MATCHING_KEY'].includes(failed.code), JSON.stringify(failed))
  }
  // The endpoint comes back: the new key is fetched and works on every transport.
  jwks = await serveJwks({ dir: keys.dir, port })
  await until(async () => (await s.run('http', await sign(), 'select 1 as one')).ok, 'recovery after the JWKS endpoint is back')
  for (const t of TRANSPORTS) assert.equal((await s.run(t, await sign(), 'select 1 as one')).ok, true, t)
})

test('key rotation during load: no request with a valid token fails', async () => {
  const dir = await tempDir('pga-rot-')
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const keys = await ensureKeys(path.join(dir, 'keys'))
  const jwks = await serveJwks({ dir: keys.dir, port: 0 })
  cleanups.push(() => jwks.close())
  const s = await startStack({ jwksUrl: jwks.url, gateway: { databases: { verifier: { jwksCooldownMs: 200 } } } })
  cleanups.push(() => s.close())
  let current = (await loadKeyDir(keys.dir)).current.privateJwk
  let stop = false
  let requests = 0
  const failures: string[] = []
  const worker = async (i: number) => {
    const t = TRANSPORTS[i % TRANSPORTS.length]!
    while (!stop) {
      const token = await signToken({ privateJwk: current, sub: alice.sub, claims, expiresIn: '10m' })
      const out = await settle(s.run(t, token, 'select auth.user_id() as me'))
      requests++
      if (!out.ok || out.rows[0]!.me !== alice.sub) failures.push(`${t}: ${JSON.stringify(out)}`)
    }
  }
  const workers = Array.from({ length: 6 }, (_, i) => worker(i))
  for (let r = 0; r < 3; r++) {
    await new Promise((res) => setTimeout(res, 1200))
    // The keydir publishes the new key (and keeps the previous one) before anything is signed with it.
    current = (await rotateKeys(keys.dir)).current.privateJwk
  }
  await new Promise((res) => setTimeout(res, 1200))
  stop = true
  await Promise.all(workers)
  console.log(`# key rotation: ${requests} requests across 3 rotations, ${failures.length} failed`)
  assert.deepEqual(failures.slice(0, 5), [])
  assert.ok(requests > 30)
})

test('Postgres restarted during load: in-flight requests fail cleanly, nothing hangs, no partial batch, recovery in seconds', async () => {
  const dir = await tempDir('pga-restart-')
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  let pgServer = await startPostgres(dir, port)
  cleanups.push(() => pgServer.stop())
  const s = await startStack({ postgres: pgServer, poolTimeoutMs: 2000 })
  cleanups.push(() => s.close())
  const token = await s.token()
  let stop = false
  let batches = 0
  const outcomes = { ok: 0, failed: 0, hung: 0 }
  const codes = new Set<string>()
  /** One message per code, with its transport: what an unclean error was, when the assertion below fails. */
  const samples = new Map<string, string>()
  const worker = async (i: number) => {
    const t: Transport = TRANSPORTS[i % TRANSPORTS.length]!
    while (!stop) {
      const tag = `batch-${i}-${batches++}`
      // A batch of two inserts with a pause between: a restart in the middle must not leave one of them.
      const out = t === 'http'
        ? await settle(s.http(token, { queries: [
            { query: 'insert into notes (body) values ($1)', params: [tag] },
            { query: 'select pg_sleep(0.05)', params: [] },
            { query: 'insert into notes (body) values ($1)', params: [tag] },
          ] }, { 'Neon-Batch-Isolation-Level': 'ReadCommitted' }))
        : await settle(s.run(t, token, `begin; insert into notes (body) values ('${tag}'); select pg_sleep(0.05); insert into notes (body) values ('${tag}'); commit`))
      if (out.ok) outcomes.ok++
      else if (out.code === 'HANG') outcomes.hung++
      else {
        outcomes.failed++
        codes.add(out.code)
        if (!samples.has(out.code)) samples.set(out.code, `${t}: ${out.message}`)
      }
      if (!out.ok) await new Promise((r) => setTimeout(r, 100))
    }
  }
  const workers = Array.from({ length: 6 }, (_, i) => worker(i))
  await new Promise((r) => setTimeout(r, 1500))
  await pgServer.stop()
  await new Promise((r) => setTimeout(r, 1000))
  pgServer = await startPostgres(dir, port)
  // Recovery: every transport answers again within seconds.
  for (const t of TRANSPORTS) await until(async () => (await settle(s.run(t, token, 'select 1 as one'), 5000)).ok, `${t} after the restart`, 20_000)
  await new Promise((r) => setTimeout(r, 1000))
  stop = true
  await Promise.all(workers)
  console.log(`# postgres restart: ${JSON.stringify(outcomes)}, error codes ${[...codes].join(', ')}`)
  assert.equal(outcomes.hung, 0, 'a request hung')
  assert.ok(outcomes.failed > 0, 'the restart went unnoticed: the test did not test anything')
  assert.ok(outcomes.ok > 0)
  for (const c of codes) assert.match(c, /^(08|57|53|28|XX|HTTP5|CLIENT)/, `unclean error ${c} (${samples.get(c)})`)
  // The stack's owner connection died with the restart: a new one.
  const partial = await withOwner(s.ownerUrl, (c) =>
    c.query(`select body, count(*)::int as n from notes where body like 'batch-%' group by body having count(*) <> 2`))
  assert.deepEqual(partial.rows, [], 'a batch was partly committed')
})

test('the gateway killed (SIGKILL) in the middle of a batch: the batch commits whole or not at all, never a part', async () => {
  const s = await startStack()
  cleanups.push(() => s.close())
  const token = await s.token()
  const cli = await startCli(['serve', '--database-url', s.ownerUrl, '--port', '0', '--pg-port', '0'], /SQL over HTTP:\s+(\S+)\/sql/)
  cleanups.push(() => cli.stop('SIGKILL'))
  const url = cli.match[1]!
  const batch = fetch(`${url}/sql`, {
    method: 'POST',
    headers: { 'Neon-Connection-String': `postgresql://authenticated@h/${'secdb'}`, Authorization: `Bearer ${token}`, 'Neon-Batch-Isolation-Level': 'ReadCommitted' },
    body: JSON.stringify({ queries: [
      { query: `insert into notes (body) values ('killed-batch')`, params: [] },
      { query: 'select pg_sleep(3)', params: [] },
      { query: `insert into notes (body) values ('killed-batch')`, params: [] },
    ] }),
  }).then(() => 'answered', () => 'connection lost')
  await until(async () => (await s.owner.query(`select 1 from pg_stat_activity where query like '%pg_sleep(3)%' and usename = 'authenticated'`)).rows.length > 0, 'the batch to reach pg_sleep')
  await cli.stop('SIGKILL')
  assert.equal(await batch, 'connection lost')
  // Postgres notices the dead client when the sleep ends; the transaction is rolled back, never committed.
  await until(async () => (await s.owner.query(`select 1 from pg_stat_activity where usename = 'authenticated'`)).rows.length === 0, 'the orphaned backend to end')
  // The gateway writes a batch to Postgres in one go (BEGIN ... COMMIT pipelined), so Postgres may already hold
  // the whole batch when the gateway dies: all of it or none of it, never a part.
  const r = await s.owner.query(`select count(*)::int as n from notes where body = 'killed-batch'`)
  console.log(`# gateway killed mid-batch: ${r.rows[0].n === 0 ? 'rolled back' : 'committed whole'} (${r.rows[0].n} of 2 rows)`)
  assert.ok(r.rows[0].n === 0 || r.rows[0].n === 2, `${r.rows[0].n} of the batch's 2 rows were committed`)
})

test('pool exhaustion: waiting requests get a clear error after the pool timeout, never a hang', async () => {
  const s = await startStack({ poolSize: 1, poolTimeoutMs: 300 })
  cleanups.push(() => s.close())
  const token = await s.token()
  let holderDone = false
  const holder = s.run('http', token, 'select pg_sleep(3), 1 as done').then((o) => { holderDone = true; return o })
  await until(async () => (await s.owner.query(`select 1 from pg_stat_activity where query like '%pg_sleep(3)%'`)).rows.length > 0, 'the pool to be busy')
  // Other users wait (the holder's own further requests would meet its fair share first: see fair-share.test.ts).
  const others = await Promise.all(Array.from({ length: 5 }, (_, i) => s.token({ ...claims, sub: `waiter-${i}` })))
  const waiting = await Promise.all(others.map((t) => settle(s.run('http', t, 'select 1 as one'))))
  assert.equal(holderDone, false, 'the waiting requests should fail before the holder finishes')
  for (const w of waiting) {
    assert.equal(w.ok, false)
    if (!w.ok) {
      assert.equal(w.code, '53300', JSON.stringify(w))
      assert.match(w.message, /timed out .* waiting for a database connection/)
    }
  }
  assert.equal((await holder).ok, true)
  assert.equal((await s.run('http', token, 'select 1 as one')).ok, true, 'the pool recovers')
})

test('2,000 idle wire connections and 200 slowloris HTTP requests: memory stays bounded and real clients are served', async () => {
  const s = await startStack()
  cleanups.push(() => s.close())
  const token = await s.token()
  const { url, pgPort, mem, kill } = await childGateway(s, cleanups)
  const query = async () => {
    const res = await fetch(`${url}/sql`, {
      method: 'POST',
      headers: { 'Neon-Connection-String': 'postgresql://authenticated@h/secdb', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'select auth.user_id() as me', params: [] }),
    })
    return ((await res.json()) as { rows: { me: string }[] }).rows[0]!.me
  }
  assert.equal(await query(), alice.sub)
  const before = await mem()
  const loginsBefore = s.restrictedLogins()

  const sockets: net.Socket[] = []
  const open = (port: number) => new Promise<void>((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => resolve())
    sock.on('error', () => resolve())
    sockets.push(sock)
  })
  for (let i = 0; i < 2000; i += 100) await Promise.all(Array.from({ length: 100 }, () => open(pgPort)))
  // Slowloris: 200 HTTP requests whose headers never finish, and 50 whose body trickles.
  const httpPort = Number(new URL(url).port)
  for (let i = 0; i < 250; i++) await open(httpPort)
  sockets.slice(2000, 2200).forEach((sk) => sk.write('POST /sql HTTP/1.1\r\nHost: x\r\nX-Slow: '))
  sockets.slice(2200).forEach((sk) => sk.write('POST /sql HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{"query":"'))
  assert.equal(s.restrictedLogins(), loginsBefore, 'an unauthenticated connection opened a restricted-role backend')
  // Real clients are still served while all of that is held open.
  assert.equal(await query(), alice.sub)
  const busy = await mem()
  const growthMb = (busy.heapUsed - before.heapUsed) / 2 ** 20
  const rssGrowthMb = (busy.rss - before.rss) / 2 ** 20
  console.log(`# 2,250 idle/slow connections: heap +${growthMb.toFixed(1)} MB, rss +${rssGrowthMb.toFixed(1)} MB`)
  assert.ok(growthMb < 64, `heap grew by ${growthMb.toFixed(1)} MB`)
  assert.ok(rssGrowthMb < 256, `rss grew by ${rssGrowthMb.toFixed(1)} MB`)
  for (const sk of sockets) sk.destroy()
  kill()
})
