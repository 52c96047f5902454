/**
 * Every command that talks to a database reads the one configuration `serve` reads, with the same
 * precedence: --database-url, then PG_AUTHORIZE_DATABASE_URL / DATABASE_URL, then databaseUrl in the
 * configuration file (--config FILE or ./pg-authorize.config.json). The systemd recipe relies on it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setup } from '../../src/database/setup.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'

let db: TestDatabase
let dir: string
// Nothing on this port: a URL that must not be the one used.
const WRONG = 'postgresql://postgres:wrong-password@127.0.0.1:1/nowhere'
// No DATABASE_URL leaking in from the environment the tests run in.
const clean = { DATABASE_URL: '', PG_AUTHORIZE_DATABASE_URL: '', PG_AUTHORIZE_CONFIG: '' }

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  dir = await mkdtemp(path.join(os.tmpdir(), 'pga-config-'))
})
after(async () => {
  await db?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('setup, providers, lint, as and matrix read PG_AUTHORIZE_DATABASE_URL', async () => {
  const env = { ...clean, PG_AUTHORIZE_DATABASE_URL: db.url }
  await writeFile(path.join(dir, 'claims.json'), JSON.stringify({ nobody: null }))
  for (const args of [
    ['setup'],
    ['providers', 'list'],
    ['lint'],
    ['as', '--anonymous', '-c', 'select 1 as one'],
    ['matrix', '--claims', 'claims.json'],
  ]) {
    const r = await runCli(args, { env, cwd: dir })
    assert.equal(r.code, 0, `${args.join(' ')}:\n${r.stderr}`)
  }
})

test('pg-authorize.config.json in the working directory, or --config FILE, names the database', async () => {
  const sub = await mkdtemp(path.join(dir, 'file-'))
  await writeFile(path.join(sub, 'pg-authorize.config.json'), JSON.stringify({ databaseUrl: db.url }))
  const r = await runCli(['providers', 'add', '--jwks-url', 'http://127.0.0.1:1/.well-known/jwks.json', '--name', 'from-file'], { env: clean, cwd: sub })
  assert.equal(r.code, 0, r.stderr)
  const other = path.join(dir, 'elsewhere.json')
  await writeFile(other, JSON.stringify({ databaseUrl: db.url }))
  const listed = await runCli(['providers', 'list', '--config', other], { env: clean, cwd: dir })
  assert.equal(listed.code, 0, listed.stderr)
  // An aligned table: every line's column separators at the same places.
  const lines = listed.stdout.trimEnd().split('\n')
  assert.match(lines[0]!, /^ name +\| jwks +\| roles/)
  assert.match(lines[2]!, /^ from-file +\| http:\/\/127\.0\.0\.1:1\/\.well-known\/jwks\.json \| authenticated/)
  assert.equal(lines[0]!.indexOf('|'), lines[2]!.indexOf('|'))
})

test('the precedence is the same as serve: flag, then environment, then file', async () => {
  const sub = await mkdtemp(path.join(dir, 'prec-'))
  await writeFile(path.join(sub, 'pg-authorize.config.json'), JSON.stringify({ databaseUrl: WRONG }))
  // The environment beats the file.
  const envWins = await runCli(['providers', 'list'], { env: { ...clean, PG_AUTHORIZE_DATABASE_URL: db.url }, cwd: sub })
  assert.equal(envWins.code, 0, envWins.stderr)
  // The flag beats the environment.
  const flagWins = await runCli(['providers', 'list', '--database-url', WRONG], { env: { ...clean, DATABASE_URL: db.url }, cwd: sub })
  assert.notEqual(flagWins.code, 0)
  assert.match(flagWins.stderr, /ERR_DB_CONNECT/)
  assert.doesNotMatch(flagWins.stderr, /wrong-password/)
  // None at all: the error names every source.
  const none = await runCli(['lint'], { env: clean, cwd: dir })
  assert.equal(none.code, 2)
  assert.match(none.stderr, /--database-url, PG_AUTHORIZE_DATABASE_URL, DATABASE_URL or databaseUrl in the configuration file/)
})

test('setup prints the ports the gateway uses: its flags, then serve\'s environment and file', async () => {
  const sub = await mkdtemp(path.join(dir, 'ports-'))
  const strings = async (args: string[], env: Record<string, string>) => {
    const r = await runCli(['setup', '--json', ...args], { env: { ...clean, PG_AUTHORIZE_DATABASE_URL: db.url, ...env }, cwd: sub })
    assert.equal(r.code, 0, r.stderr)
    const s = (JSON.parse(r.stdout) as { connectionStrings: { authenticated: string; sqlEndpoint: string } }).connectionStrings
    return `${s.authenticated} ${s.sqlEndpoint}`
  }
  const db_ = encodeURIComponent(db.database)
  assert.equal(await strings([], {}), `postgresql://authenticated@localhost:5433/${db_} http://localhost:4444/sql`)
  await writeFile(path.join(sub, 'pg-authorize.config.json'), JSON.stringify({ port: 8080, pgPort: 6000 }))
  assert.equal(await strings([], {}), `postgresql://authenticated@localhost:6000/${db_} http://localhost:8080/sql`)
  // The environment beats the file, as for serve; a wildcard bind address is not a host to connect to.
  assert.equal(
    await strings([], { PG_AUTHORIZE_PORT: '4555', PG_AUTHORIZE_PG_PORT: '6543', PG_AUTHORIZE_HOST: '0.0.0.0' }),
    `postgresql://authenticated@localhost:6543/${db_} http://localhost:4555/sql`,
  )
  assert.equal(await strings([], { PG_AUTHORIZE_HOST: '10.1.2.3' }), `postgresql://authenticated@10.1.2.3:6000/${db_} http://10.1.2.3:8080/sql`)
  // setup's own flags beat everything.
  assert.equal(
    await strings(['--gateway-host', 'gw.example.com', '--pg-port', '7000', '--http-port', '7001'], { PG_AUTHORIZE_PORT: '4555' }),
    `postgresql://authenticated@gw.example.com:7000/${db_} http://gw.example.com:7001/sql`,
  )
})
