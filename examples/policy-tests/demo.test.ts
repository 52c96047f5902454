/**
 * Policy tests for the guide's demo (tenants and users with crudPolicy), written with node:test and the
 * pg-authorize test library. In your project, import from 'pg-authorize/testing' and point
 * POLICY_TESTS_DATABASE_URL at a test database (owner URL) where `pg-authorize setup` ran and your
 * migrations are applied. Run: node --import tsx --test examples/policy-tests/demo.test.ts
 *
 * Without POLICY_TESTS_DATABASE_URL, this file starts a throwaway embedded Postgres with the demo.
 *
 * @module
 */
import { after, before, describe, test } from 'node:test'
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { policyTester, type PolicyTester } from '../../src/testing/index.js' // 'pg-authorize/testing'
import { setup, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/database/index.js'
import { loadDemo } from '../../src/dev/demo.js'

const ALICE = { sub: '2e7e25e8-5445-40bd-8f89-dc19bba64faa', tenant_id: 'f330c503-5e9c-46a7-8393-2995aeb03675' }
const BOB = { sub: '9c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e', tenant_id: '5b7ad2a4-3f1d-4c1c-9a8e-0d6a3c2b1e90' }

let server: EmbeddedPostgresHandle | undefined
let db: PolicyTester

before(async () => {
  let url = process.env.POLICY_TESTS_DATABASE_URL
  if (!url) {
    server = await startEmbeddedPostgres({ dataDir: path.join(os.tmpdir(), `pga-example-${randomUUID()}`), ephemeral: true })
    url = server.url
    await setup(url)
    await loadDemo(url)
  }
  db = await policyTester(url)
})

after(async () => {
  await db?.close()
  await server?.stop()
})

describe('users', () => {
  test('a user sees only their own row', async () => {
    await db.as(ALICE).expectRows('select id, name from users', [{ id: ALICE.sub, name: 'Alice' }])
    await db.as(BOB).expectNoRows('select * from users where id = $1', [ALICE.sub])
  })

  test("a user cannot change another user's row", async () => {
    await db.as(ALICE).expectRowCount('update users set name = $1 where id = $2', ['pwned', BOB.sub], 0)
    await db.as(ALICE).expectRowCount('delete from users where id = $1', [BOB.sub], 0)
  })

  test('a user cannot create a user in another tenant', async () => {
    await db.as(ALICE).expectDenied(
      'insert into users (tenant_id, id, name, email) values ($1, $2, $3, $4)',
      [BOB.tenant_id, randomUUID(), 'Mallory', 'm@example.com'],
      '42501',
    )
  })
})

describe('tenants', () => {
  test("a user sees only their tenant, and requests without a token see nothing", async () => {
    await db.as(ALICE).expectRows('select name from tenants', [{ name: 'Neon' }])
    await db.anonymous().expectNoRows('select * from tenants')
    await db.as(null).expectNoRows('select * from tenants')
  })

  test('a new tenant is visible to its own users only (all in one rolled-back transaction)', async () => {
    const carol = { sub: randomUUID(), tenant_id: randomUUID() }
    await db.isolate(async (t) => {
      await t.as(carol).query('insert into tenants (id, name) values ($1, $2)', [carol.tenant_id, 'Carol Inc'])
      await t.as(carol).expectRows('select name from tenants', [{ name: 'Carol Inc' }])
      await t.as(ALICE).expectNoRows('select * from tenants where id = $1', [carol.tenant_id])
    })
    // rolled back: Carol's tenant is gone
    await db.as(carol).expectNoRows('select * from tenants')
  })
})
