/**
 * `serve --workers 2` (issue 18): a real `pg-authorize serve` child with two cluster workers, real
 * Postgres, real clients. Both workers serve /sql and the wire port; a wire cancel reaches the session
 * whichever worker accepts it; a provider added through the database reaches both; SIGHUP reloads both;
 * /metrics sums both; SIGTERM drains both and the primary exits 0 only after they have exited.
 *
 * Which worker serves what is read from the outside: HTTP request log lines carry the worker's `pid`, and
 * the wire gateway hands out process ids `≡ worker index (mod 2)` (BackendKeyData, `client.processID`).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { freePort } from '../../src/database/embedded.js'
import { DEMO_USERS, demoClaims, loadDemo } from '../../src/dev/demo.js'
import { ensureKeys, type KeyDir } from '../../src/keys/index.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { startCli } from '../helpers/cli.js'

const alice = DEMO_USERS[0]!
const METRICS_TOKEN = 'metrics-token-workers-51c2'

let db: TestDatabase
let keys: KeyDir
let jwks: JwksServer
let dir: string

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  await loadDemo(db.url)
  dir = await mkdtemp(path.join(os.tmpdir(), 'pga-workers-'))
  await chmod(dir, 0o755)
  keys = await ensureKeys(path.join(dir, 'keys'))
  jwks = await serveJwks({ dir: keys.dir, port: 0 })
  await withOwner(db.url, (c) => addProvider(c, { name: 'local', jwksUrl: jwks.url, roles: ['authenticated'] }))
})
after(async () => {
  await jwks?.close()
  await db?.close()
})

const tokenFor = (k: KeyDir, extra: Record<string, unknown> = {}) => {
  const { sub, ...claims } = demoClaims(alice)
  return signToken({ privateJwk: k.current.privateJwk, sub: sub as string, claims: { ...claims, ...extra }, expiresIn: '10m' })
}

async function serve() {
  const port = await freePort()
  const pgPort = await freePort()
  const proc = await startCli(
    ['serve', '--database-url', db.url, '--port', String(port), '--pg-port', String(pgPort), '--metrics-token', METRICS_TOKEN, '--workers', '2'],
    /gateway ready/,
    { env: { PG_AUTHORIZE_LOG_LEVEL: 'debug' } },
  )
  return { ...proc, base: `http://127.0.0.1:${port}`, port, pgPort }
}

/** POST /sql on a connection of its own (so the cluster's round robin spreads requests over the workers). */
function sqlOnNewConnection(port: number, tok: string, query: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query, params: [] })
    const req = http.request({
      host: '127.0.0.1', port, path: '/sql', method: 'POST', agent: false,
      headers: {
        'content-type': 'application/json',
        'neon-connection-string': `postgresql://authenticated@x/${db.database}`,
        'neon-array-mode': 'true',
        'neon-raw-text-output': 'true',
        authorization: `Bearer ${tok}`,
        connection: 'close',
      },
    }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** JSON log lines of the child whose `msg` is `msg`. */
function logLines(output: string, msg: string): Array<{ pid: number; [k: string]: unknown }> {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { pid: number; msg: string }).filter((l) => l.msg === msg)
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Wire sessions until there is one on each worker (process id mod 2); the others are closed. */
async function oneSessionPerWorker(pgPort: number, password: string): Promise<pg.Client[]> {
  const byWorker: pg.Client[] = []
  for (let i = 0; i < 10 && (!byWorker[0] || !byWorker[1]); i++) {
    const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'authenticated', database: db.database, password })
    await c.connect()
    const w = (c as unknown as { processID: number }).processID % 2
    if (byWorker[w]) await c.end()
    else byWorker[w] = c
  }
  assert.ok(byWorker[0] && byWorker[1], 'wire sessions landed on both workers')
  return byWorker
}

function sendCancel(pgPort: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const b = Buffer.alloc(16)
    b.writeInt32BE(16, 0)
    b.writeInt32BE(80877102, 4)
    b.writeInt32BE(processId, 8)
    b.writeInt32BE(secretKey, 12)
    const s = net.connect(pgPort, '127.0.0.1', () => s.end(b))
    s.on('error', reject)
    s.on('close', () => resolve())
  })
}

function parseProm(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    samples.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return samples
}

test('two workers: both serve /sql and the wire port, cancels are routed, /metrics sums, SIGHUP reaches both, SIGTERM drains', async () => {
  const gw = await serve()
  let stopped = false
  try {
    assert.match(gw.output(), /gateway ready \(2 workers\)/)
    const tok = await tokenFor(keys)

    // /sql: six requests, each on a new connection, all Alice's one row; served by two processes.
    const scrape = async () => {
      const r = await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
      assert.equal(r.status, 200)
      return parseProm(await r.text())
    }
    const ok = 'pg_authorize_requests_total{transport="http",outcome="ok"}'
    const before = (await scrape()).get(ok) ?? 0
    for (let i = 0; i < 6; i++) {
      const r = await sqlOnNewConnection(gw.port, tok, 'select id from users')
      assert.equal(r.status, 200, r.body)
      assert.deepEqual((JSON.parse(r.body) as { rows: unknown[] }).rows, [[alice.sub]])
    }
    const servedBy = await until('request log lines', () => {
      const lines = logLines(gw.output(), 'request')
      return lines.length >= 6 ? new Set(lines.map((l) => l.pid)) : undefined
    })
    assert.equal(servedBy.size, 2, 'HTTP requests were served by both workers')
    // /metrics sums both workers: every one of the six requests is counted, whichever worker answers.
    assert.equal(((await scrape()).get(ok) ?? 0) - before, 6)

    // Wire: a session on each worker, each sees Alice's row.
    const [s0, s1] = await oneSessionPerWorker(gw.pgPort, tok)
    for (const c of [s0!, s1!]) assert.deepEqual((await c.query('select id from users')).rows, [{ id: alice.sub }])
    assert.equal((await scrape()).get('pg_authorize_wire_sessions'), 2)

    // Cancels, each on a new connection, two in a row for each session in turn, until one has landed on the
    // worker that does not own its session (the primary logs each one it routes): every one must cancel.
    const routed = () => logLines(gw.output(), 'wire cancel routed to the worker that owns the session').length
    for (let round = 0; round < 16 && (round < 4 || routed() === 0); round++) {
      // Two in a row per session: the round robin hands consecutive connections to alternate workers.
      const c = Math.floor(round / 2) % 2 === 0 ? s0! : s1!
      // 57014 with "user request": the cancel, not the gateway's statement timeout (the same SQLSTATE).
      const running = c.query('select pg_sleep(30)').then(() => 'finished', (e: { code?: string; message?: string }) => `${e.code} ${e.message}`)
      await until('the query to be running', async () =>
        (await withOwner(db.url, (o) => o.query(`select 1 from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'`))).rowCount! >= 1 ? true : undefined,
        60_000,
      )
      const internals = c as unknown as { processID: number; secretKey: number }
      await sendCancel(gw.pgPort, internals.processID, internals.secretKey)
      assert.equal(await running, '57014 canceling statement due to user request', `cancel ${round + 1} cancelled the query`)
    }
    assert.ok(routed() >= 1, 'at least one cancel crossed workers')

    // A provider added through the database (as `providers add` does) reaches both workers.
    const keys2 = await ensureKeys(path.join(dir, 'keys2'))
    const jwks2 = await serveJwks({ dir: keys2.dir, port: 0 })
    try {
      await withOwner(db.url, (c) => addProvider(c, { name: 'second', jwksUrl: jwks2.url, roles: ['authenticated'] }))
      const tok2 = await tokenFor(keys2)
      const seen = new Set<number>()
      await until('sessions with the new provider on both workers', async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'authenticated', database: db.database, password: tok2 })
        try {
          await c.connect()
          assert.deepEqual((await c.query('select id from users')).rows, [{ id: alice.sub }])
          seen.add((c as unknown as { processID: number }).processID % 2)
        } catch {
          // this worker has not heard the NOTIFY yet
        } finally {
          await c.end().catch(() => {})
        }
        return seen.size === 2 ? true : undefined
      })
    } finally {
      await jwks2.close()
    }
    await s0!.end()
    await s1!.end()

    // SIGHUP goes to the primary, which forwards it: both workers reload.
    const reloadedBefore = logLines(gw.output(), 'configuration and providers reloaded').length
    gw.signal('SIGHUP')
    const reloaders = await until('both workers to reload', () => {
      const lines = logLines(gw.output(), 'configuration and providers reloaded').slice(reloadedBefore)
      return new Set(lines.map((l) => l.pid)).size === 2 ? new Set(lines.map((l) => l.pid)) : undefined
    })
    assert.deepEqual(reloaders, servedBy)

    // SIGTERM: requests in flight on both workers finish; the primary exits 0 after both workers exited.
    const slow = [0, 1].map(() => sqlOnNewConnection(gw.port, tok, 'select pg_sleep(1) is null as slept'))
    await until('two slow requests in flight', async () =>
      (await withOwner(db.url, (o) => o.query(`select 1 from pg_stat_activity where query like '%pg_sleep(1)%' and state = 'active' and pid <> pg_backend_pid()`))).rowCount === 2 ? true : undefined,
    )
    const code = await gw.stop('SIGTERM')
    stopped = true
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200, r.body)
    assert.equal(code, 0)
    for (const pid of servedBy) {
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} has exited before the primary`)
    }
  } finally {
    if (!stopped) await gw.stop('SIGKILL')
  }
})
