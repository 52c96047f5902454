/** Unit tests of the worker arithmetic of `serve --workers` (the cluster itself: test/operations/workers.test.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveWorkers, shareOfTotals } from './cluster.js'
import type { GatewayConfig } from '../config/schema.js'

test('--workers takes a count from 1 or auto, and refuses anything else with ERR_INVALID_ARGUMENT', () => {
  assert.equal(resolveWorkers('1'), 1)
  assert.equal(resolveWorkers('4'), 4)
  assert.ok(resolveWorkers('auto') >= 1)
  for (const bad of ['0', '-1', '1.5', 'two', '', '2000']) {
    assert.throws(() => resolveWorkers(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
  }
})

test('each worker gets its share of the totals, at least 1, and 0 (no limit) stays 0', () => {
  const config = {
    poolSize: 10, poolIdentityQueue: 10, wireMaxSessions: 500, wireMaxSessionsPerIdentity: 20,
    wireMaxStartupPerAddress: 0, tokenCacheSize: 10_000, port: 4444,
  } as unknown as GatewayConfig
  assert.deepEqual(shareOfTotals(config, 1), config)
  const third = shareOfTotals(config, 3)
  assert.deepEqual(
    { ...third },
    { poolSize: 3, poolIdentityQueue: 3, wireMaxSessions: 166, wireMaxSessionsPerIdentity: 6, wireMaxStartupPerAddress: 0, tokenCacheSize: 3333, port: 4444 },
  )
  assert.equal(shareOfTotals(config, 16).poolSize, 1)
})
