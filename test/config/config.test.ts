/** The configuration precedence, one test per layer, and validation that names the bad key. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig, maskedConfig } from '../../src/config/load.js'
import { LOG_LEVELS, SETTINGS, type GatewayConfig } from '../../src/config/schema.js'
import { runCli } from '../helpers/cli.js'

const URL_ = 'postgresql://owner:s3cret@db.example:5432/app'

function dirWithFile(data: unknown): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-config-'))
  writeFileSync(path.join(dir, 'pg-authorize.config.json'), typeof data === 'string' ? data : JSON.stringify(data))
  return dir
}

test('defaults apply when nothing else is given', () => {
  const { config, sources } = loadConfig({ env: { DATABASE_URL: URL_ }, cwd: os.tmpdir() })
  assert.equal(config.port, 4444)
  assert.equal(config.pgPort, 5433)
  assert.equal(config.host, '127.0.0.1')
  assert.equal(sources.port, 'default')
  assert.equal(sources.databaseUrl, 'env')
})

test('the configuration file overrides defaults', () => {
  const cwd = dirWithFile({ databaseUrl: URL_, port: 5000, allowAnonymous: true })
  const { config, sources, file } = loadConfig({ env: {}, cwd })
  assert.equal(config.port, 5000)
  assert.equal(config.allowAnonymous, true)
  assert.equal(sources.port, 'file')
  assert.equal(file, path.join(cwd, 'pg-authorize.config.json'))
})

test('environment variables override the file', () => {
  const cwd = dirWithFile({ databaseUrl: URL_, port: 5000 })
  const { config, sources } = loadConfig({ env: { PG_AUTHORIZE_PORT: '6000', PG_AUTHORIZE_ALLOW_ANONYMOUS: 'true' }, cwd })
  assert.equal(config.port, 6000)
  assert.equal(config.allowAnonymous, true)
  assert.equal(sources.port, 'env')
})

test('PG_AUTHORIZE_DATABASE_URL wins over DATABASE_URL', () => {
  const other = 'postgresql://x@other/db'
  const { config } = loadConfig({ env: { DATABASE_URL: URL_, PG_AUTHORIZE_DATABASE_URL: other }, cwd: os.tmpdir() })
  assert.equal(config.databaseUrl, other)
})

test('flags override the environment', () => {
  const cwd = dirWithFile({ databaseUrl: URL_, port: 5000 })
  const { config, sources } = loadConfig({ env: { PG_AUTHORIZE_PORT: '6000' }, flags: { port: '7000', pg: false }, cwd })
  assert.equal(config.port, 7000)
  assert.equal(config.pg, false)
  assert.equal(sources.port, 'flag')
})

test('--config names the file explicitly', () => {
  const dir = dirWithFile({ databaseUrl: URL_, poolSize: 42 })
  const { config } = loadConfig({ env: {}, configFile: path.join(dir, 'pg-authorize.config.json'), cwd: os.tmpdir() })
  assert.equal(config.poolSize, 42)
})

for (const [name, input, pattern] of [
  ['a bad env value names the variable', { env: { DATABASE_URL: URL_, PG_AUTHORIZE_POOL_SIZE: 'lots' } }, /PG_AUTHORIZE_POOL_SIZE: must be an integer/],
  ['a bad flag names the flag', { env: { DATABASE_URL: URL_ }, flags: { port: '99999' } }, /--port: must be an integer from 0 to 65535/],
  ['a bad file value names the key and file', { env: {}, cwd: dirWithFile({ databaseUrl: URL_, logLevel: 'loud' }) }, /logLevel \(in .*pg-authorize\.config\.json\): must be one of/],
  ['an unknown file key is refused', { env: {}, cwd: dirWithFile({ databaseUrl: URL_, prot: 1 }) }, /unknown key "prot"/],
  ['a file that is not JSON is refused', { env: {}, cwd: dirWithFile('{ nope') }, /is not valid JSON/],
  ['a missing database URL is named', { env: {}, cwd: os.tmpdir() }, /databaseUrl is required/],
  ['a non-postgres URL is refused', { env: { DATABASE_URL: 'http://x' } }, /DATABASE_URL: must be a postgresql:\/\/ URL/],
  ['TLS needs both files', { env: { DATABASE_URL: URL_ }, flags: { 'tls-cert': '/x.pem' } }, /tlsCert and tlsKey go together/],
] as const) {
  test(`validation: ${name}`, () => {
    assert.throws(() => loadConfig({ cwd: os.tmpdir(), ...input } as Parameters<typeof loadConfig>[0]), (err: { code?: string; message?: string }) =>
      err.code === 'ERR_INVALID_CONFIG' && pattern.test(err.message ?? ''))
  })
}

test('secrets never appear in errors or in the masked configuration', () => {
  assert.throws(() => loadConfig({ env: { DATABASE_URL: URL_, PG_AUTHORIZE_CONSOLE_TOKEN: '' }, flags: { 'metrics-token': '' }, cwd: os.tmpdir() }),
    (err: Error) => !err.message.includes('s3cret'))
  const { config } = loadConfig({ env: { DATABASE_URL: URL_, PG_AUTHORIZE_CONSOLE_TOKEN: 'tok-123' }, cwd: os.tmpdir() })
  const shown = JSON.stringify(maskedConfig(config))
  assert.ok(!shown.includes('s3cret') && !shown.includes('tok-123'), shown)
})

test('config print shows each value with its source, masked', async () => {
  const cwd = dirWithFile({ databaseUrl: URL_, port: 5000 })
  const r = await runCli(['config', 'print', '--json', '--pool-size', '3'], { cwd, env: { PG_AUTHORIZE_PG_PORT: '6543' } })
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.deepEqual([out.config.port, out.sources.port], [5000, 'file'])
  assert.deepEqual([out.config.pgPort, out.sources.pgPort], [6543, 'env'])
  assert.deepEqual([out.config.poolSize, out.sources.poolSize], [3, 'flag'])
  assert.ok(!r.stdout.includes('s3cret'))
  const bad = await runCli(['config', 'print', '--port', 'x'], { cwd })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /ERR_INVALID_CONFIG.*--port/)
})

// Compile-time: GatewayConfig is computed from the settings table, so each field's type follows its row
// (type, default, required). `npm run typecheck` fails when one does not.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const expectType = <T extends true>(ok: T): T => ok

test('GatewayConfig has one field per setting, typed by the table', () => {
  expectType<Equals<GatewayConfig['databaseUrl'], string>>(true) // required: never undefined once loaded
  expectType<Equals<GatewayConfig['poolSize'], number>>(true)
  expectType<Equals<GatewayConfig['metricsPort'], number | undefined>>(true) // no default
  expectType<Equals<GatewayConfig['tlsCert'], string | undefined>>(true)
  expectType<Equals<GatewayConfig['pg'], boolean>>(true)
  expectType<Equals<GatewayConfig['logLevel'], (typeof LOG_LEVELS)[number]>>(true)
  expectType<Equals<keyof GatewayConfig, (typeof SETTINGS)[number]['key']>>(true)
  // At run time: what loadConfig returns has exactly the keys of the table.
  const { config } = loadConfig({ env: { DATABASE_URL: URL_ }, cwd: os.tmpdir() })
  assert.deepEqual(Object.keys(config).sort(), SETTINGS.map((s) => s.key).sort())
})

test('a configuration without a database URL is refused, naming where it may come from', () => {
  assert.throws(() => loadConfig({ env: {}, cwd: os.tmpdir() }), {
    code: 'ERR_INVALID_CONFIG',
    message: 'invalid configuration: databaseUrl is required (--database-url, PG_AUTHORIZE_DATABASE_URL or DATABASE_URL)',
  })
})
