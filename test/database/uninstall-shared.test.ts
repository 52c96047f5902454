/**
 * `setup --uninstall` in one database never breaks another database of the same server. The roles
 * `authenticated` and `anonymous` are cluster-wide: when a second database's pg-authorize is removed, the
 * first's gateway keeps serving, and the output names the databases that still use the roles.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { neon, neonConfig } from '@neondatabase/serverless'
import { gatewayUrl, setup, uninstall } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { ensureKeys } from '../../src/keys/keydir.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { startGateway, type Gateway } from '../../src/gateway/gateway.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'

let db: TestDatabase
let dir: string
let jwks: JwksServer
let gw: Gateway
let token: string

before(async () => {
  db = await createTestDatabase()
  dir = await mkdtemp(path.join(os.tmpdir(), 'pga-uninstall-'))
  const keys = await ensureKeys(path.join(dir, 'keys'))
  jwks = await serveJwks({ dir: keys.dir, port: 0, host: '127.0.0.1' })
  token = await signToken({ privateJwk: keys.current.privateJwk, sub: 'user-1', expiresIn: '1h' })
})
after(async () => {
  await gw?.close()
  await jwks?.close()
  await db?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test("uninstalling a second database keeps the shared roles, and the first database's gateway keeps serving", async () => {
  const first = db.url
  await withOwner(db.adminUrl, (c) => c.query('create database uninstall_second'))
  const second = db.urlFor('uninstall_second')
  await setup(first)
  await withOwner(first, (c) => addProvider(c, { name: 'app', jwksUrl: jwks.url, roles: ['authenticated'] }))
  await setup(second)
  // The gateway role is cluster-wide too: the second setup kept its password, so the first's gateway,
  // running as that role (no owner rights), still logs in.
  const gatewayFirst = await gatewayUrl(first)
  assert.equal(new URL(await gatewayUrl(second)).password, new URL(gatewayFirst).password)

  gw = await startGateway({ databaseUrl: gatewayFirst, port: 0, pgPort: false })
  neonConfig.fetchEndpoint = `${gw.url}/sql`
  const sql = neon(`postgresql://authenticated@db.localtest.me/${db.database}`, { authToken: token })
  const whoami = async () => ((await sql`select current_user as u, auth.user_id() as sub`) as Array<{ u: string; sub: string }>)[0]
  assert.deepEqual(await whoami(), { u: 'authenticated', sub: 'user-1' })

  const r = await runCli(['setup', '--uninstall', '--database-url', second])
  assert.equal(r.code, 0, r.stderr)
  // On a shared server (TEST_DATABASE_URL) other test databases use the roles too: the list names them all.
  assert.match(r.stdout, new RegExp(`kept role authenticated unchanged: still used by databases? (?:\\S+, )*${db.database}\\b`))
  assert.match(r.stdout, new RegExp(`kept role anonymous unchanged: still used by databases? (?:\\S+, )*${db.database}\\b`))
  assert.match(r.stdout, new RegExp(`kept role pgauthorize_gateway unchanged: still used by databases? (?:\\S+, )*${db.database}\\b`))

  const roles = await withOwner(first, async (c) =>
    (await c.query(`select rolname, rolcanlogin from pg_roles where rolname in ('authenticated', 'anonymous', 'pgauthorize_gateway') order by 1`)).rows)
  assert.deepEqual(roles, [
    { rolname: 'anonymous', rolcanlogin: true },
    { rolname: 'authenticated', rolcanlogin: true },
    { rolname: 'pgauthorize_gateway', rolcanlogin: true },
  ])
  // A new login, not a pooled one: the first database's gateway can still log in as the role.
  await gw.close()
  gw = await startGateway({ databaseUrl: gatewayFirst, port: 0, pgPort: false })
  neonConfig.fetchEndpoint = `${gw.url}/sql`
  assert.deepEqual(await whoami(), { u: 'authenticated', sub: 'user-1' })

  // The second database is clean; uninstalling the last database that uses the roles drops them.
  const left = await withOwner(second, async (c) =>
    (await c.query(`select count(*)::int as n from pg_namespace where nspname in ('auth', 'pgauthorize')`)).rows[0].n)
  assert.equal(left, 0)
  await gw.close()
  const last = await uninstall(first)
  if (process.env.TEST_DATABASE_URL) {
    // A shared server: other test databases still use the roles, so they stay, and only those are named.
    for (const r of last.sharedRoles) assert.ok(!r.databases.includes(db.database), `${r.role} still names the uninstalled database`)
  } else {
    assert.deepEqual(last.sharedRoles, [])
    assert.deepEqual(last.droppedRoles.sort(), ['anonymous', 'authenticated', 'pgauthorize_gateway'])
  }
})
