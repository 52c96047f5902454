/**
 * Batch input the handler must refuse before anything runs (issue 23 item 5): transaction control inside a
 * batch, and isolation level names that are not own properties of the table (`constructor`, `__proto__`).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startStack, type Stack } from './harness.js'

let stack: Stack

before(async () => {
  stack = await startStack()
  await stack.owner.query('create table marks (note text)')
})
after(async () => {
  await stack?.close()
})

const batch = (queries: string[], headers: Record<string, string> = {}) =>
  stack.post(JSON.stringify({ queries: queries.map((query) => ({ query, params: [] })) }), headers)

const marks = async () => (await stack.owner.query<{ n: number }>('select count(*)::int as n from marks')).rows[0]!.n

test('a batch with its own transaction control is refused with a clear 400, and nothing runs', async () => {
  for (const control of [
    'commit', 'COMMIT AND CHAIN', '  end', 'rollback', 'abort', 'begin', 'start transaction read write',
    '-- a comment\n/* and /* a nested */ one */ commit', "prepare transaction 'x'", "commit prepared 'x'",
    'rollback and chain',
  ]) {
    const res = await batch([`insert into marks values ('before')`, control, `insert into marks values ('after')`])
    const j = (await res.json()) as { code: string; message: string }
    assert.equal(res.status, 400, `${control}: ${JSON.stringify(j)}`)
    assert.equal(j.code, '25000', control)
    assert.match(j.message, /queries\[1\] is transaction control/)
  }
  assert.equal(await marks(), 0)
  // Savepoints stay inside the batch's transaction: allowed. So are words that only look alike.
  const ok = await batch([
    'savepoint s1', `insert into marks values ('kept')`, 'rollback to savepoint s1', 'release savepoint s1',
    `select 'commit' as endless`,
  ])
  assert.equal(ok.status, 200, await ok.clone().text())
  assert.equal(await marks(), 0)
})

test('Neon-Batch-Isolation-Level: only the four names, never inherited properties', async () => {
  for (const level of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'serializable']) {
    const res = await batch(['select 1'], { 'Neon-Batch-Isolation-Level': level })
    const j = (await res.json()) as { code: string; message: string }
    assert.equal(res.status, 400, `${level}: ${JSON.stringify(j)}`)
    assert.match(j.message, /invalid isolation level: Neon-Batch-Isolation-Level must be one of ReadUncommitted, ReadCommitted, RepeatableRead, Serializable/)
  }
  const res = await batch(['select current_setting($$transaction_isolation$$) as iso'], { 'Neon-Batch-Isolation-Level': 'RepeatableRead' })
  assert.equal(res.status, 200)
})
