/**
 * A failed database connection is logged with the code of its cause (an errno or SQLSTATE), so an operator
 * can tell a pooler that went away from a refused password, and never with the error's message, which may
 * name hosts and users. Through the real pools, against a loopback port nothing listens on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/observability/logger.js'
import { Observer } from '../../src/observability/observer.js'
import { GatewayPools } from '../../src/gateway/http/pool.js'
import { freePort } from '../../src/database/embedded.js'

test('a refused connection is logged as database connection failed, with cause ECONNREFUSED and no message', async () => {
  const lines: string[] = []
  const destination = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const observer = new Observer({ logger: createLogger({ destination }) })
  const port = await freePort()
  const pools = new GatewayPools({
    connectionConfig: async () => ({ connectionString: `postgresql://authenticated:pw-not-to-log@127.0.0.1:${port}/app` }),
    acquireTimeoutMillis: 2000,
    onEvent: (e) => observer.onEvent(e),
  })
  try {
    await assert.rejects(pools.acquire('app', 'authenticated'), { code: 'ERR_DB_CONNECT' })
  } finally {
    await pools.close()
  }
  const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'database connection failed')
  assert.equal(logged.length, 1, lines.join(''))
  assert.equal(logged[0]!.cause, 'ECONNREFUSED')
  assert.equal(logged[0]!.kind, 'connect-error')
  assert.ok(!lines.join('').includes('pw-not-to-log') && !lines.join('').includes(String(port)), 'the message (with host, port or password) is not logged')
})
