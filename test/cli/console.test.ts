/**
 * `serve --console` through the real CLI: the console is off by default, and on with `--console` it
 * prints its URL and a random admin token once, which logs in; `--console-token` sets the token and is
 * not echoed.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { setup } from '../../src/database/setup.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { startCli } from '../helpers/cli.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
})
after(async () => {
  await db?.close()
})

const serve = (extra: string[]) =>
  startCli(['serve', '--database-url', db.url, '--port', '0', '--no-pg', ...extra], /SQL over HTTP:\s+(http:\/\/\S+)\/sql\n/)

async function login(base: string, token: string): Promise<number> {
  const res = await fetch(`${base}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: new URLSearchParams({ token }).toString(),
  })
  return res.status
}

test('serve has no console unless --console is given', async () => {
  const cli = await serve([])
  try {
    const base = cli.match[1]!
    assert.doesNotMatch(cli.output(), /Console/)
    const res = await fetch(`${base}/console/providers`)
    assert.notEqual(res.status, 200)
    assert.notEqual(res.headers.get('x-frame-options'), 'DENY', 'the console handler did not answer')
    assert.notEqual(await login(base, 'x'.repeat(32)), 303)
  } finally {
    await cli.stop()
  }
})

test('serve --console prints a random admin token once, and it logs in', async () => {
  const cli = await startCli(['serve', '--database-url', db.url, '--port', '0', '--no-pg', '--console'], /Console admin token: (\S+)\n/)
  try {
    const token = cli.match[1]!
    const base = /SQL over HTTP:\s+(http:\/\/\S+)\/sql/.exec(cli.output())![1]!
    assert.match(cli.output(), new RegExp(`Console:\\s+${base}/console`))
    assert.equal(cli.output().split(token).length - 1, 1, 'the token is printed exactly once')
    assert.ok(token.length >= 24)
    assert.equal(await login(base, token + 'x'), 401)
    assert.equal(await login(base, token), 303)
  } finally {
    await cli.stop()
  }
})

test('serve --console --console-token uses the given token and does not print it', async () => {
  const token = 'given-console-token-' + 'z'.repeat(16)
  const cli = await startCli(['serve', '--database-url', db.url, '--port', '0', '--no-pg', '--console', '--console-token', token], /Console:\s+(http:\/\/\S+)\/console\n/)
  try {
    assert.ok(!cli.output().includes(token))
    assert.equal(await login(cli.match[1]!, token), 303)
  } finally {
    await cli.stop()
  }
})
