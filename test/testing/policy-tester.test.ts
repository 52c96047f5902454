import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { AssertionError } from 'node:assert'
import { randomUUID } from 'node:crypto'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { policyTester, type PolicyTester } from '../../src/testing/index.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { demoDatabase, snapshotTables } from './helpers.js'

let db: TestDatabase
let t: PolicyTester
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]
const A = demoClaims(alice)

before(async () => {
  db = await demoDatabase()
  t = await policyTester(db.url)
})
after(async () => {
  await t?.close()
  await db?.close()
})

/** Asserts `p` rejects with an AssertionError whose message matches every pattern. */
async function failsWith(p: Promise<unknown>, ...patterns: RegExp[]) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AssertionError, `expected an AssertionError, got ${String(err)}`)
    for (const re of patterns) assert.match(err.message, re)
    return true
  })
}

test('query runs as the restricted role with the claims: Alice sees her rows only', async () => {
  const rows = await t.as(A).query<{ id: string; who: string }>('select id, current_user as who from users')
  assert.deepEqual(rows, [{ id: alice.sub, who: 'authenticated' }])
  await t.as(A).expectRows('select id from users', [{ id: alice.sub }])
  await t.as(demoClaims(bob)).expectRows('select name from tenants where id = $1', [bob.tenantId], [{ name: 'Other Company' }])
})

test('expectRows fails with expected and actual shown; order is ignored unless ordered', async () => {
  await failsWith(t.as(A).expectRows('select id from users', [{ id: bob.sub }]), /expected 1 row/, new RegExp(bob.sub), new RegExp(alice.sub), /as authenticated with claims/)
  await failsWith(t.as(A).expectRows('select id from users', []), /expected 0 row\(s\)/, /but got 1/)
  await t.as(A).expectRows('select * from (values (1), (2)) v(n)', [{ n: 2 }, { n: 1 }])
  await failsWith(t.as(A).expectRows('select * from (values (1), (2)) v(n)', [{ n: 2 }, { n: 1 }], { ordered: true }), /in order/)
})

test('expectNoRows: passes on hidden rows, fails on visible ones', async () => {
  await t.as(A).expectNoRows('select * from users where id = $1', [bob.sub])
  await t.anonymous().expectNoRows('select * from users')
  await t.as(null).expectNoRows('select * from tenants')
  await failsWith(t.as(A).expectNoRows('select * from users where id = $1', [alice.sub]), /expected no rows, but got 1/)
})

test('expectDenied: passes on the SQLSTATE, fails on success or on another SQLSTATE', async () => {
  await t.as(A).expectDenied('insert into tenants (id, name) values ($1, $2)', [bob.tenantId, 'x'], '42501')
  await t.as(A).expectDenied('insert into tenants (id, name) values ($1, $2)', [randomUUID(), 'x'])
  await failsWith(t.as(A).expectDenied('select 1'), /denied with SQLSTATE 42501, but it succeeded/)
  await failsWith(t.as(A).expectDenied('update users set name = $1 where id = $2', ['x', bob.sub]), /succeeded \(UPDATE 0\)/, /touches 0 rows/)
  await failsWith(t.as(A).expectDenied('select 1/0'), /but it failed with 22012/)
})

test('expectRowCount: an UPDATE of another user touches 0 rows, of oneself 1', async () => {
  await t.as(A).expectRowCount('update users set name = $1 where id = $2', ['pwned', bob.sub], 0)
  await t.as(A).expectRowCount('update users set name = $1', ['renamed'], 1)
  await failsWith(t.as(A).expectRowCount('delete from users', [], 2), /expected a row count of 2, but it was 1/)
})

test('every call is rolled back: writes leave no data and the next call does not see them', async () => {
  const before = await snapshotTables(db.url)
  await t.as(A).expectRowCount(`update users set name = 'changed' where id = $1`, [alice.sub], 1)
  await t.as(A).expectRows('select name from users', [{ name: 'Alice' }])
  assert.equal(await snapshotTables(db.url), before)
})

test('isolate: one rolled-back transaction per test; identities switch and an expected error does not abort it', async () => {
  const carol = { sub: randomUUID(), tenant_id: randomUUID() }
  const before = await snapshotTables(db.url)
  const seen = await t.isolate(async (tx) => {
    await tx.as(carol).query('insert into tenants (id, name) values ($1, $2)', [carol.tenant_id, 'Carol Inc'])
    await tx.as(carol).expectRows('select name from tenants', [{ name: 'Carol Inc' }])
    await tx.as(A).expectNoRows('select * from tenants where id = $1', [carol.tenant_id])
    await tx.as(A).expectDenied('insert into tenants (id, name) values ($1, $2)', [randomUUID(), 'x'])
    await tx.as(null).expectNoRows('select * from tenants')
    return tx.as(carol).query('select count(*)::int as n from tenants')
  })
  assert.deepEqual(seen, [{ n: 1 }])
  assert.equal(await snapshotTables(db.url), before)
  await t.isolate(async (tx) => tx.as(null).expectNoRows('select * from users'), { role: 'anonymous' })
})

test('concurrent calls each see only their own identity', async () => {
  const users = Array.from({ length: 12 }, (_, i) => (i % 2 ? alice : bob))
  const results = await Promise.all(users.map((u) => t.as(demoClaims(u)).query<{ id: string }>('select id from users')))
  results.forEach((rows, i) => assert.deepEqual(rows, [{ id: users[i]!.sub }]))
})

test('refuses a role that is not restricted, and calls after close', async () => {
  assert.throws(() => t.as(A, { role: 'postgres' }), /not a restricted role/)
  const other = await policyTester({ url: db.url, role: 'anonymous' })
  await other.as(null).expectNoRows('select * from users')
  await other.close()
  assert.throws(() => other.as(null), /closed/)
})
