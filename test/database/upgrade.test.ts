/**
 * A gateway newer than its database's schema refuses to start with the command that fixes it, instead of
 * failing every request: here a database as 0009 left it (no `auth.reset_session()`, which every pooled
 * connection's reset calls), then `setup` applying 0010 and the gateway starting.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { openDatabaseContext, setup } from '../../src/database/index.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
})
after(() => db?.close())

test('a database set up before 0010 is refused with ERR_DB_NOT_SET_UP and the setup hint; setup upgrades it', async () => {
  const owner = new pg.Client(db.url)
  await owner.connect()
  try {
    await owner.query(`drop function auth.reset_session(boolean); delete from pgauthorize.migrations where version >= 10`)
  } finally {
    await owner.end()
  }
  await assert.rejects(openDatabaseContext(db.url), (err: Error & { code?: string; hint?: string }) =>
    err.code === 'ERR_DB_NOT_SET_UP' && /older than this gateway/.test(err.message) && /pg-authorize setup/.test(err.hint ?? ''))
  await setup(db.url)
  const ctx = await openDatabaseContext(db.url)
  await ctx.close()
})
