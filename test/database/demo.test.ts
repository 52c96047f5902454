import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { clientWithClaims, createDemoDatabase, sqlstate } from '../helpers/roles.js'
import type { DatabaseContext } from '../../src/database/context.js'

let db: TestDatabase
let ctx: DatabaseContext
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]

before(async () => {
  ;({ db, ctx } = await createDemoDatabase())
})
after(() => db?.close())

async function visible(claims: Record<string, unknown> | null) {
  const c = await clientWithClaims(ctx, claims)
  try {
    const users = await c.query<{ id: string }>('select id from users order by id')
    const tenants = await c.query<{ id: string }>('select id from tenants order by id')
    return { users: users.rows.map((r) => r.id), tenants: tenants.rows.map((r) => r.id) }
  } finally {
    await c.end()
  }
}

test('the owner sees every demo row (the policies are what restricts the role)', async () => {
  const c = new pg.Client(db.url)
  await c.connect()
  const r = await c.query('select count(*)::int as n from users')
  await c.end()
  assert.equal(r.rows[0].n, 2)
})

test("user A's claims see exactly A's user row and A's tenant row", async () => {
  assert.deepEqual(await visible(demoClaims(alice)), { users: [alice.sub], tenants: [alice.tenantId] })
})

test("user B's claims see exactly B's rows", async () => {
  assert.deepEqual(await visible(demoClaims(bob)), { users: [bob.sub], tenants: [bob.tenantId] })
})

test('no claims see nothing', async () => {
  assert.deepEqual(await visible(null), { users: [], tenants: [] })
})

test("inserting into another tenant fails with 42501", async () => {
  const c = await clientWithClaims(ctx, demoClaims(alice))
  try {
    const code = await sqlstate(() =>
      c.query(`insert into tenants (id, name) values ($1, 'hijack')`, ['00000000-0000-4000-8000-000000000001']),
    )
    assert.equal(code, '42501')
    const code2 = await sqlstate(() =>
      c.query(`insert into users (tenant_id, id, name, email) values ($1, $2, 'x', 'x@x')`, [bob.tenantId, bob.sub.replace(/.$/, '0')]),
    )
    assert.equal(code2, '42501')
  } finally {
    await c.end()
  }
})

test('a user can update their own row but not move it out of reach or touch another', async () => {
  const c = await clientWithClaims(ctx, demoClaims(alice))
  try {
    const own = await c.query(`update users set name = 'Alice A.' where id = $1`, [alice.sub])
    assert.equal(own.rowCount, 1)
    const other = await c.query(`update users set name = 'pwned' where id = $1`, [bob.sub])
    assert.equal(other.rowCount, 0)
    const del = await c.query(`delete from tenants where id = $1`, [bob.tenantId])
    assert.equal(del.rowCount, 0)
  } finally {
    await c.end()
  }
  const owner = new pg.Client(db.url)
  await owner.connect()
  const r = await owner.query('select name from users where id = $1', [bob.sub])
  await owner.end()
  assert.equal(r.rows[0].name, 'Bob')
})

test('auth.user_id(), auth.uid() and auth.jwt() read the installed claims', async () => {
  const c = await clientWithClaims(ctx, { ...demoClaims(alice), nested: { a: [1, 2] } })
  try {
    const r = await c.query(`select auth.user_id() as uid, auth.uid() as uuid, auth.jwt() ->> 'tenant_id' as t,
      auth.session() -> 'nested' as n, current_user as who`)
    assert.deepEqual(r.rows[0], { uid: alice.sub, uuid: alice.sub, t: alice.tenantId, n: { a: [1, 2] }, who: 'authenticated' })
  } finally {
    await c.end()
  }
  const c2 = await clientWithClaims(ctx, { sub: 'user_2abc' })
  try {
    const r = await c2.query(`select auth.user_id() as uid, auth.uid() as uuid`)
    assert.deepEqual(r.rows[0], { uid: 'user_2abc', uuid: null })
  } finally {
    await c2.end()
  }
  const c3 = await clientWithClaims(ctx, null)
  try {
    const r = await c3.query(`select auth.session() as s, auth.session() is null as sqlnull, auth.user_id() as uid`)
    assert.deepEqual(r.rows[0], { s: null, sqlnull: false, uid: null })
  } finally {
    await c3.end()
  }
})
