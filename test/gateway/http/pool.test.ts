/**
 * GatewayPools against a real Postgres, logging in as the restricted role `setup` created:
 * the reset really clears a session's state before the next lease, a failed reset or a protocol failure
 * discards the connection, and a full pool fails with ERR_POOL_TIMEOUT instead of hanging.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { installClaimsParamSql, openDatabaseContext, setup, type DatabaseContext } from '../../../src/database/index.js'
import { GatewayPools, type Lease } from '../../../src/gateway/http/pool.js'
import { createSqlHttpHandler } from '../../../src/gateway/http/handler.js'
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js'
import { eventually } from '../../helpers/wait.js'

let db: TestDatabase
let ctx: DatabaseContext
let owner: pg.Client
const opened: GatewayPools[] = []

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  ctx = await openDatabaseContext(db.url)
  owner = new pg.Client(db.url)
  await owner.connect()
})
after(async () => {
  for (const p of opened) await p.close().catch(() => {})
  await owner?.end().catch(() => {})
  await db?.close()
})

function pools(opts: { max?: number; acquireTimeoutMillis?: number; resetTimeoutMillis?: number; idleResetMillis?: number } = {}): GatewayPools {
  const p = new GatewayPools({ connectionConfig: async (_db, role) => ctx.roleConnectionConfig(role), ...opts })
  opened.push(p)
  return p
}

const pid = async (l: Lease) => (await l.client.query('select pg_backend_pid() as p')).rows[0].p as number

test('connections log in as the role itself, with the session defaults Neon parsers need', async () => {
  const p = pools({ max: 1 })
  const l = await p.acquire(ctx.database, 'authenticated')
  try {
    const r = await l.client.query(`select current_user as u, session_user as s, current_setting('DateStyle') as ds,
      current_setting('IntervalStyle') as ist, current_setting('bytea_output') as bo, current_setting('client_encoding') as ce`)
    assert.deepEqual(r.rows[0], { u: 'authenticated', s: 'authenticated', ds: 'ISO, MDY', ist: 'postgres', bo: 'hex', ce: 'UTF8' })
  } finally {
    l.release()
  }
})

test('the reset clears every piece of session state before the next lease', async () => {
  const p = pools({ max: 1 })
  const envelope = ctx.seal({ sub: 'alice' }, 'authenticated', 'test')
  const a = await p.acquire(ctx.database, 'authenticated')
  const pidA = await pid(a)
  await a.client.query(`create temp table leak (x int)`)
  await a.client.query(`prepare leaky as select 1`)
  await a.client.query(`set statement_timeout = 1234`)
  await a.client.query(`select pg_advisory_lock(4242)`)
  await a.client.query(`listen leak_channel`)
  await a.client.query(installClaimsParamSql(false), [envelope])
  await a.client.query(`declare leak_cursor cursor with hold for select 1`)
  assert.equal((await a.client.query('select auth.user_id() as u')).rows[0].u, 'alice')
  a.release()

  const b = await p.acquire(ctx.database, 'authenticated')
  try {
    assert.equal(await pid(b), pidA, 'the same physical connection was reused (pool of one)')
    const r = await b.client.query(`select
      (select count(*)::int from pg_class where relnamespace = pg_my_temp_schema()) as temp_tables,
      (select count(*)::int from pg_prepared_statements) as prepared,
      current_setting('statement_timeout') as timeout,
      (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks,
      (select count(*)::int from pg_listening_channels()) as listening,
      (select count(*)::int from pg_cursors) as cursors,
      auth.session() as session, auth.user_id() as uid`)
    assert.deepEqual(r.rows[0], { temp_tables: 0, prepared: 0, timeout: '30s', locks: 0, listening: 0, cursors: 0, session: null, uid: null })
    // The advisory lock is really free: another session can take it.
    assert.equal((await owner.query('select pg_try_advisory_lock(4242) as ok')).rows[0].ok, true)
    await owner.query('select pg_advisory_unlock(4242)')
  } finally {
    b.release()
  }
})

test('through HTTP: state left by one request is gone for the next one on the same connection', async () => {
  const p = pools({ max: 1 })
  const handler = createSqlHttpHandler({
    pools: p,
    // Token "alice" gets claims; no token gets no identity at all (envelope null).
    authenticate: async (req) => ({
      role: 'authenticated',
      database: ctx.database,
      envelope: req.token ? ctx.seal({ sub: req.token }, 'authenticated', 'test') : null,
    }),
  })
  const call = async (query: string, token?: string) => {
    const res = await handler(new Request('http://gw/sql', {
      method: 'POST',
      body: JSON.stringify({ query, params: [] }),
      headers: {
        'Neon-Connection-String': `postgresql://authenticated@gw/${ctx.database}`,
        'Neon-Array-Mode': 'true',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
    }))
    assert.equal(res.status, 200, await res.clone().text())
    return (await res.json()).rows[0] as (string | null)[]
  }
  // Promote the request's own (transaction-local) claims to the session, and leave a setting behind.
  const [first] = await call(`select pg_backend_pid()::text || ':' ||
    set_config('pg_authorize.session', current_setting('pg_authorize.session'), false) ||
    set_config('work_mem', '7MB', false)`, 'alice')
  const [pidB, uid, mem] = await call(`select pg_backend_pid()::text, auth.user_id(), current_setting('work_mem')`)
  assert.equal(first!.split(':')[0], pidB, 'same connection')
  assert.equal(uid, null, 'no identity leaks to a request without a token')
  assert.notEqual(mem, '7MB')
})

test('through HTTP: the reset rides in the next request, and holds when requests fail or leave a transaction open', async () => {
  const p = pools({ max: 1 })
  const handler = createSqlHttpHandler({
    pools: p,
    authenticate: async () => ({ role: 'authenticated', database: ctx.database, envelope: ctx.seal({ sub: 'alice' }, 'authenticated', 'test') }),
  })
  const send = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await handler(new Request('http://gw/sql', {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Neon-Connection-String': `postgresql://authenticated@gw/${ctx.database}`, 'Neon-Array-Mode': 'true', ...headers },
    }))
    return { status: res.status, json: await res.json() }
  }
  const one = async (query: string) => {
    const r = await send({ query, params: [] })
    assert.equal(r.status, 200, JSON.stringify(r.json))
    return r.json.rows[0] as (string | null)[]
  }
  const temps = `(select count(*)::int from pg_class where relnamespace = pg_my_temp_schema())::text`

  // 1. Session state set by one request, on one connection: gone for the next.
  const [pid] = await one(`select pg_backend_pid()::text || set_config('work_mem', '7MB', false)`)
  assert.deepEqual(await one(`select current_setting('work_mem') <> '7MB', pg_backend_pid()::text`), [true, pid!.slice(0, -3)])

  // 2. A request that fails after its reset: the next one is still clean.
  await one(`select set_config('work_mem', '7MB', false)`)
  assert.equal((await send({ query: 'select 1/0', params: [] })).status, 400)
  assert.deepEqual(await one(`select current_setting('work_mem') <> '7MB'`), [true])

  // 3. A batch on a dirty connection, serializable and read-only.
  await one(`select set_config('work_mem', '7MB', false)`)
  const batch = await send(
    { queries: [{ query: `select current_setting('transaction_isolation'), current_setting('work_mem') <> '7MB', ${temps}`, params: [] }] },
    { 'Neon-Batch-Isolation-Level': 'Serializable', 'Neon-Batch-Read-Only': 'true' },
  )
  assert.equal(batch.status, 200, JSON.stringify(batch.json))
  assert.deepEqual(batch.json.results[0].rows[0], ['serializable', true, '0'])

  // 4. A request that leaves a transaction open: rolled back before reuse (the next one runs normally).
  await one(`begin`)
  assert.deepEqual(await one(`select current_setting('work_mem') <> '7MB', ${temps}`), [true, '0'])

  // 5. A temp table shadowing a name, committed by one request: dropped before the next runs.
  await one(`select 1`)
  const made = await send({ queries: [{ query: 'create temp table pg_authorize_shadow (x int)', params: [] }] })
  assert.equal(made.status, 200, JSON.stringify(made.json))
  assert.deepEqual(await one(`select ${temps}`), ['0'])
  assert.ok(await eventually(async () => p.stats().every((s) => s.leased === 0 && s.total === 1)), JSON.stringify(p.stats()))
})

test('a full pool fails with ERR_POOL_TIMEOUT and a clear message, not a hang', async () => {
  const p = pools({ max: 1, acquireTimeoutMillis: 300 })
  const held = await p.acquire(ctx.database, 'authenticated')
  try {
    await assert.rejects(p.acquire(ctx.database, 'authenticated'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_POOL_TIMEOUT')
      assert.match(e.message, /timed out after 300 ms waiting for a database connection .*role "authenticated", pool size 1/)
      return true
    })
    const handler = createSqlHttpHandler({
      pools: p,
      authenticate: async () => ({ role: 'authenticated', database: ctx.database, envelope: null }),
    })
    const res = await handler(new Request('http://gw/sql', {
      method: 'POST',
      body: '{"query":"select 1"}',
      headers: { 'Neon-Connection-String': `postgresql://authenticated@gw/${ctx.database}` },
    }))
    assert.equal(res.status, 400)
    const j = await res.json()
    assert.equal(j.code, '53300')
    assert.match(j.message, /timed out/)
  } finally {
    held.release()
  }
  const again = await p.acquire(ctx.database, 'authenticated')
  again.release()
})

test('a connection whose reset fails, or that is destroyed, is never reused', async () => {
  const p = pools({ max: 1 })
  const a = await p.acquire(ctx.database, 'authenticated')
  const pidA = await pid(a)
  await owner.query('select pg_terminate_backend($1)', [pidA])
  a.release() // the reset fails on a dead connection
  const b = await p.acquire(ctx.database, 'authenticated')
  const pidB = await pid(b)
  assert.notEqual(pidB, pidA)
  b.destroy()
  const c = await p.acquire(ctx.database, 'authenticated')
  assert.notEqual(await pid(c), pidB)
  c.release()
  assert.ok(await eventually(async () => p.stats().every((s) => s.leased === 0 && s.total === 1)), JSON.stringify(p.stats()))
})

test('a role without stored credentials is refused before connecting', async () => {
  const p = pools()
  await assert.rejects(p.acquire(ctx.database, 'postgres'), (e: Error & { code?: string }) => e.code === 'ERR_ROLE_NOT_ALLOWED')
})

test('nothing lingers on an idle connection: locks and temp tables are released soon after the request', async () => {
  const p = pools({ max: 1 })
  const handler = createSqlHttpHandler({
    pools: p,
    authenticate: async () => ({ role: 'authenticated', database: ctx.database, envelope: ctx.seal({ sub: 'alice' }, 'authenticated', 'test') }),
  })
  const one = async (query: string) => {
    const res = await handler(new Request('http://gw/sql', {
      method: 'POST',
      body: JSON.stringify({ query, params: [] }),
      headers: { 'Neon-Connection-String': `postgresql://authenticated@gw/${ctx.database}`, 'Neon-Array-Mode': 'true' },
    }))
    assert.equal(res.status, 200, await res.clone().text())
    return (await res.json()).rows[0] as (string | null)[]
  }
  const [pidA] = await one(`select pg_backend_pid()::text`)
  // One request leaves all of it behind (a batch: one transaction, committed).
  const left = await handler(new Request('http://gw/sql', {
    method: 'POST',
    body: JSON.stringify({ queries: [
      { query: 'select pg_advisory_lock(777)' },
      { query: 'create temp table lingering (x int)' },
      { query: 'declare lingering_cursor cursor with hold for select 1' },
      { query: 'listen lingering_channel' },
    ] }),
    headers: { 'Neon-Connection-String': `postgresql://authenticated@gw/${ctx.database}` },
  }))
  assert.equal(left.status, 200, await left.text())
  // Another session (Bob, or anyone) sees the lock free again, and the temp table gone, without any request
  // reusing the connection. Polled for at most a second; the pool's idle timeout is five minutes.
  const free = async () => {
    const r = await owner.query(`select
      (select count(*)::int from pg_locks where locktype = 'advisory' and pid = $1) as locks,
      (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relname = 'lingering' and n.nspname like 'pg_temp_%') as temps`, [Number(pidA)])
    return r.rows[0].locks === 0 && r.rows[0].temps === 0
  }
  assert.ok(await eventually(free, 40, 25), 'the advisory lock or the temp table outlived the request')
  assert.equal((await owner.query('select pg_try_advisory_lock(777) as ok')).rows[0].ok, true)
  await owner.query('select pg_advisory_unlock(777)')
  // The connection was reset, not closed: the next request runs on the same backend, clean.
  assert.deepEqual(await one(`select pg_backend_pid()::text, (select count(*)::int from pg_listening_channels())::text,
    (select count(*)::int from pg_cursors where is_holdable)::text`), [pidA, '0', '0'])
})

test('a background reset that misses its deadline closes the connection instead of holding it forever', async () => {
  const p = pools({ max: 1, acquireTimeoutMillis: 2000, resetTimeoutMillis: 300 })
  const a = await p.acquire(ctx.database, 'authenticated')
  const pidA = await pid(a)
  // A reply that will not come for a long time: the reset queues behind it.
  a.client.query('select pg_sleep(30)').catch(() => {})
  a.release()
  try {
    const b = await p.acquire(ctx.database, 'authenticated')
    try {
      assert.notEqual(await pid(b), pidA)
    } finally {
      b.release()
    }
  } finally {
    await owner.query('select pg_terminate_backend($1)', [pidA])
  }
})
