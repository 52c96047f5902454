/** lib/coalesce: a burst of triggers costs at most one run in flight and one pending, and none is lost. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { coalesce } from '../../src/lib/coalesce.js'

test('a burst of 1,000 triggers runs the job twice, and every trigger sees a run that started after it', async () => {
  let version = 0
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let started = 0
  const job = coalesce(async () => {
    const seen = version
    started++
    if (started === 1) await gate
    return seen
  })
  const first = job.trigger()
  // The first run has read version 0; these arrive while it is in flight, after version moved on.
  version = 1
  const burst = Array.from({ length: 1000 }, () => job.trigger())
  release()
  assert.equal(await first, 0)
  const results = await Promise.all(burst)
  assert.equal(job.runs, 2)
  assert.ok(results.every((r) => r === 1), 'every trigger after the change is answered by a run that saw it')
  // Idle again: the next trigger starts a run of its own.
  version = 2
  assert.equal(await job.trigger(), 2)
  assert.equal(job.runs, 3)
})

test('a failed run rejects its own triggers only; the pending run still happens', async () => {
  let n = 0
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const job = coalesce(async () => {
    n++
    if (n === 1) {
      await gate
      throw new Error('boom')
    }
    return n
  })
  const first = job.trigger()
  const second = job.trigger()
  release()
  await assert.rejects(first, /boom/)
  assert.equal(await second, 2)
})
