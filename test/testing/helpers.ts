/** Shared set-up of the testing-tools tests: a database with the guide's demo, and table snapshots. */
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { loadDemo } from '../../src/dev/demo.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

/** A throwaway database with pg-authorize set up and the demo loaded. */
export async function demoDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase()
  try {
    await setup(db.url)
    await loadDemo(db.url)
  } catch (err) {
    await db.close()
    throw err
  }
  return db
}

/** Runs SQL as the owner. */
export async function ownerQuery<R extends pg.QueryResultRow = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client(url)
  await c.connect()
  try {
    return (await c.query<R>(sql, params)).rows
  } finally {
    await c.end()
  }
}

/** Every row of every user table, as the owner sees them: to prove a tool changed nothing. */
export async function snapshotTables(url: string): Promise<string> {
  const rows = await ownerQuery<{ t: string; j: unknown }>(
    url,
    `select format('%I.%I', schemaname, relname) as t,
            (xpath('/row/j/text()', query_to_xml(format('select json_agg(x order by x::text) as j from %I.%I x', schemaname, relname), false, true, '')))[1]::text as j
       from pg_stat_user_tables where schemaname not in ('pgauthorize') order by 1`,
  )
  return JSON.stringify(rows)
}
