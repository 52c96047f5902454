/**
 * The HTTP path through a real PgBouncer in transaction mode (issue 18 item 4), as users run many gateways
 * against one Postgres: two gateways share one PgBouncer whose pool holds a single server connection per
 * role, so every request of either lands on the connection the other's last request used. Claims are
 * transaction-local, so RLS holds; what a request leaves in the *session* must not reach the next one, and
 * the session defaults and setup's time limits, which cannot travel in the startup packet through the
 * pooler, must still be in force.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { neon, neonConfig } from '@neondatabase/serverless'
import pg from 'pg'
import { startGateway, type Gateway } from '../../../src/gateway/gateway.js'
import { parsePoolerUrl } from '../../../src/gateway/http/pooler.js'
import { withOwner } from '../../../src/database/providers.js'
import type { TestDatabase } from '../../helpers/postgres.js'
import { createAppDatabase, type AppDatabase } from '../../helpers/app-database.js'
import { PGBOUNCER, startPgBouncer, type PgBouncer } from '../../helpers/pgbouncer.js'
import { needs } from '../../helpers/requires.js'
import { eventually } from '../../helpers/wait.js'

const skip = needs(PGBOUNCER)

let appDb: AppDatabase
let db: TestDatabase
let bouncer: PgBouncer
let a: Gateway
let b: Gateway

before(async () => {
  if (skip) return
  appDb = await createAppDatabase(`create table notes (id int primary key, owner text not null);
      insert into notes select i, case when i % 2 = 0 then 'bob' else 'alice' end from generate_series(1, 6) i;
      grant select on notes to authenticated;
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id()))`)
  db = appDb.db
  const users = await withOwner(db.url, async (c) => {
    // The pooler's auth_file: the restricted roles' own passwords (docs/deployment.md).
    const r = await c.query<{ role: string; password: string }>('select role, password from pgauthorize.role_credentials')
    return Object.fromEntries(r.rows.map((row) => [row.role, row.password]))
  })
  const u = new URL(db.url)
  bouncer = await startPgBouncer({
    upstream: { host: u.hostname, port: Number(u.port) },
    databases: [db.database],
    users,
    mode: 'transaction',
    poolSize: 1,
  })
  // No fair share: one user's dozen concurrent requests are the point of the second test, not a limit to hit.
  const options = { databaseUrl: db.url, port: 0, pgPort: false as const, poolerUrl: bouncer.url, poolSize: 4, fairShare: false as const, rest: { schemas: ['public'] } }
  a = await startGateway(options)
  b = await startGateway(options)
})
after(async () => {
  await a?.close()
  await b?.close()
  await bouncer?.stop()
  await db?.close()
})

const token = (sub: string) => appDb.token(sub, '10m')
async function as(gw: Gateway, sub: string) {
  neonConfig.fetchEndpoint = `${gw.url}/sql`
  return neon(`postgresql://authenticated@db.localtest.me/${db.database}`, { authToken: await token(sub) })
}

test('what one request leaves in the session never reaches the next, whichever gateway sends it', { skip }, async () => {
  const alice = await as(a, 'alice')
  // Session-level state, on the one server connection PgBouncer has for this role.
  await alice`select set_config('app.note', 'alice was here', false), set_config('statement_timeout', '0', false),
    pg_advisory_lock(42), set_config('search_path', 'pg_temp', false)`
  const bob = await as(b, 'bob')
  const [row] = await bob`select current_setting('app.note', true) as note, current_setting('statement_timeout') as st,
    pg_try_advisory_lock(42) as got_lock, current_setting('search_path') as sp, auth.user_id() as uid`
  assert.equal(row!.uid, 'bob')
  assert.ok(!row!.note, `Alice's session setting reached Bob: ${JSON.stringify(row!.note)}`)
  assert.equal(row!.st, '30s', 'the time limit Alice turned off is back')
  assert.equal(row!.got_lock, true, "Alice's advisory lock is gone")
  assert.equal(row!.sp, '"$user", public')
})

test('RLS holds for concurrent users, and the requests really share the pooler\'s one server connection', { skip }, async () => {
  const alice = await as(a, 'alice')
  const bob = await as(b, 'bob')
  const runs = Array.from({ length: 24 }, (_, i) =>
    (i % 2 === 0 ? alice : bob)`select array_agg(owner order by id) as owners, auth.user_id() as uid, pg_backend_pid() as pid from notes`)
  const rows = (await Promise.all(runs)).map((r) => r[0]!)
  for (const [i, row] of rows.entries()) {
    const who = i % 2 === 0 ? 'alice' : 'bob'
    assert.equal(row.uid, who)
    assert.deepEqual(row.owners, [who, who, who])
  }
  // Two gateways of 4 connections each, 24 requests at once: one Postgres backend served them all.
  assert.equal(new Set(rows.map((r) => r.pid)).size, 1)
})

test('the session defaults and setup\'s time limits are in force although the startup packet cannot carry them', { skip }, async () => {
  const alice = await as(a, 'alice')
  const [row] = await alice`select current_setting('DateStyle') as ds, current_setting('IntervalStyle') as ist,
    current_setting('bytea_output') as bo, current_setting('statement_timeout') as st,
    current_setting('idle_in_transaction_session_timeout') as it, date '2026-12-02' as d, '\\x01ff'::bytea as b`
  assert.equal(row!.ds, 'ISO, MDY')
  assert.equal(row!.ist, 'postgres')
  assert.equal(row!.bo, 'hex')
  assert.equal(row!.st, '30s')
  assert.equal(row!.it, '1min')
  assert.ok(row!.d instanceof Date)
  assert.deepEqual([...(row!.b as Uint8Array)], [1, 255])
})

test('a transaction of several statements runs on one server connection, with the claims in each', { skip }, async () => {
  const bob = await as(a, 'bob')
  const [first, second] = await bob.transaction((sql) => [
    sql`select auth.user_id() as uid, pg_backend_pid() as pid`,
    sql`select count(*)::int as n, auth.user_id() as uid, pg_backend_pid() as pid from notes`,
  ])
  assert.equal(first![0]!.uid, 'bob')
  assert.equal(second![0]!.uid, 'bob')
  assert.equal(second![0]!.n, 3)
  assert.equal(first![0]!.pid, second![0]!.pid)
})

test('the Data API runs through the pooler too', { skip }, async () => {
  const res = await fetch(`${b.url}/rest/v1/notes?select=id,owner&order=id`, { headers: { Authorization: `Bearer ${await token('alice')}` } })
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(await res.json(), [{ id: 1, owner: 'alice' }, { id: 3, owner: 'alice' }, { id: 5, owner: 'alice' }])
})

test('a client that goes away cancels its query through PgBouncer, and PgBouncer stays up', { skip }, async () => {
  const owner = new pg.Client(db.url)
  await owner.connect()
  const running = async () => (await owner.query(
    `select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%cancel-through-pooler%' and pid <> pg_backend_pid()`,
  )).rows[0].n as number
  try {
    for (let round = 0; round < 3; round++) {
      const ac = new AbortController()
      const aborted = fetch(`${a.url}/sql`, {
        method: 'POST',
        signal: ac.signal,
        body: JSON.stringify({ query: 'select pg_sleep(30) /* cancel-through-pooler */', params: [] }),
        headers: { 'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${db.database}`, Authorization: `Bearer ${await token('alice')}` },
      }).catch((e: Error) => e)
      assert.ok(await eventually(async () => (await running()) === 1), 'the query started')
      ac.abort()
      assert.ok((await aborted) instanceof Error)
      assert.ok(await eventually(async () => (await running()) === 0), 'the backend query was cancelled')
    }
    // PgBouncer 1.18 exits when a cancel client hangs up before its cancel is forwarded (pgbouncer#801).
    const bob = await as(b, 'bob')
    assert.deepEqual(await bob`select auth.user_id() as uid`, [{ uid: 'bob' }], bouncer.log().slice(-2000))
  } finally {
    await owner.end()
  }
})

test('a pooler URL naming credentials or a database is refused before anything opens, without echoing it', async () => {
  for (const url of ['postgresql://authenticated:s3cret@127.0.0.1:6432', 'postgresql://127.0.0.1:6432/app', 'http://127.0.0.1:6432', 'not a url']) {
    await assert.rejects(
      startGateway({ databaseUrl: 'postgresql://owner@127.0.0.1:1/none', port: 0, pgPort: false, poolerUrl: url }),
      (err: Error & { code?: string }) => err.code === 'ERR_INVALID_CONFIG' && /pooler URL/.test(err.message) && !err.message.includes('s3cret'),
    )
  }
  assert.deepEqual(parsePoolerUrl('postgresql://pooler.internal:6432?sslmode=require').port, 6432)
})

test('without the pooler a session pg client would see the state: the check above can fail', { skip }, async () => {
  // The premise of the first test, shown on the pooler directly: a plain client in transaction mode does
  // see what another client left on the shared server connection, so only the gateway's reset removes it.
  const users = await withOwner(db.url, async (c) => (await c.query<{ password: string }>(
    `select password from pgauthorize.role_credentials where role = 'authenticated'`)).rows[0]!.password)
  const login = { host: '127.0.0.1', port: bouncer.port, user: 'authenticated', password: users, database: db.database }
  const one = new pg.Client(login)
  const two = new pg.Client(login)
  await one.connect()
  await two.connect()
  try {
    await one.query(`select set_config('app.left', 'behind', false)`)
    const r = await two.query(`select current_setting('app.left', true) as v`)
    assert.equal(r.rows[0].v, 'behind')
  } finally {
    await one.end()
    await two.end()
  }
})
