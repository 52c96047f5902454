/**
 * Through the real JWT path (`dev`'s gateway, real tokens): `sql.transaction` at every isolation level,
 * read-only and deferrable; atomic batches; type fidelity against `pg` on a direct connection; and the
 * errors Postgres raises arriving with their fields.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { NeonDbError, type NeonQueryFunction } from '@neondatabase/serverless'
import pg from 'pg'
import { alice, bob, rejection, startE2E, type E2E } from './harness.js'

let e: E2E
let sql: NeonQueryFunction<false, false>
before(async () => {
  e = await startE2E()
  await e.owner.query(`
    create table notes (id int primary key, owner text not null default auth.user_id(), body text not null);
    alter table notes enable row level security;
    create policy own on notes to authenticated using (owner = (select auth.user_id())) with check (owner = (select auth.user_id()));
  `)
  sql = e.sql(await e.token(alice))
})
after(() => e?.close())

const ownerNotes = async () => (await e.owner.query('select id, owner, body from notes order by id')).rows

test('sql.transaction at each isolation level, with read-only and deferrable, runs as the token', async () => {
  const levels = { ReadUncommitted: 'read uncommitted', ReadCommitted: 'read committed', RepeatableRead: 'repeatable read', Serializable: 'serializable' } as const
  for (const [isolationLevel, expected] of Object.entries(levels) as [keyof typeof levels, string][]) {
    for (const readOnly of [false, true]) {
      for (const deferrable of [false, true]) {
        const [settings, who] = await sql.transaction(
          (q) => [
            q`select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro,
                current_setting('transaction_deferrable') as d, txid_current_if_assigned() is null as fresh`,
            q`select auth.user_id() as sub, (select count(*)::int from users) as n`,
          ],
          { isolationLevel, readOnly, deferrable },
        )
        const label = `${isolationLevel} readOnly=${readOnly} deferrable=${deferrable}`
        assert.deepEqual(settings, [{ iso: expected, ro: readOnly ? 'on' : 'off', d: deferrable ? 'on' : 'off', fresh: true }], label)
        assert.deepEqual(who, [{ sub: alice.sub, n: 1 }], label)
      }
    }
  }
  // Both statements ran in one transaction: the same transaction id.
  const [a, b] = await sql.transaction((q) => [q`select txid_current()::text as x`, q`select txid_current()::text as x`])
  assert.deepEqual(a, b)
})

test('a batch commits as a whole; a write in a read-only batch fails; a failing statement leaves nothing written', async () => {
  await sql.transaction((q) => [q`insert into notes (id, body) values (1, 'one')`, q`insert into notes (id, body) values (2, 'two')`])
  assert.deepEqual(await ownerNotes(), [{ id: 1, owner: alice.sub, body: 'one' }, { id: 2, owner: alice.sub, body: 'two' }])

  const ro = await rejection(sql.transaction((q) => [q`select 1`, q`insert into notes (id, body) values (3, 'three')`], { readOnly: true }))
  assert.ok(ro instanceof NeonDbError)
  assert.equal(ro.code, '25006')

  const failing = await rejection(
    sql.transaction((q) => [
      q`insert into notes (id, body) values (4, 'four')`,
      q`update notes set body = 'changed'`,
      q`select 1 / 0`,
    ]),
  )
  assert.equal(failing.code, '22012')
  // Even an RLS refusal in the middle of a batch rolls back what came before it.
  const denied = await rejection(
    sql.transaction((q) => [q`insert into notes (id, body) values (5, 'five')`, q`insert into notes (id, owner, body) values (6, ${bob.sub}, 'forged')`]),
  )
  assert.equal(denied.code, '42501')
  assert.deepEqual(await ownerNotes(), [{ id: 1, owner: alice.sub, body: 'one' }, { id: 2, owner: alice.sub, body: 'two' }])
})

test('type fidelity: every type comes back through the JWT path equal to what pg returns directly', async () => {
  await e.owner.query(`
    create table typed (
      k int primary key, owner text not null,
      i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8, b bool, t text, u uuid, j json, jb jsonb,
      tz timestamptz, ts timestamp, d date, iv interval, by bytea, ai int4[], at text[], ab bool[], ajb jsonb[], atz timestamptz[], a8 int8[]
    );
    alter table typed enable row level security;
    create policy own on typed to authenticated using (owner = (select auth.user_id()));
  `)
  await e.owner.query(
    `insert into typed values
      (1, $1, -32768, 2147483647, 9007199254740993, 12345678901234567890.123456789, 3.25, 1.0000000000000002, true,
       'héllo ''quoted'' "and" \\ tabs	end', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, "x"], "b": null}',
       '{"nested": {"deep": [true, false]}, "n": 1e2}', '2024-02-29 23:59:59.123456+05:30', '1999-12-31 23:59:59.999999',
       '2024-02-29', '1 year 2 mons 3 days 04:05:06.789', '\\xdeadbeef00ff', '{1,NULL,3}', '{"a","b c",NULL,"d,e","\\"q\\""}',
       '{t,f,NULL}', array['{"x":1}'::jsonb, 'null'::jsonb], array['2020-01-01T00:00:00Z'::timestamptz], '{9223372036854775807,-1}'),
      (2, $1, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null),
      (3, $1, 0, 0, 0, 'NaN', 'Infinity', '-Infinity', false, '', '00000000-0000-0000-0000-000000000000', 'null', '"str"',
       'infinity', '-infinity', '0001-01-01', '-1 days', '\\x', '{}', '{}', '{}', '{}', '{}', '{}'),
      (4, $2, 1, 1, 1, 1, 1, 1, true, 'bob''s', null, null, null, null, null, null, null, null, null, null, null, null, null, null)`,
    [alice.sub, bob.sub],
  )
  const direct = await e.owner.query(`select * from typed where owner = $1 order by k`, [alice.sub])
  const viaGateway = await sql`select * from typed order by k`
  assert.equal(viaGateway.length, 3, 'RLS: Bob\'s row is not among Alice\'s')
  // Compare as pg's own parsed values, with the classes (Date, Buffer, interval) made comparable.
  const norm = (v: unknown): unknown =>
    v instanceof Date ? { date: Number.isNaN(v.getTime()) ? String(v) : v.toISOString() }
    : Buffer.isBuffer(v) ? { bytes: v.toString('hex') }
    : Array.isArray(v) ? v.map(norm)
    : v && typeof v === 'object' && v.constructor?.name === 'PostgresInterval' ? { interval: { ...v }, iso: (v as { toISOString(): string }).toISOString() }
    : v
  const normRow = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, norm(v)]))
  assert.deepEqual(viaGateway.map(normRow), direct.rows.map(normRow))
  // The headline types, spelled out (so a shared mis-parse would show too).
  const row = viaGateway[0]!
  assert.equal(row.i8, '9007199254740993')
  assert.equal(row.num, '12345678901234567890.123456789')
  assert.ok(row.tz instanceof Date && row.tz.toISOString() === '2024-02-29T18:29:59.123Z')
  assert.ok(Buffer.isBuffer(row.by) && row.by.toString('hex') === 'deadbeef00ff')
  assert.deepEqual(row.jb, { nested: { deep: [true, false] }, n: 100 })
  assert.deepEqual(row.at, ['a', 'b c', null, 'd,e', '"q"'])
  assert.deepEqual(row.a8, ['9223372036854775807', '-1'])
  assert.ok(Object.values(viaGateway[1]!).filter((v) => v === null).length === 22)

  // Parameters round-trip too, with the same types as pg's.
  const params = [42, '9007199254740993', 'text', true, null, { a: 1 }, new Date('2024-01-02T03:04:05.678Z'), Buffer.from([0, 1, 255]), [1, 2]] as const
  const q = 'select $1::int4 as a, $2::int8 as b, $3::text as c, $4::bool as d, $5::text as e, $6::jsonb as f, $7::timestamptz as g, $8::bytea as h, $9::int4[] as i'
  const [p] = await sql.query(q, [...params])
  const pd = (await e.owner.query(q, [...params])).rows[0]
  assert.deepEqual(normRow(p!), normRow(pd))
})

test('errors carry code, position and detail; a multi-statement query is rejected and runs nothing', async () => {
  // Postgres leaves the key out of DETAIL on tables with RLS, so the detail is checked on a plain table.
  await e.owner.query('create table tags (name text primary key)')
  await sql`insert into tags values ('red')`
  const dup = await rejection(sql`insert into tags values ('red')`)
  assert.ok(dup instanceof NeonDbError)
  assert.equal(dup.code, '23505')
  assert.equal(dup.detail, 'Key (name)=(red) already exists.')
  assert.equal(dup.constraint, 'tags_pkey')
  assert.equal(dup.table, 'tags')
  assert.equal(dup.schema, 'public')
  await sql`insert into notes (id, body) values (10, 'ten')`
  const rlsDup = await rejection(sql`insert into notes (id, body) values (10, 'again')`)
  assert.equal(rlsDup.code, '23505')
  assert.equal(rlsDup.constraint, 'notes_pkey')

  const syntax = await rejection(sql.query('select id fro notes'))
  const direct = await rejection(e.owner.query('select id fro notes'))
  assert.equal(syntax.code, '42601')
  assert.ok(syntax.position, 'position is set')
  assert.equal(String(syntax.position), String(direct.position))

  const undefinedColumn = await rejection(sql`select nope from notes`)
  assert.equal(undefinedColumn.code, '42703')
  assert.equal(String(undefinedColumn.position), '8')

  for (const [text, params] of [
    [`select 1; update notes set body = 'multi'`, []],
    [`update notes set body = 'multi'; select 1`, []],
    [`select $1::int; update notes set body = 'multi'`, [1]],
  ] as const) {
    const err = await rejection(sql.query(text, [...params]))
    assert.ok(err instanceof NeonDbError, text)
    assert.equal(err.code, '42601', text)
    assert.match(err.message, /multiple commands/)
  }
  assert.deepEqual((await e.owner.query(`select count(*)::int as n from notes where body = 'multi'`)).rows, [{ n: 0 }])
})

test('pg on a direct connection agrees that NULLs and the demo rows look the same', async () => {
  // A sanity check of the comparison itself: the owner and Alice see Alice's row identically.
  const c = new pg.Client(e.dev.ownerUrl)
  await c.connect()
  try {
    const direct = await c.query('select * from users where id = $1', [alice.sub])
    const via = await sql`select * from users`
    assert.deepEqual(via.map((r) => ({ ...r, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() })),
      direct.rows.map((r) => ({ ...r, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() })))
  } finally {
    await c.end()
  }
})
