/**
 * The restricted roles' time limits after `setup` (issue 22): `statement_timeout` and
 * `idle_in_transaction_session_timeout`, sent in the startup packet of every restricted-role connection
 * (never `ALTER ROLE ... SET`, which the role repair would take for tampering and wipe). A long query
 * fails with 57014 through every transport and through the testing tools; a client's own `SET` lasts
 * only until the pool resets the connection for the next request.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { openAsSession } from '../../src/testing/run-as.js'
import { policyTester } from '../../src/testing/index.js'
import { alice, startStack, TRANSPORTS, until, type Stack } from './stack.js'

const LIMIT_MS = 400
const IDLE_MS = 700

let s: Stack
let token: string

before(async () => {
  // A pool of one: consecutive HTTP requests share one backend, so a SET could only leak through the reset.
  s = await startStack({ poolSize: 1, setup: { statementTimeoutMs: LIMIT_MS, idleInTransactionTimeoutMs: IDLE_MS } })
  token = await s.token(s.claimsOf(alice))
})
after(() => s?.close())

test('a long query fails with 57014 over HTTP, wire TCP and WebSocket; the limit is a client setting, not a role default', async () => {
  for (const t of TRANSPORTS) {
    const out = await s.run(t, token, 'select pg_sleep(5)')
    assert.equal(out.ok, false, t)
    if (out.ok) continue
    assert.equal(out.code, '57014', `${t}: ${out.message}`)
    assert.match(out.message, /canceling statement due to statement timeout/, t)
    const seen = await s.run(t, token, `select current_setting('statement_timeout') as st,
      (select source from pg_settings where name = 'statement_timeout') as source,
      current_setting('idle_in_transaction_session_timeout') as idle`)
    assert.ok(seen.ok, JSON.stringify(seen))
    assert.deepEqual(seen.rows[0], { st: `${LIMIT_MS}ms`, source: 'client', idle: `${IDLE_MS}ms` }, t)
  }
  // Nothing stored on the role: the role repair has nothing to undo, and did not run.
  const stored = await s.owner.query(`select count(*)::int as n from pg_db_role_setting where setrole = 'authenticated'::regrole`)
  assert.equal(stored.rows[0].n, 0)
  assert.equal(s.gatewayEvents.filter((e) => e.kind === 'role-repair').length, 0)
  assert.match(await s.gateway.metrics.text(), /pg_authorize_timeouts_total\{transport="http",reason="statement_timeout"\} [1-9]/)
})

test("HTTP: a client's SET statement_timeout = 0 does not outlive its request", async () => {
  const pid = async () => {
    const r = await s.http(token, { query: 'select pg_backend_pid()::text as pid', params: [] })
    assert.ok(r.ok)
    return r.rows[0]!.pid
  }
  const first = await pid()
  const lifted = await s.http(token, { query: 'select set_config($1, $2, false) as v', params: ['statement_timeout', '0'] })
  assert.ok(lifted.ok, JSON.stringify(lifted))
  const slow = await s.http(token, { query: 'select pg_sleep(2)', params: [] })
  assert.equal(slow.ok, false)
  if (!slow.ok) assert.equal(slow.code, '57014', slow.message)
  assert.equal(await pid(), first, 'the same pooled backend served every request')
  // Within one request (a batch) the client does own its transaction's settings: what the limit is not for.
  const batch = await s.http(token, { queries: [
    { query: `select set_config('statement_timeout', '0', true)`, params: [] },
    { query: 'select pg_sleep(0.6)', params: [] },
  ] })
  assert.ok(batch.ok, JSON.stringify(batch))
})

test('wire: a session starts under the limit; its client may lift it for its own session only', async () => {
  const one = await s.session('tcp', token)
  try {
    assert.equal((await one.query('select pg_sleep(1)') as { code?: string }).code, '57014')
    assert.ok((await one.query('set statement_timeout = 0')).ok)
    assert.ok((await one.query('select pg_sleep(0.6)')).ok, 'the client owns its session')
  } finally {
    await one.close()
  }
  const next = await s.run('ws', token, 'select pg_sleep(1)')
  assert.equal(next.ok ? 'ok' : next.code, '57014', 'a new session starts with the limit again')
})

test('wire: a session idle in a transaction past the limit is ended with 25P03', async () => {
  const { client, close } = await s.rawSession('tcp', token)
  const errors: Array<{ code?: string; message: string }> = []
  client.on('error', (err) => errors.push(err as { code?: string; message: string }))
  try {
    await client.query('begin')
    await client.query('select 1')
    await until(() => errors.length > 0, 'the idle-in-transaction timeout', 10_000)
    assert.equal(errors[0]!.code, '25P03', errors[0]!.message)
    assert.match(errors[0]!.message, /idle-in-transaction timeout/)
  } finally {
    await close()
  }
})

test('the testing tools run under the limit too: `as` and the policy tester', async () => {
  const session = await openAsSession(s.ownerUrl, { role: 'authenticated', claims: s.claimsOf(alice) })
  try {
    const r = await session.run('select pg_sleep(5)')
    assert.equal(r.error?.sqlstate, '57014', JSON.stringify(r))
  } finally {
    await session.close()
  }
  const t = await policyTester(s.ownerUrl)
  try {
    await t.as(s.claimsOf(alice)).expectDenied('select pg_sleep(5)', [], '57014')
  } finally {
    await t.close()
  }
})
