/**
 * The behaviour of node-postgres' internals that database/pg-internals.ts relies on, pinned against the
 * exact pg version in package.json: an upgrade that changes any of it fails here before it breaks the
 * pool's resets, cancels or the wire relay.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { readFileSync } from 'node:fs'
import { backendKey, destroySocket, isReadyForQuery, onParameterStatus, onReadyForQuery, takeOverSocket } from '../../src/database/pg-internals.js'
import { sendCancelRequest } from '../../src/gateway/protocol.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
})
after(async () => {
  await db?.close()
})

test('pg is pinned to one exact version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
  assert.match(pkg.dependencies.pg!, /^\d+\.\d+\.\d+$/, 'an exact version, not a range')
  const installed = JSON.parse(readFileSync(new URL('../../node_modules/pg/package.json', import.meta.url), 'utf8')) as { version: string }
  assert.equal(installed.version, pkg.dependencies.pg)
})

test('backend key, ParameterStatus at login, and ReadyForQuery statuses seen before the query settles', async () => {
  const c = new pg.Client(db.url)
  const params = new Map<string, string>()
  onParameterStatus(c, (name, value) => params.set(name, value))
  assert.equal(backendKey(c), undefined, 'no key before login')
  await c.connect()
  try {
    assert.ok(params.has('server_version') && params.has('TimeZone'), 'the login reported its parameters')
    const key = backendKey(c)!
    assert.equal(key.processId, (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid)
    assert.equal(typeof key.secretKey, 'number')
    let status = ''
    const seen: string[] = []
    onReadyForQuery(c, (s) => {
      status = s
      seen.push(s)
    })
    // The listener runs first: whoever awaits a successful query already sees the status of its reply.
    await c.query('begin')
    assert.equal(status, 'T')
    // A failed query settles on its ErrorResponse, before its ReadyForQuery: the E shows by the next reply.
    await c.query('select 1/0').catch(() => {})
    await c.query('rollback')
    assert.equal(status, 'I')
    assert.deepEqual(seen.slice(-3), ['T', 'E', 'I'])
    assert.equal(isReadyForQuery(c), true)
    const slow = c.query('select pg_sleep(0.2)')
    assert.equal(isReadyForQuery(c), false, 'a reply is pending')
    await slow
    assert.equal(isReadyForQuery(c), true)
  } finally {
    await c.end()
  }
})

test('the backend key cancels a running statement', async () => {
  const c = new pg.Client(db.url)
  await c.connect()
  try {
    // Settled into a value at once: the cancel may land before anything awaits the query.
    const running = c.query('select pg_sleep(30)').then(() => undefined, (err: { code?: string; message?: string }) => err)
    await new Promise((r) => setTimeout(r, 200))
    await sendCancelRequest(backendKey(c)!)
    const err = await running
    assert.equal(err?.code, '57014')
    assert.match(err?.message ?? '', /user request/, 'cancelled by the request, not a statement timeout')
  } finally {
    await c.end()
  }
})

test('the socket taken over from pg speaks raw protocol; destroySocket ends a client at once', async () => {
  const c = new pg.Client(db.url)
  await c.connect()
  const socket = takeOverSocket(c)
  assert.equal(socket.isPaused(), true, 'paused until the caller reads')
  const text = Buffer.from('select 42\0')
  const query = Buffer.alloc(5 + text.length)
  query.write('Q', 0)
  query.writeInt32BE(4 + text.length, 1)
  text.copy(query, 5)
  const reply = new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      // ReadyForQuery ('Z', length 5, status) ends the reply.
      if (buf.length >= 6 && buf[buf.length - 6] === 0x5a) resolve(buf)
    })
  })
  socket.write(query)
  socket.resume()
  const bytes = await reply
  assert.ok(bytes.includes(Buffer.from('42')), 'the DataRow arrived as raw bytes, pg parsed none of it')
  socket.destroy()

  const d = new pg.Client(db.url)
  await d.connect()
  const ended = new Promise<void>((resolve) => d.once('end', () => resolve()))
  d.on('error', () => {})
  destroySocket(d)
  await ended
})
