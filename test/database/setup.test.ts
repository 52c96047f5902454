/** `setup` is idempotent and complete; `uninstall` removes it; bad input leaves nothing half-installed. */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { gatewayUrl, setup, setupFingerprint, uninstall } from '../../src/database/setup.js'
import { withOwner } from '../../src/database/providers.js'
import { LATEST_VERSION, loadMigrations } from '../../src/database/migrations.js'
import { freePort } from '../../src/database/embedded.js'
import { loadDemo } from '../../src/dev/demo.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { openDatabaseContext, roleClient, sqlstate } from '../helpers/roles.js'
import { runCli } from '../helpers/cli.js'
import { setupCommand } from '../../src/cli/commands/setup.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
})
after(() => db?.close())

const owner = withOwner

async function freshDatabase(name: string): Promise<string> {
  await owner(db.adminUrl, (c) => c.query(`create database ${name}`))
  return db.urlFor(name)
}

test('setup grants existing tables, and a second run changes nothing', async () => {
  const url = await freshDatabase('setup_idem')
  await owner(url, async (c) => {
    await c.query('create table notes (id serial primary key, body text)')
    await c.query(`insert into notes (body) values ('hello')`)
  })
  const first = await setup(url)
  assert.deepEqual(first.rolesCreated.sort(), db.major && first.rolesCreated.length ? ['anonymous', 'authenticated', 'pgauthorize_gateway'] : first.rolesCreated)
  assert.deepEqual(first.applied, loadMigrations().map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`))
  const before = await setupFingerprint(url)
  const second = await setup(url)
  assert.deepEqual(second.applied, [])
  assert.deepEqual(second.rolesCreated, [])
  assert.deepEqual(second.passwordsSet, [])
  assert.equal(await setupFingerprint(url), before)

  // The existing table and its serial sequence are usable by the restricted role.
  const ctx = await openDatabaseContext(url)
  const c = await roleClient(ctx)
  try {
    assert.equal((await c.query('select count(*)::int as n from notes')).rows[0].n, 1)
    await c.query(`insert into notes (body) values ('from authenticated')`)
    // Tables created later by the owner are granted too (default privileges).
    await owner(url, (o) => o.query('create table later (id bigint generated always as identity, x int)'))
    await c.query('insert into later (x) values (1)')
  } finally {
    await c.end()
  }
})

test('uninstall removes what setup installed and leaves user data; setup works again after', async () => {
  const url = await freshDatabase('setup_uninstall')
  await owner(url, (c) => c.query(`create table keep (id int); insert into keep values (1), (2)`))
  await setup(url)
  const res = await uninstall(url)
  const state = await owner(url, async (c) => {
    const r = await c.query(`select
      (select count(*)::int from pg_namespace where nspname in ('auth', 'pgauthorize')) as schemas,
      (select count(*)::int from keep) as rows,
      (select count(*)::int from pg_roles where rolname in ('authenticated', 'anonymous', 'pgauthorize_gateway') and rolcanlogin) as login_roles`)
    return r.rows[0]
  })
  // Roles other databases of this server still use (this file sets up several) keep their login.
  assert.deepEqual(state, { schemas: 0, rows: 2, login_roles: res.sharedRoles.length })
  assert.equal(res.droppedRoles.length + res.keptRoles.length + res.sharedRoles.length, 3)
  const again = await setup(url)
  assert.equal(again.version, LATEST_VERSION())
  const ctx = await openDatabaseContext(url)
  const c = await roleClient(ctx)
  assert.equal((await c.query('select count(*)::int as n from keep')).rows[0].n, 2)
  await c.end()
})

test('uninstall refuses to drop policies that call auth functions unless told to cascade', async () => {
  const url = await freshDatabase('setup_policies')
  await setup(url)
  await loadDemo(url)
  await assert.rejects(uninstall(url), (err: { code?: string; message?: string }) =>
    err.code === 'ERR_INVALID_ARGUMENT' && /crud-authenticated-policy-select/.test(err.message ?? ''))
  // Nothing was removed.
  const n = await owner(url, async (c) => (await c.query(`select count(*)::int as n from pg_namespace where nspname in ('auth', 'pgauthorize')`)).rows[0].n)
  assert.equal(n, 2)
  const res = await uninstall(url, { cascade: true })
  assert.equal(res.droppedPolicies.length, 8)
  // The demo data is still there; RLS stays enabled, so without policies the roles see nothing.
  const rows = await owner(url, async (c) => (await c.query('select count(*)::int as n from users')).rows[0].n)
  assert.equal(rows, 2)
})

test('setup needs no extension: pgcrypto is not installed and not needed', async () => {
  const url = await freshDatabase('setup_noext')
  await setup(url)
  const ext = await owner(url, async (c) => (await c.query(`select extname from pg_extension order by 1`)).rows.map((r) => r.extname))
  assert.deepEqual(ext, ['plpgsql'])
})

test('setup with --schema, --role and --no-grants', async () => {
  const url = await freshDatabase('setup_options')
  await owner(url, (c) => c.query(`create schema app; create table app.items (id int); create table public.other (id int)`))
  // --schema replaces public (a user who keeps public private must not find it granted), as the help says.
  assert.match(setupCommand.help, /--schema NAME +grant tables in this schema instead of public/)
  const r = await setup(url, { schemas: ['app'], roles: ['support_agent'] })
  assert.ok(r.roles.includes('support_agent'))
  const ctx = await openDatabaseContext(url)
  const c = await roleClient(ctx, 'support_agent')
  try {
    assert.equal(await sqlstate(() => c.query('select * from app.items')), 'no error')
    assert.equal(await sqlstate(() => c.query('select * from public.other')), '42501')
  } finally {
    await c.end()
  }
  // Naming public as well grants both.
  await setup(url, { schemas: ['app', 'public'], roles: ['support_agent'] })
  const c1 = await roleClient(ctx, 'support_agent')
  try {
    assert.equal(await sqlstate(() => c1.query('select * from app.items')), 'no error')
    assert.equal(await sqlstate(() => c1.query('select * from public.other')), 'no error')
  } finally {
    await c1.end()
  }
  const url2 = await freshDatabase('setup_nogrants')
  await owner(url2, (c) => c.query(`create table t (id int)`))
  await setup(url2, { grants: false })
  const ctx2 = await openDatabaseContext(url2)
  const c2 = await roleClient(ctx2)
  try {
    assert.equal(await sqlstate(() => c2.query('select * from t')), '42501')
    assert.equal(await sqlstate(() => c2.query('select auth.session()')), 'no error')
  } finally {
    await c2.end()
  }
})

test('bad input: a non-owner URL, an unreachable server, a bad role name each fail clearly and install nothing', async () => {
  const url = await freshDatabase('setup_bad')
  // A plain login role that owns nothing.
  await owner(db.adminUrl, (c) => c.query(`drop role if exists mallory; create role mallory login password 'mallory-pw'`))
  const u = new URL(url)
  u.username = 'mallory'
  u.password = 'mallory-pw'
  await assert.rejects(setup(u.toString()), (e: { code?: string }) => e.code === 'ERR_DB_NOT_OWNER')
  const port = await freePort()
  await assert.rejects(setup(`postgresql://postgres:pw@127.0.0.1:${port}/x`), (e: { code?: string; message?: string }) =>
    e.code === 'ERR_DB_CONNECT' && !(e.message ?? '').includes('pw@'))
  await assert.rejects(setup(url, { roles: ['Bad-Role'] }), (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT')
  await assert.rejects(setup(url, { schemas: ['does_not_exist'] }), (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT')
  const left = await owner(url, async (c) => (await c.query(`select count(*)::int as n from pg_namespace where nspname in ('auth', 'pgauthorize')`)).rows[0].n)
  assert.equal(left, 0)
})

test('the CLI: setup prints both connection strings without the owner password; errors exit non-zero', async () => {
  const url = await freshDatabase('setup_cli')
  const r = await runCli(['setup', '--database-url', url])
  assert.equal(r.code, 0, r.stderr)
  const password = decodeURIComponent(new URL(url).password)
  assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'owner password printed')
  assert.match(r.stdout, /postgresql:\/\/authenticated@[^\s]+\/setup_cli/)
  assert.match(r.stdout, /owner/i)
  // The gateway role's connection string, its password masked.
  const gatewayPassword = new URL(await gatewayUrl(url)).password
  assert.match(r.stdout, /postgresql:\/\/pgauthorize_gateway:\*\*\*\*@[^\s]+\/setup_cli/)
  assert.ok(!r.stdout.includes(gatewayPassword) && !r.stdout.includes(decodeURIComponent(gatewayPassword)), 'gateway password printed')
  const again = await runCli(['setup'], { env: { DATABASE_URL: url } })
  assert.equal(again.code, 0, again.stderr)
  assert.match(again.stdout, /up to date/i)
  const bad = await runCli(['setup', '--database-url', 'postgresql://postgres:secretpw@127.0.0.1:1/x'])
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /ERR_DB_CONNECT/)
  assert.ok(!bad.stderr.includes('secretpw'))
  // --rotate-secret: a new current key; the old one retired at once with --grace 0; --grace alone is refused.
  const gen = async () => owner(url, async (c) =>
    (await c.query<{ g: number; retired: number }>(`select max(generation) filter (where retire_at is null) as g,
       count(*) filter (where retire_at <= now())::int as retired from pgauthorize.sealing_key`)).rows[0]!)
  const before = await gen()
  const rotated = await runCli(['setup', '--rotate-secret', '--grace', '0', '--database-url', url])
  assert.equal(rotated.code, 0, rotated.stderr)
  assert.match(rotated.stdout, new RegExp(`rotated the sealing key: generation ${before.g + 1} is current`))
  assert.deepEqual(await gen(), { g: before.g + 1, retired: before.retired + 1 })
  const lone = await runCli(['setup', '--grace', '5', '--database-url', url])
  assert.notEqual(lone.code, 0)
  assert.match(lone.stderr, /--grace goes with --rotate-secret/)
  const un = await runCli(['setup', '--uninstall', '--database-url', url])
  assert.equal(un.code, 0, un.stderr)
})

test('a second database on the same server reuses the shared roles\' password instead of locking out the first', async () => {
  const first = await freshDatabase('setup_shared_a')
  const second = await freshDatabase('setup_shared_b')
  await setup(first)
  const ctxA = await openDatabaseContext(first)
  const r = await setup(second)
  assert.deepEqual(r.passwordsSet, [], 'the second setup set a new password')
  // Both databases' gateways can still log in as the roles.
  for (const url of [first, second]) {
    const ctx = url === first ? ctxA : await openDatabaseContext(url)
    const c = await roleClient(ctx)
    assert.equal((await c.query('select current_user as u')).rows[0].u, 'authenticated')
    await c.end()
  }
})
