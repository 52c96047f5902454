/**
 * `COPY … FROM STDIN` through the console's playground (`runAs`) and `pg-authorize as` (`openAsSession`):
 * neither has a data source, so the COPY is refused, and the connection must answer again afterwards
 * (issue 23 item 1). pg's own extended-protocol query sends its Sync before the CopyFail, and Postgres
 * ignores a Sync during COPY IN: without a Sync of our own the playground waited forever.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { openDatabaseContext, type DatabaseContext } from '../../src/database/index.js'
import { runAs } from '../../src/console/playground.js'
import { openAsSession } from '../../src/testing/run-as.js'
import { Verifier } from '../../src/verify/index.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { demoDatabase, ownerQuery } from './helpers.js'

let db: TestDatabase
let ctx: DatabaseContext
const verifier = new Verifier() // unused by claims identities; runAs takes one for tokens

before(async () => {
  db = await demoDatabase()
  ctx = await openDatabaseContext(db.url)
  await ownerQuery(db.url, 'create table feedback (note text)')
})
after(async () => {
  verifier.close()
  await ctx?.close()
  await db?.close()
})

const stuck = async () =>
  (await ownerQuery<{ n: number }>(db.url, `select count(*)::int as n from pg_stat_activity
    where usename = 'authenticated' and state = 'active' and wait_event = 'ClientRead'`))[0]!.n

test('the playground refuses COPY FROM STDIN and finishes', { timeout: 20_000 }, async () => {
  const r = await runAs(ctx, verifier, 'copy feedback from stdin', { kind: 'claims', claims: { sub: 'alice' } })
  assert.equal(r.ok, false)
  assert.equal(r.error?.sqlstate, '57014', JSON.stringify(r.error))
  assert.equal(await stuck(), 0)
  // And the next run works.
  const again = await runAs(ctx, verifier, 'select 1 as one', { kind: 'claims', claims: { sub: 'alice' } })
  assert.equal(again.ok, true, JSON.stringify(again.error))
})

test('`as` refuses COPY FROM STDIN and the session keeps working', { timeout: 20_000 }, async () => {
  const session = await openAsSession(db.url, { role: 'authenticated', claims: { sub: 'alice' } }, ctx)
  try {
    const r = await session.run('copy feedback from stdin')
    assert.equal(r.error?.sqlstate, '57014', JSON.stringify(r))
    const next = await session.run('select 1 as one')
    assert.equal(next.error, undefined)
    assert.deepEqual(next.results[0]?.rows, [{ one: '1' }])
  } finally {
    await session.close()
  }
  assert.equal(await stuck(), 0)
})
