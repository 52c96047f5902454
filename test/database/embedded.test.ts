import { test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { createTestDatabase } from '../helpers/postgres.js'

test('the test harness gives a real Postgres with an empty database of its own', async () => {
  const db = await createTestDatabase()
  try {
    const c = new pg.Client(db.url)
    await c.connect()
    const r = await c.query<{ db: string; su: boolean }>(
      `select current_database() as db, (select rolsuper from pg_roles where rolname = current_user) as su`,
    )
    await c.end()
    assert.equal(r.rows[0]!.db, db.database)
    assert.equal(r.rows[0]!.su, true)
    assert.ok(db.major >= 14)
  } finally {
    await db.close()
  }
})
