/**
 * Real clients through the wire gateway over TCP: pg, postgres.js and psql. Prepared statements, COPY,
 * LISTEN/NOTIFY, transactions with rollback, cancel, bad credentials (nothing opened upstream) and expiry.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import net from 'node:net'
import pg from 'pg'
import postgres from 'postgres'
import { GOOD_PASSWORD, startHarness, type Harness } from './harness.js'
import { needs, PSQL } from '../../helpers/requires.js'

let h: Harness

before(async () => {
  h = await startHarness()
  const c = new pg.Client(h.db.url)
  await c.connect()
  await c.query(`create table items (id int primary key, name text not null)`)
  await c.query(`insert into items select g, 'item ' || g from generate_series(1, 5) g`)
  await c.end()
})

after(async () => {
  await h?.close()
})

async function noSessionsLeft(): Promise<void> {
  await h.until(async () => h.gateway.sessions() === 0 && (await h.upstreamConnections()) === 0, 'sessions to end')
}

test('pg: simple and prepared statements, with upstream ParameterStatus and the startup settings', async () => {
  const c = new pg.Client({ connectionString: h.url(), application_name: 'wire-test-app' })
  await c.connect()
  try {
    const r = await c.query<{ app: string; ds: string; n: string }>(
      `select current_setting('application_name') as app, current_setting('DateStyle') as ds, count(*) as n from items`,
    )
    assert.deepEqual(r.rows, [{ app: 'wire-test-app', ds: 'ISO, MDY', n: '5' }])
    for (const id of [2, 4]) {
      const p = await c.query({ name: 'by_id', text: 'select name from items where id = $1', values: [id] })
      assert.deepEqual(p.rows, [{ name: `item ${id}` }])
    }
    // The client sees the gateway's key data, not the upstream's.
    const pid = (c as unknown as { processID: number }).processID
    const up = await c.query<{ pid: number }>('select pg_backend_pid() as pid')
    assert.notEqual(pid, up.rows[0]!.pid)
    assert.equal(h.gateway.sessions(), 1)
    assert.equal(h.requests.at(-1)!.startupParameters.application_name, 'wire-test-app')
  } finally {
    await c.end()
  }
  await noSessionsLeft()
})

test('pg: interactive transaction with rollback, and errors keep the session usable', async () => {
  const c = new pg.Client(h.url())
  await c.connect()
  try {
    await c.query('begin')
    await c.query(`insert into items values (100, 'temporary')`)
    assert.equal((await c.query('select count(*)::int as n from items')).rows[0].n, 6)
    await c.query('rollback')
    assert.equal((await c.query('select count(*)::int as n from items')).rows[0].n, 5)
    await assert.rejects(c.query('select * from no_such_table'), { code: '42P01' })
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1)
  } finally {
    await c.end()
  }
})

test('pg: LISTEN/NOTIFY across two gateway sessions', async () => {
  const listener = new pg.Client(h.url())
  const notifier = new pg.Client(h.url())
  await listener.connect()
  await notifier.connect()
  try {
    const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve))
    await listener.query('listen wire_channel')
    await notifier.query(`select pg_notify('wire_channel', 'hello')`)
    const n = await got
    assert.equal(n.channel, 'wire_channel')
    assert.equal(n.payload, 'hello')
  } finally {
    await listener.end()
    await notifier.end()
  }
})

/** Sends a raw CancelRequest to the gateway with the key data the client was given. */
function rawCancel(processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(h.port, '127.0.0.1')
    const b = Buffer.alloc(16)
    b.writeInt32BE(16, 0)
    b.writeInt32BE(80877102, 4)
    b.writeInt32BE(processId, 8)
    b.writeInt32BE(secretKey, 12)
    s.on('error', reject)
    s.on('close', () => resolve())
    s.end(b)
  })
}

test('pg: a CancelRequest with the gateway key data cancels pg_sleep(10) upstream; a wrong key does not', async () => {
  const c = new pg.Client(h.url())
  await c.connect()
  try {
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number }
    const sleeping = c.query('select pg_sleep(10)')
    await waitForActiveSleep()
    await rawCancel(processID, secretKey ^ 1) // wrong secret: ignored
    await rawCancel(processID, secretKey)
    await assert.rejects(sleeping, { code: '57014' })
    assert.ok(h.events.some((e) => e.kind === 'cancel' && e.matched === false))
    assert.equal((await c.query('select 2 as two')).rows[0].two, 2)
  } finally {
    await c.end()
  }
})

async function waitForActiveSleep(): Promise<void> {
  const admin = new pg.Client(h.db.adminUrl)
  await admin.connect()
  try {
    await h.until(async () => {
      const r = await admin.query(`select 1 from pg_stat_activity where state = 'active' and query like 'select pg_sleep%'`)
      return r.rowCount! > 0
    }, 'pg_sleep to be running')
  } finally {
    await admin.end()
  }
}

test('postgres.js: prepared statements, COPY TO STDOUT, transaction rollback and query.cancel()', async () => {
  const sql = postgres(h.url(), { max: 1, prepare: true, onnotice: () => {} })
  try {
    for (const id of [1, 3]) {
      const rows = await sql`select name from items where id = ${id}`
      assert.deepEqual([...rows], [{ name: `item ${id}` }])
    }
    const stream = await sql`copy (select id, name from items order by id) to stdout`.readable()
    let text = ''
    for await (const chunk of stream) text += chunk.toString()
    assert.equal(text.trim().split('\n').length, 5)
    assert.match(text, /^1\titem 1\n/)
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`insert into items values (200, 'rolled back')`
        throw new Error('abort')
      }),
      /abort/,
    )
    assert.equal((await sql`select count(*)::int as n from items where id = 200`)[0]!.n, 0)
    const q = sql`select pg_sleep(10)`
    const outcome = q.then(
      () => 'finished',
      (e: { code?: string }) => e.code,
    )
    await waitForActiveSleep()
    q.cancel()
    assert.equal(await outcome, '57014')
  } finally {
    await sql.end({ timeout: 5 })
  }
})

/** Runs psql asynchronously (the gateway runs in this process, so a sync spawn would deadlock it). */
function psql(args: string[], password: string): Promise<{ status: number; stdout: string; stderr: string }> {
  const url = `postgresql://postgres@127.0.0.1:${h.port}/${h.db.database}`
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', url, ...args],
      { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
    )
  })
}

test('psql: queries, COPY TO STDOUT and a prepared statement with the JWT in PGPASSWORD', { skip: needs(PSQL) }, async () => {
  const ok = await psql(
    [
      '-c', 'select count(*) from items',
      '-c', 'copy (select id from items where id <= 2 order by id) to stdout',
      '-c', 'prepare q(int) as select name from items where id = $1',
      '-c', 'execute q(3)',
    ],
    GOOD_PASSWORD,
  )
  assert.equal(ok.status, 0, ok.stderr)
  assert.deepEqual(ok.stdout.trim().split('\n'), ['5', '1', '2', 'PREPARE', 'item 3'])
  const bad = await psql(['-c', 'select 1'], 'not-the-jwt')
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /FATAL: +JWT verification failed/)
  assert.doesNotMatch(bad.stderr, /not-the-jwt/)
})

test('bad credentials: FATAL 28P01 at authentication and nothing opened upstream', async () => {
  await noSessionsLeft()
  const before = h.requests.length
  for (const [user, password] of [
    ['postgres', 'wrong'],
    ['not_allowed', GOOD_PASSWORD],
  ] as const) {
    const c = new pg.Client(h.url(user, password))
    c.on('error', () => {})
    const err = (await c.connect().then(
      () => assert.fail('connect should fail'),
      (e: unknown) => e,
    )) as { code: string; severity: string; message: string }
    assert.equal(err.code, '28P01')
    assert.equal(err.severity, 'FATAL')
    assert.doesNotMatch(err.message, new RegExp(password))
    assert.equal(await h.upstreamConnections(), 0)
  }
  assert.equal(h.requests.length, before + 2)
  assert.equal(h.gateway.sessions(), 0)
})

test('expiry: the session is ended with a FATAL at exp, and the upstream connection is closed', async () => {
  h.identity = { expiresAt: Math.floor(Date.now() / 1000) + 2 }
  const c = new pg.Client(h.url())
  const fatal = new Promise<{ code: string; message: string; severity: string }>((resolve) =>
    c.on('error', (e) => resolve(e as unknown as { code: string; message: string; severity: string })),
  )
  try {
    await c.connect()
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1)
    const err = await fatal
    assert.equal(err.code, '28000')
    assert.equal(err.severity, 'FATAL')
    assert.match(err.message, /expired/)
    await assert.rejects(c.query('select 1'))
    await noSessionsLeft()
    assert.ok(h.events.some((e) => e.kind === 'session-expired'))
  } finally {
    h.identity = {}
    await c.end().catch(() => {})
  }
})

test('expiry during a running query: the query gets the FATAL and is cancelled upstream', async () => {
  h.identity = { expiresAt: Math.floor(Date.now() / 1000) + 2 }
  const c = new pg.Client(h.url())
  c.on('error', () => {})
  try {
    await c.connect()
    // pg_sleep(60) outlives the polling bound below: the upstream only goes away this fast if cancelled.
    const err = (await c.query('select pg_sleep(60)').then(
      () => assert.fail('the query should not finish'),
      (e: unknown) => e,
    )) as { code: string; message: string }
    assert.equal(err.code, '28000')
    assert.match(err.message, /expired/)
    await noSessionsLeft()
  } finally {
    h.identity = {}
    await c.end().catch(() => {})
  }
})
