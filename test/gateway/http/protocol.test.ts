/**
 * The Neon SQL-over-HTTP protocol through the real `@neondatabase/serverless` 1.2.0 client and raw fetch:
 * type fidelity against a direct `pg` connection, result shapes, batches, errors, limits, CORS, bad input.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { startStack, type Stack } from './harness.js'
import { eventually } from '../../helpers/wait.js'

let s: Stack
const MAX_REQUEST = 64 * 1024
const MAX_RESPONSE = 256 * 1024

before(async () => {
  s = await startStack({ handler: { maxRequestBytes: MAX_REQUEST, maxResponseBytes: MAX_RESPONSE } })
  await s.owner.query(`
    create table side (id int primary key, note text);
    create table items (id int primary key, name text not null, constraint name_len check (length(name) < 20));
    grant select, insert, update, delete on side, items to authenticated;
  `)
})
after(() => s?.close())

/** Values made comparable across two copies of pg-types (the Neon bundle has its own classes). */
function plain(v: unknown): unknown {
  if (v === null || v === undefined) return v
  if (Buffer.isBuffer(v)) return { buffer: v.toString('hex') }
  if (v instanceof Date) return { date: v.toISOString() }
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object') {
    const out: Record<string, unknown> = { proto: (v as object).constructor?.name ?? null }
    for (const [k, x] of Object.entries(v as object)) out[k] = plain(x)
    return out
  }
  return v
}

const FIDELITY_SQL = `select
  1::int2 as i2, (-2147483648)::int4 as i4, 9007199254740993::int8 as i8, 123456789.123456789000::numeric as num,
  1.5::float4 as f4, 3.141592653589793::float8 as f8, 'NaN'::float8 as fnan, '-Infinity'::float8 as finf,
  true as b, false as bf, E'h\\u00e9llo \\u2603 "q" \\\\ x\\n' as t, ''::text as empty,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as u, '{"a":[1,2,{"b":null}], "u":"\\u00e9"}'::json as j,
  '{"k": 1.50, "z": [true]}'::jsonb as jb, 'null'::jsonb as jnull,
  '2024-02-29 12:34:56.789+05:30'::timestamptz as tz, '2024-02-29 12:34:56.789'::timestamp as ts,
  '2024-02-29'::date as d, '1 year 2 mons 3 days 04:05:06.7'::interval as iv, '-00:00:01'::interval as ivneg,
  '\\xdeadbeef00'::bytea as by, ''::bytea as byempty,
  array[1,2,null]::int4[] as ai, array['a','b c',null,'"q"', '{x}']::text[] as at, array[[1,2],[3,4]]::int8[] as a2,
  array['2024-01-01']::date[] as ad, array['{"a":1}']::jsonb[] as aj, array[true,false]::bool[] as ab,
  null::int4 as n, null::text as nt, null::jsonb as nj, null::timestamptz as ntz, null::int4[] as na`

describe('type fidelity', () => {
  test('every type comes back equal to what pg returns from a direct connection', async () => {
    const direct = await s.owner.query(FIDELITY_SQL)
    const viaGateway = await s.sql().query(FIDELITY_SQL)
    assert.equal(viaGateway.length, 1)
    assert.deepStrictEqual(plain(viaGateway[0]), plain(direct.rows[0]))
    // The headline ones, stated explicitly.
    const row = viaGateway[0] as Record<string, unknown>
    assert.equal(row.i8, '9007199254740993')
    assert.ok(row.tz instanceof Date)
    assert.ok(Buffer.isBuffer(row.by))
    assert.deepEqual(row.jb, { k: 1.5, z: [true] })
  })

  test('params round-trip as untyped text, NULL included, and match pg', async () => {
    const values = [1, 'x', new Date(0), [1, 2], { k: 1 }, null, true, 10n, Buffer.from('hi')]
    const text = `select $1::int as n, $2 as t, $3::timestamptz as d, $4::int[] as a, $5::jsonb as o,
      $6::text as z, $7::bool as bo, $8::int8 as bi, $9::bytea as b, $2 || 'y' as concat, pg_typeof($2)::text as ty`
    const direct = await s.owner.query(text, values)
    const viaGateway = await s.sql().query(text, values)
    assert.deepStrictEqual(plain(viaGateway[0]), plain(direct.rows[0]))
    // Untyped params are inferred by Postgres (text here), never forced by the gateway.
    const [answer] = await s.sql().query('select $1 as answer', [42])
    assert.deepEqual(answer, { answer: '42' })
  })

  test('fullResults carries the seven field keys, command, rowCount', async () => {
    const r = await s.sql().query('select 1::int4 as n, $1::text as t', ['a'], { fullResults: true })
    assert.equal(r.command, 'SELECT')
    assert.equal(r.rowCount, 1)
    assert.deepEqual(r.fields[0], {
      name: 'n', dataTypeID: 23, tableID: 0, columnID: 0, dataTypeSize: 4, dataTypeModifier: -1, format: 'text',
    })
  })
})

describe('result shapes', () => {
  test('raw JSON: array rows, command is the first word, rowCount per Neon (null when absent)', async () => {
    const body = (q: string, params: unknown[] = []) => JSON.stringify({ query: q, params })
    let r = await s.post(body('create temp table shape_t (a int)'))
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    assert.deepEqual(await r.json(), { command: 'CREATE', fields: [], rowCount: null, rows: [], rowAsArray: true })
    r = await s.post(body('insert into side (id, note) select g, null from generate_series(1000, 1002) g returning id'))
    const ins = await r.json()
    assert.equal(ins.command, 'INSERT')
    assert.equal(ins.rowCount, 3)
    assert.deepEqual(ins.rows, [['1000'], ['1001'], ['1002']])
    r = await s.post(body('delete from side where id >= $1', ['1000']))
    assert.deepEqual(await r.json().then((j) => [j.command, j.rowCount]), ['DELETE', 3])
    r = await s.post(body(''))
    assert.equal(r.status, 200)
  })

  test('object rows without Neon-Array-Mode: true, per-query arrayMode wins, non-raw JSON values', async () => {
    const q = JSON.stringify({ query: `select 1 as a, null::text as b, 't'::bool as c, '{"x":1}'::jsonb as d, 5::int8 as e` })
    let r = await s.post(q, { 'Neon-Array-Mode': 'false' })
    let j = await r.json()
    assert.equal(j.rowAsArray, false)
    assert.deepEqual(j.rows, [{ a: '1', b: null, c: 't', d: '{"x": 1}', e: '5' }])
    r = await s.post(q, { 'Neon-Array-Mode': 'false', 'Neon-Raw-Text-Output': 'false' })
    j = await r.json()
    assert.deepEqual(j.rows, [{ a: 1, b: null, c: true, d: { x: 1 }, e: '5' }])
    r = await s.post(JSON.stringify({ queries: [{ query: 'select 1 as a', arrayMode: false }, { query: 'select 2 as a' }] }))
    j = await r.json()
    assert.deepEqual(j.results.map((x: { rows: unknown }) => x.rows), [[{ a: '1' }], [['2']]])
  })

  test('runs as the restricted role with the claims installed, application_name applied', async () => {
    const [row] = await s.sql('bob')`select current_user as u, auth.user_id() as sub, current_setting('application_name') as app`
    assert.deepEqual(row, { u: 'authenticated', sub: 'bob', app: 'pkg:npm/%40neondatabase/serverless@1.2.0' })
  })

  test('parallel requests of many users each see only their own identity', async () => {
    const subs = Array.from({ length: 120 }, (_, i) => `user-${i % 30}-${i}`)
    const got = await Promise.all(subs.map((sub) => s.sql(sub)`select auth.user_id() as sub`))
    assert.deepEqual(got.map((r) => r[0]!.sub), subs)
  })
})

describe('batches', () => {
  for (const level of ['ReadUncommitted', 'ReadCommitted', 'RepeatableRead', 'Serializable'] as const) {
    test(`sql.transaction at ${level}`, async () => {
      const sql = s.sql()
      const [a, b] = await sql.transaction(
        [sql`select current_setting('transaction_isolation') as iso`, sql`select auth.user_id() as sub, ${7}::int as n`],
        { isolationLevel: level },
      )
      const expected = { ReadUncommitted: 'read uncommitted', ReadCommitted: 'read committed', RepeatableRead: 'repeatable read', Serializable: 'serializable' }[level]
      assert.deepEqual(a, [{ iso: expected }])
      assert.deepEqual(b, [{ sub: 'alice', n: 7 }])
    })
  }

  test('read-only and deferrable reach Postgres; a write in a read-only batch fails', async () => {
    const sql = s.sql()
    const [[flags]] = (await sql.transaction(
      [sql`select current_setting('transaction_read_only') as ro, current_setting('transaction_deferrable') as df`],
      { isolationLevel: 'Serializable', readOnly: true, deferrable: true },
    )) as [Record<string, string>[]]
    assert.deepEqual(flags, { ro: 'on', df: 'on' })
    await assert.rejects(sql.transaction([sql`insert into side values (1, 'ro')`], { readOnly: true }), (e: Error & { code?: string }) => {
      assert.equal(e.name, 'NeonDbError')
      assert.equal(e.code, '25006')
      return true
    })
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
  })

  test('a failing batch returns that error and leaves nothing written', async () => {
    const sql = s.sql()
    await assert.rejects(
      sql.transaction([sql`insert into side values (2, 'a')`, sql`insert into side values (3, 'b')`, sql`select 1/0`, sql`insert into side values (4, 'c')`]),
      (e: Error & { code?: string }) => e.code === '22012',
    )
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
    // and a good batch commits
    await sql.transaction([sql`insert into side values (5, 'x')`, sql`delete from side where id = 5`])
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
  })

  test('claims cannot be forged for a later query of the batch', async () => {
    const sql = s.sql()
    const forged = 'v1.9999999999.' + Buffer.from('{"sub":"mallory"}').toString('base64url') + '.AAAA'
    await assert.rejects(
      sql.transaction([sql`select set_config('pg_authorize.session', ${forged}, true)`, sql`select auth.user_id() as sub`]),
      (e: Error & { code?: string }) => e.code === '28000',
    )
  })
})

describe('errors', () => {
  test('a multi-statement query is rejected with 42601 and runs nothing', async () => {
    await assert.rejects(s.sql().query(`insert into side values (10, 'multi'); select 1`), (e: Error & { code?: string }) => e.code === '42601')
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
  })

  test('Postgres errors carry code, position, detail and the other fields', async () => {
    await assert.rejects(s.sql()`select * from nope`, (e: Error & Record<string, unknown>) => {
      assert.equal(e.name, 'NeonDbError')
      assert.equal(e.message, 'relation "nope" does not exist')
      assert.equal(e.code, '42P01')
      assert.equal(e.position, '15')
      assert.equal(e.severity, 'ERROR')
      assert.equal(typeof e.routine, 'string')
      return true
    })
    const sql = s.sql()
    await sql`insert into items values (1, 'one')`
    try {
      await assert.rejects(sql`insert into items values (1, 'again')`, (e: Error & Record<string, unknown>) => {
        assert.equal(e.code, '23505')
        assert.equal(e.detail, 'Key (id)=(1) already exists.')
        assert.equal(e.constraint, 'items_pkey')
        assert.equal(e.table, 'items')
        assert.equal(e.schema, 'public')
        return true
      })
      const r = await s.post(JSON.stringify({ query: `insert into items values (2, repeat('x', 30))` }))
      assert.equal(r.status, 400)
      const j = await r.json()
      assert.equal(j.code, '23514')
      for (const k of ['message', 'code', 'severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where', 'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine']) {
        assert.ok(k in j, `${k} present`)
      }
      assert.equal(typeof j.line, 'string')
    } finally {
      await s.owner.query('delete from items')
    }
  })

  test('an authentication failure is a NeonDbError with SQLSTATE 28000, the token not echoed', async () => {
    const { neon } = await import('@neondatabase/serverless')
    await assert.rejects(neon(s.authUrl)`select 1`, (e: Error & { code?: string }) => e.code === '28000' && /bearer token/.test(e.message))
    await assert.rejects(neon(s.authUrl, { authToken: 'forged-secret-token' })`select 1`, (e: Error & { code?: string }) => {
      assert.equal(e.code, '28000')
      assert.ok(!e.message.includes('forged-secret-token'))
      return true
    })
  })
})

describe('limits', () => {
  test('a body over the cap is refused with 413, declared or streamed, and nothing runs', async () => {
    const big = JSON.stringify({ query: `insert into side values (20, $1)`, params: ['x'.repeat(MAX_REQUEST)] })
    let r = await s.post(big)
    assert.equal(r.status, 413)
    assert.equal((await r.json()).message, `request is too large (max is ${MAX_REQUEST} bytes)`)
    // Chunked, no Content-Length: stopped while reading.
    const chunk = new TextEncoder().encode('x'.repeat(16 * 1024))
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent === 0) c.enqueue(new TextEncoder().encode('{"query":"insert into side values (21, $1)","params":["'))
        if (sent++ < 4096) c.enqueue(chunk)
        else { c.enqueue(new TextEncoder().encode('"]}')); c.close() }
      },
    })
    r = await fetch(s.endpoint, {
      method: 'POST', body: stream, duplex: 'half',
      headers: { 'Neon-Connection-String': s.authUrl, Authorization: 'Bearer user:alice' },
    } as RequestInit)
    assert.equal(r.status, 413)
    assert.ok(sent < 4096, `the server stopped reading before the end of the 64 MiB body (${sent} chunks pulled)`)
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
  })

  test('a response over the cap is 507, and the backend query is stopped', async () => {
    const sql = `select repeat('x', 1000) as filler, g from generate_series(1, 5000000) g /* big-result */`
    const r = await s.post(JSON.stringify({ query: sql }))
    assert.equal(r.status, 507)
    assert.equal((await r.json()).message, `response is too large (max is ${MAX_RESPONSE} bytes)`)
    const gone = await eventually(async () =>
      (await s.owner.query(`select count(*)::int as n from pg_stat_activity where query like '%big-result%' and pid <> pg_backend_pid()`)).rows[0].n === 0)
    assert.ok(gone, 'the oversized query no longer runs')
    // Just under the cap still works.
    const ok = await s.post(JSON.stringify({ query: `select repeat('x', 1000) from generate_series(1, 200)` }))
    assert.equal(ok.status, 200)
  })
})

describe('HTTP surface', () => {
  test('CORS preflight allows Authorization and every Neon header', async () => {
    const r = await fetch(s.endpoint, { method: 'OPTIONS' })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    const allowed = r.headers.get('access-control-allow-headers')!.toLowerCase()
    for (const h of ['authorization', 'neon-connection-string', 'neon-raw-text-output', 'neon-array-mode', 'neon-pool-opt-in',
      'neon-batch-read-only', 'neon-batch-isolation-level', 'neon-batch-deferrable']) {
      assert.ok(allowed.includes(h), h)
    }
    assert.match(r.headers.get('access-control-allow-methods')!, /POST/)
  })

  // /health is the gateway router's (test/gateway/operations.test.ts); this handler serves only /sql.
  test('unknown routes and methods', async () => {
    let r = await fetch(`${s.server.url}/nope`)
    assert.equal(r.status, 404)
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    r = await fetch(s.endpoint)
    assert.equal(r.status, 405)
    assert.equal(typeof (await r.json()).message, 'string')
  })

  test('bad input gets a clear 4xx and executes nothing', async () => {
    const insert = (id: number) => JSON.stringify({ query: `insert into side values (${id}, 'bad')`, params: [] })
    const cases: [string, string | Uint8Array, Record<string, string>, RegExp][] = [
      ['malformed JSON', '{"query": "insert into side values (30, 1)"', {}, /not valid JSON/],
      ['non-UTF-8 body', new Uint8Array([...Buffer.from('{"query":"insert into side values (31, \''), 0xff, 0xfe, ...Buffer.from('\')"}')]), {}, /UTF-8/],
      ['object param', JSON.stringify({ query: 'insert into side values (32, $1)', params: [{ a: 1 }] }), {}, /params\[0\] must be/],
      ['params not an array', JSON.stringify({ query: 'insert into side values (33, $1)', params: 'x' }), {}, /params must be an array/],
      ['query not a string', JSON.stringify({ query: 5 }), {}, /query must be a string/],
      ['queries not an array', JSON.stringify({ queries: { query: 'insert into side values (34, null)' } }), {}, /queries must be an array/],
      ['a bad batch entry', JSON.stringify({ queries: [{ query: 'insert into side values (35, null)' }, { query: 1 }] }), {}, /queries\[1\]\.query/],
      ['unknown isolation level', JSON.stringify({ queries: [{ query: 'insert into side values (36, null)' }] }), { 'Neon-Batch-Isolation-Level': 'Chaos' }, /^invalid isolation level: Neon-Batch-Isolation-Level must be one of /],
      ['missing connection string', insert(37), { 'Neon-Connection-String': '' }, /./],
      ['wrong scheme', insert(38), { 'Neon-Connection-String': 'mysql://authenticated@h/db' }, /^incorrect scheme$/],
      ['no database', insert(39), { 'Neon-Connection-String': 'postgresql://authenticated@h' }, /^missing database name$/],
      ['no user', insert(40), { 'Neon-Connection-String': 'postgres://h/db' }, /^missing username$/],
      ['not Bearer', insert(41), { Authorization: 'Basic dXNlcjpwdw==' }, /Bearer/],
      ['not a JSON object', '[1,2]', {}, /must be a JSON object/],
    ]
    for (const [name, body, headers, message] of cases) {
      let r: Response
      if (headers['Neon-Connection-String'] === '') {
        r = await fetch(s.endpoint, { method: 'POST', body: body as BodyInit, headers: { Authorization: 'Bearer user:alice' } })
      } else {
        r = await s.post(body, headers)
      }
      assert.equal(r.status, 400, name)
      assert.equal(r.headers.get('access-control-allow-origin'), '*', name)
      const j = await r.json()
      assert.match(j.message, message, name)
      assert.equal(typeof j.code, 'string', name)
    }
    const r = await fetch(s.endpoint, { method: 'POST', body: insert(42), headers: { Authorization: 'Bearer user:alice' } })
    assert.equal((await r.json()).message, 'invalid header: neon-connection-string')
    assert.equal((await s.owner.query('select count(*)::int as n from side')).rows[0].n, 0)
  })

  test('numbers and booleans as params are accepted like the driver would send them', async () => {
    const r = await s.post(JSON.stringify({ query: 'select $1::int + 1 as n, $2::bool as b, $3::numeric as x', params: [41, true, 1.25] }))
    assert.deepEqual((await r.json()).rows, [['42', 't', '1.25']])
  })
})

test('pool connections are returned (none left leased)', async () => {
  const settled = await eventually(async () => s.pools.stats().every((p) => p.leased === 0))
  assert.ok(settled, JSON.stringify(s.pools.stats()))
  assert.ok(pg) // pg is used for the direct baseline through s.owner
})
