/**
 * The wire protocol over WebSocket: @neondatabase/serverless Pool and Client (pipelined connect, the
 * default) and drizzle-orm neon-serverless with db.transaction, pointed at the gateway with wsProxy.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Client, neonConfig, Pool } from '@neondatabase/serverless'
import { eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/neon-serverless'
import { integer, pgTable, text } from 'drizzle-orm/pg-core'
import pg from 'pg'
import ws from 'ws'
import { GOOD_PASSWORD, startHarness, type Harness } from './harness.js'

let h: Harness

const items = pgTable('items', { id: integer('id').primaryKey(), name: text('name').notNull() })

before(async () => {
  h = await startHarness()
  const c = new pg.Client(h.db.url)
  await c.connect()
  await c.query(`create table items (id int primary key, name text not null)`)
  await c.query(`insert into items select g, 'item ' || g from generate_series(1, 3) g`)
  await c.end()
  neonConfig.webSocketConstructor = ws
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${h.httpPort}/v2?address=${host}:${port}`
  neonConfig.useSecureWebSocket = false
  neonConfig.pipelineConnect = 'password'
})

after(async () => {
  await h?.close()
})

const url = (password = GOOD_PASSWORD) =>
  `postgresql://postgres:${encodeURIComponent(password)}@db.localtest.me:5432/${h.db.database}`

test('neon Client with pipelined connect: queries, prepared statements and a rollback', async () => {
  const client = new Client(url())
  await client.connect()
  try {
    const r = await client.query<{ n: number; app: string }>(
      `select count(*)::int as n, current_setting('application_name') as app from items`,
    )
    assert.equal(r.rows[0]!.n, 3)
    assert.match(r.rows[0]!.app, /neondatabase\/serverless/)
    const p = await client.query({ name: 'by_id', text: 'select name from items where id = $1', values: [2] })
    assert.equal(p.rows[0].name, 'item 2')
    await client.query('begin')
    await client.query(`insert into items values (50, 'x')`)
    await client.query('rollback')
    assert.equal((await client.query('select count(*)::int as n from items')).rows[0].n, 3)
    const req = h.requests.at(-1)!
    assert.equal(req.transport, 'websocket')
    assert.equal(req.password, GOOD_PASSWORD)
  } finally {
    await client.end()
  }
})

test('neon Pool: concurrent queries on several WebSocket sessions', async () => {
  const pool = new Pool({ connectionString: url(), max: 3 })
  try {
    const results = await Promise.all(
      [1, 2, 3, 1, 2, 3].map((id) => pool.query('select name from items where id = $1', [id])),
    )
    assert.deepEqual(
      results.map((r) => r.rows[0].name),
      ['item 1', 'item 2', 'item 3', 'item 1', 'item 2', 'item 3'],
    )
    assert.ok(h.gateway.sessions() >= 1)
  } finally {
    await pool.end()
  }
  await h.until(async () => h.gateway.sessions() === 0 && (await h.upstreamConnections()) === 0, 'sessions to end')
})

test('drizzle-orm neon-serverless: db.transaction commits, and rolls back on throw', async () => {
  const pool = new Pool({ connectionString: url(), max: 1 })
  const db = drizzle({ client: pool })
  try {
    await db.transaction(async (tx) => {
      await tx.insert(items).values({ id: 10, name: 'committed' })
    })
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.insert(items).values({ id: 11, name: 'rolled back' })
        throw new Error('abort')
      }),
      /abort/,
    )
    const rows = await db.select().from(items).where(eq(items.id, 10))
    assert.deepEqual(rows, [{ id: 10, name: 'committed' }])
    assert.deepEqual(await db.select().from(items).where(eq(items.id, 11)), [])
    const prepared = db.select().from(items).where(eq(items.id, 1)).prepare('item_one')
    assert.deepEqual(await prepared.execute(), [{ id: 1, name: 'item 1' }])
  } finally {
    await pool.end()
  }
})

test('a wrong password over WebSocket fails with 28P01 and opens nothing upstream', async () => {
  await h.until(async () => (await h.upstreamConnections()) === 0, 'upstream to be idle')
  const client = new Client(url('wrong-token'))
  client.on('error', () => {})
  // With pipelined connect, connect() resolves before the server answers; the failure surfaces on the query.
  const err = (await client
    .connect()
    .then(() => client.query('select 1'))
    .then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    )) as { code: string; message: string }
  assert.equal(err.code, '28P01')
  assert.doesNotMatch(err.message, /wrong-token/)
  assert.equal(await h.upstreamConnections(), 0)
  // Not awaited: after a FATAL on a pipelined connect, the neon client's end() sometimes never settles
  // (its socket shim has already closed); the connection is gone either way.
  void client.end().catch(() => {})
})

test('the non-pipelined connect works too, and /v1 is served', async () => {
  neonConfig.pipelineConnect = false
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${h.httpPort}/v1?address=${host}:${port}`
  const client = new Client(url())
  try {
    await client.connect()
    assert.equal((await client.query('select 41 + 1 as n')).rows[0].n, 42)
  } finally {
    neonConfig.pipelineConnect = 'password'
    neonConfig.wsProxy = (host, port) => `127.0.0.1:${h.httpPort}/v2?address=${host}:${port}`
    await client.end()
  }
})

test('other upgrade paths are refused', async () => {
  const sock = new ws(`ws://127.0.0.1:${h.httpPort}/v3`)
  const outcome = await new Promise<string>((resolve) => {
    sock.on('open', () => resolve('open'))
    sock.on('error', (e) => resolve(e.message))
  })
  assert.match(outcome, /404/)
})

test('WebSocket messages: a pipelined first query of 512 kB, and 2 MB after login (past the pre-login 1 MiB)', async () => {
  const client = new Client(url())
  await client.connect()
  try {
    // Pipelined connect: this query travels in one message with the startup packet and the password.
    const first = 'x'.repeat(512 * 1024)
    assert.equal((await client.query<{ n: number }>('select length($1::text) as n', [first])).rows[0]!.n, first.length)
    const big = 'y'.repeat(2 * 1024 * 1024)
    assert.equal((await client.query<{ n: number }>('select length($1::text) as n', [big])).rows[0]!.n, big.length)
  } finally {
    await client.end()
  }
})
