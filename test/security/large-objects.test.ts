/**
 * Large objects are outside RLS and belong to the role, so without setup's revocation every user of
 * `authenticated` can read and unlink the others' (issue 14 item 7). After setup (by a superuser, as here),
 * user A cannot create one and user B cannot read, overwrite or unlink one the role owns, over any transport;
 * where the revocation is missing, lint reports it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { setup } from '../../src/database/setup.js'
import { LARGE_OBJECT_FUNCTIONS } from '../../src/database/large-objects.js'
import { lintPolicies } from '../../src/testing/lint.js'
import { alice, bob, startStack, TRANSPORTS, type Stack } from './stack.js'

let s: Stack
let aliceToken: string
let bobToken: string
before(async () => {
  s = await startStack()
  aliceToken = await s.token(s.claimsOf(alice))
  bobToken = await s.token(s.claimsOf(bob))
})
after(() => s?.close())

test("no user of a restricted role can create, read or unlink large objects, so not another user's", async () => {
  for (const transport of TRANSPORTS) {
    // Alice stores a secret the way any client library would.
    const created = await s.run(transport, aliceToken, `select lo_from_bytea(0, 'alice''s secret')::int8 as oid`)
    assert.ok(!created.ok && created.code === '42501', `${transport}: Alice created a large object: ${JSON.stringify(created)}`)
    // One the role owns anyway (made before setup revoked the functions, say): Bob must not reach it.
    const lo = (await s.owner.query<{ oid: string }>(`select lo_from_bytea(0, 'alice''s secret')::int8 as oid`)).rows[0]!.oid
    await s.owner.query(`alter large object ${lo} owner to authenticated`)
    for (const sql of [
      `select convert_from(lo_get(${lo}), 'UTF8') as data`,
      `select loread(lo_open(${lo}, 262144), 100) as data`,
      `select lo_put(${lo}, 0, 'bob')`,
      `select lo_unlink(${lo})`,
    ]) {
      const out = await s.run(transport, bobToken, sql)
      assert.ok(!out.ok && out.code === '42501', `${transport}: Bob ran ${sql}: ${JSON.stringify(out)}`)
    }
    const still = await s.owner.query(`select convert_from(lo_get(${lo}), 'UTF8') as data`)
    assert.equal(still.rows[0].data, "alice's secret")
    await s.owner.query(`select lo_unlink(${lo})`)
  }
  // The owner keeps them.
  assert.ok((await s.owner.query(`select lo_unlink(lo_from_bytea(0, 'x'))`)).rows.length === 1)
})

test('lint reports large-object functions a restricted role can still execute, and setup removes them again', async () => {
  const clean = await lintPolicies(s.ownerUrl)
  assert.deepEqual(clean.findings.filter((f) => f.rule === 'large_objects_executable'), [])
  // As on a server where setup could not revoke them (the Postgres default).
  const list = LARGE_OBJECT_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ')
  await s.owner.query(`grant execute on function ${list} to public`)
  const exposed = await lintPolicies(s.ownerUrl)
  const found = exposed.findings.filter((f) => f.rule === 'large_objects_executable')
  assert.deepEqual(found.map((f) => [f.object, f.severity]), [['anonymous', 'error'], ['authenticated', 'error']])
  assert.ok((await s.run('tcp', aliceToken, `select lo_unlink(lo_from_bytea(0, 'x'))`)).ok, 'exposed again')
  await setup(s.ownerUrl)
  assert.deepEqual((await lintPolicies(s.ownerUrl)).findings.filter((f) => f.rule === 'large_objects_executable'), [])
  const out = await s.run('tcp', aliceToken, `select lo_from_bytea(0, 'x')`)
  assert.ok(!out.ok && out.code === '42501', JSON.stringify(out))
})
