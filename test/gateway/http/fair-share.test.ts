/**
 * The slot counter in front of each HTTP pool (src/gateway/http/fair-share.ts): caps per identity, fewest-held
 * identity served first when a slot frees, bounded queues and waits with a reason. Pure logic: the
 * end-to-end behaviour against Postgres is test/security/fair-share.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FairShare, FairShareRefusal } from '../../../src/gateway/http/fair-share.js'
import { identityKey } from '../../../src/auth/identity.js'

const reasonOf = (p: Promise<void>) => p.then(() => 'granted', (e: FairShareRefusal) => e.reason)

test('an identity takes at most its share; others still get the rest of the pool', () => {
  const f = new FairShare({ slots: 4, perIdentity: 2, queuePerIdentity: 4 })
  assert.equal(f.tryTake('a'), true)
  assert.equal(f.tryTake('a'), true)
  assert.equal(f.tryTake('a'), false, 'a is at its share')
  assert.equal(f.tryTake('b'), true)
  assert.equal(f.tryTake('c'), true)
  assert.equal(f.tryTake('d'), false, 'the pool is full')
})

test('a freed slot goes to the identity holding the fewest, not to the one that waited longest', async () => {
  const f = new FairShare({ slots: 4, perIdentity: 3, queuePerIdentity: 4 })
  for (const k of ['a', 'a', 'b', 'b']) assert.ok(f.tryTake(k))
  const order: string[] = []
  const a = f.wait('a', 5000).then(() => order.push('a'))
  const c = f.wait('c', 5000).then(() => order.push('c'))
  f.release('b')
  await c
  assert.deepEqual(order, ['c'], 'c (holding none) before a (holding two), though a queued first')
  f.release('b')
  await a
  assert.deepEqual(order, ['c', 'a'])
  assert.equal(f.held('a'), 3)
  assert.equal(f.waiting(), 0)
})

test("an identity's requests queue behind its own; past its queue it is refused at once", async () => {
  const f = new FairShare({ slots: 2, perIdentity: 1, queuePerIdentity: 1 })
  assert.ok(f.tryTake('a'))
  const queued = f.wait('a', 5000)
  assert.equal(await reasonOf(f.wait('a', 5000)), 'queue-full')
  assert.equal(f.tryTake('a'), false, 'a new request does not jump its own queue')
  f.release('a')
  assert.equal(await reasonOf(queued), 'granted')
})

test('a wait ends with a reason: share (at its cap) or pool (behind others)', async () => {
  const f = new FairShare({ slots: 2, perIdentity: 1, queuePerIdentity: 4 })
  assert.ok(f.tryTake('a'))
  assert.ok(f.tryTake('b'))
  assert.equal(await reasonOf(f.wait('a', 20)), 'share')
  assert.equal(await reasonOf(f.wait('c', 20)), 'pool')
  assert.equal(f.waiting(), 0, 'timed-out waiters leave their queue')
  // A share that is the whole pool is no cap: its wait is a pool wait.
  const whole = new FairShare({ slots: 1, perIdentity: 1, queuePerIdentity: 1 })
  assert.ok(whole.tryTake('a'))
  assert.equal(await reasonOf(whole.wait('a', 20)), 'pool')
})

test('identity keys: provider and sub; every anonymous request shares one key', () => {
  assert.notEqual(identityKey('app', 'alice'), identityKey('app', 'bob'))
  assert.notEqual(identityKey('app', 'alice'), identityKey('other', 'alice'))
  assert.equal(identityKey(undefined, undefined), identityKey(undefined, 'x'))
})
