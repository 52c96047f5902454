/**
 * A client that disconnects mid-query gets its backend query cancelled: through the real Node server
 * (@hono/node-server's listener aborts `request.signal`), the gateway sends a CancelRequest and discards
 * the connection. Checked from the owner's view of pg_stat_activity.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startStack, type Stack } from './harness.js'
import { eventually } from '../../helpers/wait.js'

let s: Stack
before(async () => {
  s = await startStack()
})
after(() => s?.close())

const running = async (marker: string) =>
  (await s.owner.query(
    `select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()`,
    [`%${marker}%`],
  )).rows[0].n as number

test('client disconnect cancels a running pg_sleep', async () => {
  const ac = new AbortController()
  const pending = s
    .post(JSON.stringify({ query: `select pg_sleep(30) /* cancel-me */` }), {})
    .catch((e: Error) => e)
  // The harness's post has no signal; use fetch directly with one.
  const aborted = fetch(s.endpoint, {
    method: 'POST',
    signal: ac.signal,
    body: JSON.stringify({ query: `select pg_sleep(30) /* cancel-me-too */` }),
    headers: { 'Neon-Connection-String': s.authUrl, Authorization: 'Bearer user:alice' },
  }).catch((e: Error) => e)
  assert.ok(await eventually(async () => (await running('cancel-me-too')) === 1), 'the query started')
  ac.abort()
  assert.ok((await aborted) instanceof Error)
  assert.ok(await eventually(async () => (await running('cancel-me-too')) === 0), 'the backend query was cancelled')
  // Exactly the aborted request was cancelled, as its own identity; the request ended as cancelled.
  const database = decodeURIComponent(new URL(s.authUrl).pathname.slice(1))
  assert.deepEqual(s.events.filter((e) => e.kind === 'cancelled'), [{ kind: 'cancelled', database, role: 'authenticated' }])
  assert.ok(await eventually(() => s.events.some((e) => e.kind === 'request' && e.outcome === 'cancelled')), 'the request is reported as cancelled')
  // The other, still-connected request is untouched: cancel it from the owner to end the test quickly.
  assert.equal(await running('cancel-me */'), 1)
  await s.owner.query(`select pg_cancel_backend(pid) from pg_stat_activity where query like '%cancel-me */%' and pid <> pg_backend_pid()`)
  const r = await pending
  assert.ok(r instanceof Response)
  assert.equal(r.status, 400)
  assert.equal((await r.json()).code, '57014')
  // Everything went back to (or was dropped from) the pool, and the gateway still serves.
  assert.ok(await eventually(async () => s.pools.stats().every((p) => p.leased === 0)))
  const [row] = await s.sql()`select 1 as one`
  assert.deepEqual(row, { one: 1 })
})
