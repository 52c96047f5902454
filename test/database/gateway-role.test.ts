/**
 * The least-privilege gateway role (issue 19): `pgauthorize_gateway` can do what a running gateway does
 * (read providers, the key and the restricted roles' credentials, LISTEN, append audit records, repair and
 * reap restricted roles through the owner's SECURITY DEFINER functions) and nothing else: no application
 * table, no BYPASSRLS, no owner, no other role. The gateway and createAuthorizer run with its URL.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { neon, neonConfig } from '@neondatabase/serverless'
import { gatewayUrl, GATEWAY_ROLE } from '../../src/database/setup.js'
import { withOwner } from '../../src/database/providers.js'
import { createAuthorizer } from '../../src/auth/authorizer.js'
import { startGateway } from '../../src/gateway/gateway.js'
import { AuditTrail } from '../../src/observability/audit.js'
import { silentLogger } from '../../src/observability/logger.js'
import type { GatewayEvent } from '../../src/observability/events.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { createAppDatabase, type AppDatabase } from '../helpers/app-database.js'
import { sqlstate } from '../helpers/roles.js'

let appDb: AppDatabase
let db: TestDatabase
let gwUrl: string
let gw: pg.Client
let ownerName: string

before(async () => {
  appDb = await createAppDatabase(`create table notes (owner text not null, body text not null);
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id()));
      insert into notes values ('alice', 'a'), ('bob', 'b');
      create table secrets (x text); insert into secrets values ('owner only');`)
  db = appDb.db
  await withOwner(db.url, async (c) => {
    ownerName = (await c.query('select current_user as u')).rows[0].u
  })
  gwUrl = await gatewayUrl(db.url)
  gw = new pg.Client(gwUrl)
  await gw.connect()
})
after(async () => {
  await gw?.end()
  await db?.close()
})

const token = (sub: string) => appDb.token(sub)

test('the gateway role is NOINHERIT NOBYPASSRLS, no superuser, member of nothing, owns nothing', async () => {
  const r = await withOwner(db.url, async (c) => (await c.query(`select r.rolsuper, r.rolinherit, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
      r.rolreplication, r.rolcanlogin,
      (select count(*)::int from pg_auth_members m where m.member = r.oid) as member_of,
      (select count(*)::int from pg_shdepend d where d.refobjid = r.oid and d.deptype = 'o') as owns
    from pg_roles r where r.rolname = $1`, [GATEWAY_ROLE])).rows[0])
  assert.deepEqual(r, {
    rolsuper: false, rolinherit: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false,
    rolreplication: false, rolcanlogin: true, member_of: 0, owns: 0,
  })
})

test('the gateway role cannot read or write application tables, bypass RLS, become the owner, or touch other roles', async () => {
  const denied = async (what: string, sql: string, params: unknown[] = []) =>
    assert.equal(await sqlstate(() => gw.query(sql, params)), '42501', what)
  await denied('read an application table', 'select * from secrets')
  await denied('read a table with RLS', 'select * from notes')
  await denied('write an application table', `insert into notes values ('mallory', 'x')`)
  await denied('become the owner', `set role ${pg.escapeIdentifier(ownerName)}`)
  await denied('become a restricted role', 'set role authenticated')
  await denied("read the gateway roles' passwords", 'select password from pgauthorize.gateway_credentials')
  await denied('read the HMAC pads', 'select ipad from pgauthorize.sealing_key')
  await denied('change the sealing key', 'update pgauthorize.sealing_key set retire_at = now()')
  await denied('rotate the key', `select pgauthorize.rotate_sealing_key(interval '0')`)
  await denied('add a provider', `insert into pgauthorize.providers (name, jwks, algorithms, roles) values ('evil', '{"keys":[]}', '{ES256}', '{authenticated}')`)
  await denied('change a credential', `update pgauthorize.role_credentials set password = 'x'`)
  await denied('read the audit table', 'select * from pgauthorize.audit_log')
  await denied('delete audit records', 'delete from pgauthorize.audit_log')
  await denied('alter a restricted role', `alter role authenticated password 'known'`)
  await denied('create a table', 'create table public.mine (x int)')
  await denied('create a schema', 'create schema mine')
  // The repair function: restricted roles of this database only, never the owner or itself.
  const verifier = (await withOwner(db.url, (c) => c.query(`select rolpassword from pg_authid where rolname = 'authenticated'`)).catch(() => undefined))?.rows[0]?.rolpassword as string | undefined
  const v = verifier ?? 'SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$' + 'A'.repeat(44) + ':' + 'A'.repeat(44)
  await denied('repair the owner', 'select pgauthorize.repair_role($1, $2)', [ownerName, v])
  await denied('repair itself', 'select pgauthorize.repair_role($1, $2)', [GATEWAY_ROLE, v])
  assert.equal(await sqlstate(() => gw.query('select pgauthorize.repair_role($1, $2)', ['authenticated', 'plaintext'])), '22023', 'a plaintext password is refused')
  // Not the owner's backends: reap_backends names restricted-role backends only; a direct signal is refused.
  const ownerBackend = new pg.Client(db.url)
  await ownerBackend.connect()
  try {
    const { pid, started } = (await ownerBackend.query(`select pg_backend_pid() as pid, extract(epoch from backend_start)::text as started
      from pg_stat_activity where pid = pg_backend_pid()`)).rows[0]
    assert.equal((await gw.query('select pgauthorize.reap_backends($1::int[], $2::numeric[], $3::text[]) as n', [[pid], [started], [ownerName]])).rows[0].n, 0)
    assert.equal(await sqlstate(() => gw.query('select pg_terminate_backend($1)', [pid])), '42501')
    assert.equal((await ownerBackend.query('select 1 as ok')).rows[0].ok, 1, 'the owner backend is alive')
  } finally {
    await ownerBackend.end()
  }
  // Its password does not log in as the owner.
  const asOwner = new URL(gwUrl)
  asOwner.username = encodeURIComponent(ownerName)
  const c = new pg.Client(asOwner.toString())
  assert.equal(await sqlstate(() => c.connect()), '28P01')
  await c.end().catch(() => {})
})

test('even granted a table, the gateway role is held by RLS (NOBYPASSRLS)', async () => {
  await withOwner(db.url, (c) => c.query(`grant select on notes to ${GATEWAY_ROLE}`))
  try {
    assert.equal((await gw.query('select count(*)::int as n from notes')).rows[0].n, 0)
  } finally {
    await withOwner(db.url, (c) => c.query(`revoke select on notes from ${GATEWAY_ROLE}`))
  }
})

test('what a gateway does at run time works: providers, key, credentials, LISTEN, audit append and retention, reaping', async () => {
  assert.equal((await gw.query('select count(*)::int as n from pgauthorize.providers')).rows[0].n, 1)
  assert.equal((await gw.query('select count(*)::int as n from pgauthorize.sealing_key where retire_at is null')).rows[0].n, 1)
  assert.deepEqual((await gw.query('select role from pgauthorize.role_credentials order by role')).rows.map((r) => r.role), ['anonymous', 'authenticated'])
  await gw.query('listen pg_authorize_providers; unlisten *')
  const audit = new AuditTrail({ logger: silentLogger, tableUrl: gwUrl, flushMs: 60_000 })
  audit.record({ role: 'authenticated', database: db.database, transport: 'http', outcome: 'ok', subject: 'alice' })
  await audit.close()
  await withOwner(db.url, (c) => c.query(`insert into pgauthorize.audit_log (role, database, transport, outcome, at) values ('authenticated', 'x', 'http', 'old', now() - interval '40 days')`))
  assert.equal((await gw.query('select pgauthorize.purge_audit_log(30) as n')).rows[0].n, '1')
  assert.equal((await gw.query('select pgauthorize.purge_audit_log(0) as n')).rows[0].n, '0', 'never records younger than a day')
  const left = await withOwner(db.url, async (c) => (await c.query(`select subject, outcome from pgauthorize.audit_log`)).rows)
  assert.deepEqual(left, [{ subject: 'alice', outcome: 'ok' }])
  // A restricted-role backend, terminated by name (pid and start) through the owner's function.
  const authz = await createAuthorizer({ databaseUrl: gwUrl })
  try {
    const role = new pg.Client(await authz.authenticator.connectionConfig(authz.database, 'authenticated'))
    role.on('error', () => {})
    await role.connect()
    const { pid, started } = (await role.query(`select pg_backend_pid() as pid, extract(epoch from backend_start)::text as started
      from pg_stat_activity where pid = pg_backend_pid()`)).rows[0]
    assert.equal((await gw.query('select pgauthorize.reap_backends($1::int[], $2::numeric[], $3::text[]) as n', [[pid], ['1'], ['authenticated']])).rows[0].n, 0, 'another start: not that backend')
    assert.equal((await gw.query('select pgauthorize.reap_backends($1::int[], $2::numeric[], $3::text[]) as n', [[pid], [started], ['authenticated']])).rows[0].n, 1)
    await assert.rejects(role.query('select 1'))
    await role.end().catch(() => {})
  } finally {
    await authz.close()
  }
})

test('repairs without the owner: a client that changes its role password or stores role settings is undone through the function', async () => {
  const events: GatewayEvent[] = []
  const authz = await createAuthorizer({ databaseUrl: gwUrl, onEvent: (e) => events.push(e), poolSize: 1 })
  try {
    const alice = await token('alice')
    await authz.withToken(alice, async (c) => {
      await c.query(`alter role current_user set statement_timeout = 1`)
      await c.query(`alter role current_user password 'only-the-attacker-knows'`)
    })
    // A new login (a fresh authorizer: no pooled connection) is refused, repaired through the function, and retried.
    const fresh = await createAuthorizer({ databaseUrl: gwUrl, onEvent: (e) => events.push(e) })
    try {
      const r = await fresh.withToken(alice, async (c) => (await c.query(`select auth.user_id() as u, current_setting('statement_timeout') as t`)).rows[0])
      assert.equal(r.u, 'alice')
      assert.notEqual(r.t, '1ms')
    } finally {
      await fresh.close()
    }
    assert.ok(events.some((e) => e.kind === 'role-repair'), 'a repair ran')
    const settings = await withOwner(db.url, async (c) => (await c.query(`select count(*)::int as n from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = 'authenticated'`)).rows[0].n)
    assert.equal(settings, 0)
  } finally {
    await authz.close()
  }
})

test('serve and createAuthorizer run as the gateway role end to end: Alice sees her row, Bob his', async () => {
  const authz = await createAuthorizer({ databaseUrl: gwUrl })
  const gateway = await startGateway({ databaseUrl: gwUrl, port: 0, pgPort: 0, audit: { table: true } })
  try {
    for (const sub of ['alice', 'bob']) {
      const tok = await token(sub)
      assert.deepEqual(await authz.withToken(tok, async (c) => (await c.query('select owner from notes')).rows), [{ owner: sub }])
      neonConfig.fetchEndpoint = `${gateway.url}/sql`
      const sql = neon(`postgresql://authenticated@db.localtest.me/${db.database}`, { authToken: tok })
      assert.deepEqual(await sql`select owner from notes`, [{ owner: sub }])
      const wire = new pg.Client({ host: '127.0.0.1', port: gateway.pgPort, user: 'authenticated', database: db.database, password: tok })
      await wire.connect()
      try {
        assert.deepEqual((await wire.query('select owner, current_user as u from notes')).rows, [{ owner: sub, u: 'authenticated' }])
      } finally {
        await wire.end()
      }
    }
    const ready = await fetch(`${gateway.url}/ready`)
    assert.equal(ready.status, 200)
  } finally {
    await gateway.close()
    await authz.close()
  }
  const audited = await withOwner(db.url, async (c) => (await c.query(`select count(*)::int as n from pgauthorize.audit_log where subject in ('alice', 'bob')`)).rows[0].n)
  assert.ok(audited >= 2, 'the gateway role appended audit records')
})
