/**
 * `COPY … FROM STDIN` has no data source over HTTP. The gateway must refuse it and finish the protocol so the
 * pooled connection comes back (issue 23 item 1): ten such requests used to leave ten backends waiting in
 * `ClientRead` for a Sync that never came, and every later request failed with 53300.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startStack, type Stack } from './harness.js'
import { eventually } from '../../helpers/wait.js'

let stack: Stack

before(async () => {
  // A short acquire timeout: a leaked pool shows as 53300 in a second instead of five.
  stack = await startStack({ pool: { max: 10, acquireTimeoutMillis: 1000 } })
  // A table the role may insert into with RLS off (setup's default privileges grant that on new tables).
  await stack.owner.query('create table feedback (note text)')
})
after(async () => {
  await stack?.close()
})

const stuckInClientRead = async () =>
  (
    await stack.owner.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where usename = 'authenticated' and state = 'active' and wait_event = 'ClientRead'`,
    )
  ).rows[0]!.n

test('COPY FROM STDIN over HTTP is refused and leaks no pooled connection', async () => {
  for (const body of [
    { query: 'copy feedback from stdin' },
    { queries: [{ query: 'copy feedback from stdin' }, { query: 'select 1' }] },
    { queries: [{ query: 'select 1' }, { query: 'copy feedback from stdin' }] },
  ]) {
    const answers = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const res = await stack.post(JSON.stringify(body))
        return { status: res.status, json: (await res.json()) as { code: string; message: string } }
      }),
    )
    for (const a of answers) {
      assert.equal(a.status, 400, JSON.stringify(a.json))
      assert.notEqual(a.json.code, '53300', JSON.stringify(a.json))
    }
  }
  // Other users' requests all succeed, on the same pool of ten (twenty users: one user alone may hold only
  // half the pool, by the fair share).
  const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.sql(`bob${i}`)`select auth.user_id() as u`))
  rows.forEach((r, i) => assert.deepEqual(r, [{ u: `bob${i}` }]))
  // And no backend is left waiting for COPY data.
  assert.ok(await eventually(async () => (await stuckInClientRead()) === 0, 40), 'a backend is still in ClientRead')
  const copied = await stack.owner.query<{ n: number }>('select count(*)::int as n from feedback')
  assert.equal(copied.rows[0]!.n, 0)
})
