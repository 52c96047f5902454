/**
 * A real Postgres for one test file: a throwaway embedded cluster of its own, or, when
 * TEST_DATABASE_URL names a server (owner rights), a fresh database on it.
 * Never a mock: everything about RLS, roles and SQL is tested against real Postgres.
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../../src/database/embedded.js'

export interface TestDatabase {
  /** Owner connection string of a database of this test's own. */
  url: string
  /** Superuser connection string to the server's `postgres` database. */
  adminUrl: string
  /** Name of the database. */
  database: string
  /** Connection string for another database on the same server, with the same credentials. */
  urlFor(database: string): string
  /** Major version of the server. */
  major: number
  close(): Promise<void>
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = '/' + encodeURIComponent(database)
  return u.toString()
}

async function serverMajor(url: string): Promise<number> {
  const c = new pg.Client(url)
  await c.connect()
  try {
    const r = await c.query<{ v: string }>(`select current_setting('server_version_num') as v`)
    return Math.floor(Number(r.rows[0]!.v) / 10000)
  } finally {
    await c.end()
  }
}

/** Starts (or connects to) a real Postgres and creates an empty database for the caller. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const database = 'pga_test_' + randomBytes(5).toString('hex')
  const shared = process.env.TEST_DATABASE_URL
  if (shared) {
    const admin = new pg.Client(shared)
    await admin.connect()
    await admin.query(`create database ${database}`)
    await admin.end()
    const url = withDatabase(shared, database)
    return {
      url,
      adminUrl: shared,
      database,
      urlFor: (db) => withDatabase(shared, db),
      major: await serverMajor(shared),
      async close() {
        const c = new pg.Client(shared)
        await c.connect()
        await c.query(`drop database if exists ${database} with (force)`)
        await c.end()
      },
    }
  }
  const dataDir = path.join(os.tmpdir(), 'pg-authorize-test-' + randomBytes(5).toString('hex'), 'data')
  const server = await startEmbeddedPostgres({ dataDir, ephemeral: true })
  const admin = new pg.Client(server.url)
  await admin.connect()
  await admin.query(`create database ${database}`)
  await admin.end()
  return {
    url: server.urlFor(database),
    adminUrl: server.url,
    database,
    urlFor: server.urlFor,
    major: await serverMajor(server.url),
    close: () => server.stop(),
  }
}
