import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync, statSync, watch } from 'node:fs'
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../../src/database/embedded.js'
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

test("initdb's password file never sits, readable by others, in the shared temp folder", async (t) => {
  // A stand-in for /tmp (world-writable, sticky), so other processes' files cannot confuse the watch.
  const shared = await mkdtemp(path.join(os.tmpdir(), 'pga-shared-tmp-'))
  await chmod(shared, 0o1777)
  const previous = process.env.TMPDIR
  process.env.TMPDIR = shared
  t.after(async () => {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
    await rm(shared, { recursive: true, force: true })
  })
  assert.equal(os.tmpdir(), shared)
  const password = 'pw-' + randomBytes(12).toString('hex')
  const seen: string[] = []
  const exposed: string[] = []
  // Each entry created directly in the shared folder is looked at as it appears: inotify reports it while
  // initdb runs (the package's file lives until initdb ends, seconds later).
  const dataDir = path.join(os.tmpdir(), 'pga-embedded-' + randomBytes(4).toString('hex'), 'data')
  let events = 0
  const watcher = watch(shared, (_event, name) => {
    events++
    if (!name || dataDir.startsWith(path.join(shared, name) + path.sep)) return // the caller's own folder
    seen.push(name)
    try {
      const file = path.join(shared, name)
      const st = statSync(file)
      if (st.isDirectory() && (st.mode & 0o077) !== 0) exposed.push(`${name}: a folder others may enter`)
      if (st.isFile() && readFileSync(file, 'utf8').includes(password)) exposed.push(`${name}: the password, mode ${(st.mode & 0o777).toString(8)}`)
    } catch {
      // gone already
    }
  })
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined
  try {
    server = await startEmbeddedPostgres({ dataDir, password, ephemeral: true })
    const c = new pg.Client(server.url)
    await c.connect()
    await c.end()
  } finally {
    watcher.close()
    await server?.stop()
    await rm(path.dirname(dataDir), { recursive: true, force: true })
  }
  assert.ok(events > 0, 'the watch saw the shared folder in use (at least the data folder being made)')
  assert.deepEqual(exposed, [])
  assert.deepEqual(seen.filter((n) => n.startsWith('pg-password-')), [], 'a password file was written to the shared temp folder')
  assert.deepEqual(await readdir(shared), [], 'something was left in the shared temp folder')
})
