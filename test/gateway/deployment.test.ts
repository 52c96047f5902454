/**
 * The deployment recipes stay true to the program: every variable they set is a real setting with a
 * valid value, they run real commands, and the README's configuration table is the generated one.
 * (The Dockerfile cannot be built here; this checks what can be checked without a container engine.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { loadConfig, referenceTable } from '../../src/config/load.js'
import { SETTINGS } from '../../src/config/schema.js'
import { commands } from '../../src/cli/commands/index.js'
import { spawn } from 'node:child_process'
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { startGateway } from '../../src/gateway/index.js'
import { generateSigningKey } from '../../src/keys/generate.js'
import { createTestDatabase } from '../helpers/postgres.js'

const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8')
const known = new Set(SETTINGS.flatMap((s) => [s.env, ...(s.envAliases ?? [])]))

function assertValidEnv(env: Record<string, string>, where: string) {
  for (const name of Object.keys(env)) {
    if (name.startsWith('PG_AUTHORIZE_')) assert.ok(known.has(name), `${where} sets ${name}, which is not a setting`)
  }
  // With a database URL added (it comes from a secret file), the values must load.
  const { config } = loadConfig({ env: { PG_AUTHORIZE_DATABASE_URL: 'postgresql://owner:x@db/app', ...env }, cwd: os.tmpdir() })
  return config
}

test('the systemd unit sets only real settings, with valid values, and runs `serve`', () => {
  const unit = read('deploy/pg-authorize.service')
  const env = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
  assert.ok(Object.keys(env).length >= 5)
  // TLS files do not exist here; validation only checks they come together.
  const config = assertValidEnv(env, 'the unit')
  assert.equal(config.metricsPort, 9464)
  assert.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/pg-authorize\/bin\/pg-authorize\.js serve$/m)
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m)
  assert.match(unit, /^EnvironmentFile=/m)
  assert.doesNotMatch(unit, /DATABASE_URL=postgres/, 'the owner URL must not be written into the unit')
})

test('the Dockerfile sets only real settings, exposes the default ports and runs `serve` in exec form', () => {
  const file = read('deploy/Dockerfile')
  const envBlock = /^ENV ([\s\S]*?)\n(?=\S)/m.exec(file.split('FROM node:20-bookworm-slim\n')[1]!)![1]!
  const env = Object.fromEntries([...envBlock.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]))
  delete env.NODE_ENV
  const config = assertValidEnv(env, 'the Dockerfile')
  const exposed = /^EXPOSE (.*)$/m.exec(file)![1]!.split(/\s+/).map(Number)
  assert.deepEqual(exposed, [config.port, config.pgPort, config.metricsPort])
  assert.match(file, /^ENTRYPOINT \["node", "bin\/pg-authorize\.js"\]$/m)
  assert.match(file, /^CMD \["serve"\]$/m)
  assert.ok(commands.some((c) => c.name === 'serve'))
})

test("the Dockerfile's HEALTHCHECK passes against a ready gateway on its port, and fails against one that is not ready", async () => {
  const file = read('deploy/Dockerfile')
  const check = /^HEALTHCHECK .* CMD node -e "(.*)"$/m.exec(file)![1]!
  const url = new URL(/fetch\('([^']+)'\)/.exec(check)![1]!)
  const env = Object.fromEntries([.../^ENV ([\s\S]*?)\n(?=\S)/m.exec(file.split('FROM node:20-bookworm-slim\n')[1]!)![1]!.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]))
  delete env.NODE_ENV
  assert.equal(Number(url.port), assertValidEnv(env, 'the Dockerfile').port, 'the check probes the port the gateway listens on')
  assert.equal(url.pathname, '/ready')
  // Run the check itself, pointed at a real gateway's port.
  // Asynchronously: the gateway runs in this process and must answer while the check waits.
  const probe = (port: number) => new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['-e', check.replace(`:${url.port}/`, `:${port}/`)], { stdio: 'ignore', timeout: 20_000 })
    child.on('exit', (code) => resolve(code))
  })
  const db = await createTestDatabase()
  try {
    await setup(db.url)
    const notReady = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
    try {
      assert.equal(await probe(notReady.port), 1, 'no provider yet: not ready, the check fails')
    } finally {
      await notReady.close()
    }
    const key = await generateSigningKey({ alg: 'ES256' })
    await withOwner(db.url, (c) => addProvider(c, { name: 'app', jwks: { keys: [key.publicJwk as Record<string, unknown>] } }))
    const gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
    try {
      assert.equal(await probe(gw.port), 0)
    } finally {
      await gw.close()
    }
  } finally {
    await db.close()
  }
})

test("the README's configuration reference is the generated table", () => {
  assert.ok(read('README.md').includes(referenceTable()), 'README.md is out of date: paste the output of `pg-authorize config reference`')
})
