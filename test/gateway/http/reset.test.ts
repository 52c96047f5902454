/**
 * The reset between two requests on one pooled connection, through `/sql` with the real Neon client (one
 * connection, so every request lands on the one before's session). A single query carries the reset inside
 * its own implicit transaction (no COMMIT of its own, pool.ts `inlinePrelude`), so a query that fails rolls
 * the reset back with it and the previous user's state comes back: the next request must reset again, and
 * the failing request itself must never have seen that state. UNLISTEN alone waits for a commit, so a
 * session that listens is reset in a transaction of its own first.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startStack, type Stack } from './harness.js'

let s: Stack
before(async () => {
  s = await startStack({ pool: { max: 1, fairShare: false } })
})
after(() => s?.close())

const leftBehind = `select current_setting('app.note', true) as note, to_regclass('pg_temp.alice_notes') is not null as temp_table,
  current_setting('statement_timeout') as st, (select count(*)::int from pg_catalog.pg_prepared_statements) as prepared`

test('a failing query after another user\'s session state: it sees none of it, and neither does the next request', async () => {
  const alice = s.sql('alice')
  await alice`select set_config('app.note', 'alice was here', false), set_config('statement_timeout', '4321', false)`
  await alice`create temp table alice_notes (x int)`
  await alice`prepare alice_plan as select 1`
  // Bob's statement fails after reading what is there: the reset in his pipeline ran first.
  const bob = s.sql('bob')
  await assert.rejects(bob`select 1 / (case when current_setting('app.note', true) = 'alice was here' then 1 else 0 end)`, /division by zero/)
  // Bob's failure rolled his reset back: Alice's state is on the connection again, and Carol's reset removes it.
  const [carol] = await s.sql('carol').query(leftBehind)
  assert.deepEqual(carol, { note: '', temp_table: false, st: '30s', prepared: 0 })
})

test('the same through a serializable batch (its reset commits on its own before the batch\'s BEGIN)', async () => {
  const alice = s.sql('alice')
  await alice`select set_config('app.note', 'alice again', false)`
  const bob = s.sql('bob')
  const [[row]] = await bob.transaction((sql) => [sql`select current_setting('app.note', true) as note,
    current_setting('transaction_isolation') as iso`], { isolationLevel: 'Serializable' })
  assert.deepEqual(row, { note: '', iso: 'serializable' })
  // A batch that fails after the reset rolls it back; the next request is reset all the same.
  await alice`select set_config('app.note', 'alice once more', false)`
  await assert.rejects(bob.transaction((sql) => [sql`select 1`, sql`select 1 / 0`]), /division by zero/)
  const [after] = await s.sql('carol')`select current_setting('app.note', true) as note`
  assert.deepEqual(after, { note: '' })
})

test('a LISTEN left by one request: the next sees no channel of it, though UNLISTEN waits for a commit', async () => {
  await s.sql('alice')`listen alice_private_channel`
  const [bob] = await s.sql('bob')`select array_length(array(select pg_listening_channels()), 1) as channels, auth.user_id() as uid`
  assert.deepEqual(bob, { channels: null, uid: 'bob' })
  // And with the inline reset again once the session no longer listens.
  const [carol] = await s.sql('carol')`select array_length(array(select pg_listening_channels()), 1) as channels`
  assert.deepEqual(carol, { channels: null })
})
