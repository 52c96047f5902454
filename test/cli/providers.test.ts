/**
 * `providers refresh` reaches every running gateway: after `keys retire`, two gateways serving the same
 * database keep accepting the retired key from their JWKS cache until the command runs, then refuse it.
 * The provider poll is left at its 30 s, so only the change notification can do it within the test.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { ensureKeys, retireKey, rotateKeys, type KeyDir } from '../../src/keys/index.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { startGateway, type Gateway } from '../../src/gateway/gateway.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'

let db: TestDatabase
let dir: string
let keys: KeyDir
let jwks: JwksServer
const clean = { DATABASE_URL: '', PG_AUTHORIZE_DATABASE_URL: '', PG_AUTHORIZE_CONFIG: '' }

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  dir = await mkdtemp(path.join(os.tmpdir(), 'pga-providers-'))
  await chmod(dir, 0o755)
  keys = await ensureKeys(path.join(dir, 'keys'))
  jwks = await serveJwks({ dir: keys.dir, port: 0 })
  await withOwner(db.url, (c) => addProvider(c, { name: 'local', jwksUrl: jwks.url }))
})
after(async () => {
  await jwks?.close()
  await db?.close()
})

async function status(gw: Gateway, token: string): Promise<number> {
  const r = await fetch(`${gw.url}/sql`, {
    method: 'POST',
    headers: { 'neon-connection-string': `postgresql://authenticated@x/${db.database}`, authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'select 1', params: [] }),
  })
  await r.body?.cancel()
  return r.status
}

test('providers refresh makes every running gateway refetch the JWKS, so a retired key stops working', async () => {
  const oldToken = await signToken({ privateJwk: keys.current.privateJwk, sub: 'u1', expiresIn: '10m' })
  const oldKid = keys.current.kid
  // No token cache, so every request checks the key set (the cache would hide it for up to a minute).
  const opts = { databaseUrl: db.url, port: 0, pgPort: false as const, databases: { verifier: { cache: false as const } } }
  const gateways = [await startGateway(opts), await startGateway(opts)]
  try {
    for (const gw of gateways) assert.equal(await status(gw, oldToken), 200)
    await rotateKeys(keys.dir)
    await retireKey(keys.dir, oldKid)
    // Still accepted: the gateways' keys are fresh for the JWKS cache lifetime (10 minutes by default).
    for (const gw of gateways) assert.equal(await status(gw, oldToken), 200)

    const r = await runCli(['providers', 'refresh', '--database-url', db.url], { env: clean })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /'local'/)

    for (const gw of gateways) {
      const deadline = Date.now() + 10_000
      while ((await status(gw, oldToken)) === 200 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100))
      assert.equal(await status(gw, oldToken), 400, 'the retired key is still accepted after providers refresh')
    }
  } finally {
    for (const gw of gateways) await gw.close()
  }
})

test('providers refresh NAME refuses an unknown provider', async () => {
  const r = await runCli(['providers', 'refresh', 'nope', '--database-url', db.url], { env: clean })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no provider named 'nope'/)
})

test('providers add warns when the JWKS URL does not answer, and --json says the same', async () => {
  const bad = await runCli(['providers', 'add', '--jwks-url', 'http://127.0.0.1:1/.well-known/jwks.json', '--name', 'down', '--database-url', db.url], { env: clean })
  assert.equal(bad.code, 0, bad.stderr) // stored anyway: the issuer may simply not be up yet
  assert.match(bad.stdout, /added provider 'down'/)
  assert.match(bad.stderr, /warning: .*'down'.*JWKS/)
  const json = await runCli(['providers', 'add', '--jwks-url', 'http://127.0.0.1:1/.well-known/jwks.json', '--name', 'down2', '--json', '--database-url', db.url], { env: clean })
  assert.equal(json.code, 0, json.stderr)
  const out = JSON.parse(json.stdout) as { name: string; keys: unknown[]; keysError?: { code: string; message: string } }
  assert.equal(out.name, 'down2')
  assert.deepEqual(out.keys, [])
  assert.equal(out.keysError?.code, 'ERR_JWKS_FETCH_FAILED')
  // A JWKS that answers: its keys, no warning.
  const good = await runCli(['providers', 'add', '--jwks-url', jwks.url, '--name', 'up', '--json', '--database-url', db.url], { env: clean })
  assert.equal(good.code, 0, good.stderr)
  assert.doesNotMatch(good.stderr, /warning/)
  const up = JSON.parse(good.stdout) as { keys: { kid: string }[]; keysError?: unknown }
  assert.ok(up.keys.length >= 1)
  assert.equal(up.keysError, undefined)
})
