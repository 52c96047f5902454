/**
 * Claim forgery and escape through every transport (HTTP `/sql`, TCP, WebSocket), with a real token for Alice:
 * the database side's forgery catalogue, plus what an attacker with raw SQL tries next (objects that would be
 * picked up, server files and programs, extensions, ALTER ROLE on itself, CREATE ROLE, state left for the next
 * request). After every attempt, Alice's own session sees her rows at most, and Bob's next request (over HTTP on
 * the same pooled backend: the pool holds one connection) sees his rows only, with the session state of a fresh
 * connection: no prepared statements, cursors, LISTEN, advisory locks, temp objects or changed settings.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { alice, bob, DATABASE, startStack, TRANSPORTS, type Outcome, type Stack, type Transport } from './stack.js'

let s: Stack
let aliceToken: string
let bobToken: string
before(async () => {
  s = await startStack({ poolSize: 1 })
  aliceToken = await s.token(s.claimsOf(alice))
  bobToken = await s.token(s.claimsOf(bob))
})
after(() => s?.close())

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const future = () => Math.floor(Date.now() / 1000) + 600
const bobJson = () => JSON.stringify({ sub: bob.sub, tenant_id: bob.tenantId, role: 'authenticated' })

/** The catalogue. Any outcome is allowed for the attempt itself; what follows it is checked. */
const ATTEMPTS: Array<[string, () => string]> = [
  // Claims settings
  ['set_config of plain JSON claims', () => `select set_config('pg_authorize.session', '${bobJson()}', false)`],
  ['SET of a forged envelope', () => `set pg_authorize.session = 'v1.${future()}.${b64({ sub: bob.sub, tenant_id: bob.tenantId })}.${'A'.repeat(43)}'`],
  ['set_config of a forged v3 envelope', () => `select set_config('pg_authorize.session', E'v3\\t1\\t${future()}\\tauthenticated\\tapp\\t${DATABASE}\\t${bobJson()}\\t${'0'.repeat(64)}', false)`],
  ['set_config of a forged v2 envelope', () => `select set_config('pg_authorize.session', E'v2\\t${future()}\\t${bobJson()}\\t${'0'.repeat(64)}', false)`],
  ['PostgREST-style claims setting', () => `select set_config('request.jwt.claims', '${bobJson()}', false)`],
  ['pg_session_jwt setting', () => `set pg_session_jwt.jwt = 'x.${b64({ sub: bob.sub })}.y'`],
  ['jwt_session_init with a forged HS256 token', () => `select auth.jwt_session_init('${b64({ alg: 'HS256' })}.${b64({ sub: bob.sub, exp: future() })}.AAAA')`],
  // Roles
  ['RESET ROLE', () => 'reset role'],
  ['SET ROLE to the owner', () => 'set role postgres'],
  ['SET ROLE to anonymous', () => 'set role anonymous'],
  ['SET SESSION AUTHORIZATION to the owner', () => 'set session authorization postgres'],
  ['set_config of role', () => `select set_config('role', 'postgres', false)`],
  // Private schema and catalogs
  ['read the sealing key', () => 'select * from pgauthorize.sealing_key'],
  ['read the role passwords', () => 'select * from pgauthorize.role_credentials'],
  ['read pg_authid', () => 'select rolname, rolpassword from pg_authid'],
  ['call the private reject function', () => `select pgauthorize.reject_session('x')`],
  // Shadowing and objects that would be picked up
  ['temp table shadowing users', () => `create temp table users (id uuid, tenant_id uuid, name text)`],
  ['pg_temp function shadowing auth.user_id', () => `create function pg_temp.user_id() returns text language sql as $$ select '${bob.sub}' $$`],
  ['search_path with pg_temp first', () => `select set_config('search_path', 'pg_temp, public', false)`],
  ['replace auth.user_id', () => `create or replace function auth.user_id() returns text language sql as $$ select '${bob.sub}' $$`],
  ['create a function in public', () => 'create function public.now2() returns int language sql as $$ select 1 $$'],
  ['create a schema', () => 'create schema evil'],
  ['create an event trigger', () => `create event trigger evil on ddl_command_start execute function pg_catalog.now()`],
  ['disable RLS on users', () => 'alter table users disable row level security'],
  ['add a permissive policy', () => 'create policy evil on users using (true)'],
  ['row_security off', () => 'set row_security = off'],
  ['session_replication_role replica', () => 'set session_replication_role = replica'],
  ['DISCARD ALL', () => 'discard all'],
  ['RESET ALL', () => 'reset all'],
  // Files, programs, extensions
  ['pg_read_file', () => `select pg_read_file('/etc/passwd')`],
  ['pg_ls_dir', () => `select pg_ls_dir('.')`],
  ['COPY TO PROGRAM', () => `copy (select 1) to program 'id'`],
  ['COPY FROM PROGRAM', () => `copy security_audit (sub) from program 'id'`],
  ["COPY FROM '/etc/passwd'", () => `copy security_audit (sub) from '/etc/passwd'`],
  ['COPY TO a server file', () => `copy (select 1) to '/tmp/pga-security-leak'`],
  ['lo_import of a server file', () => `select lo_import('/etc/passwd')`],
  ['CREATE EXTENSION dblink', () => 'create extension dblink'],
  ['dblink_connect', () => `select dblink_connect('host=127.0.0.1 user=postgres')`],
  ['LOAD a library', () => `load 'auto_explain'`],
  // ALTER ROLE on itself (Postgres allows a role to do this to itself) and CREATE ROLE
  ['ALTER ROLE CURRENT_USER SET statement_timeout = 1', () => 'alter role current_user set statement_timeout = 1'],
  ['ALTER ROLE SET search_path', () => 'alter role authenticated set search_path = pg_temp, public'],
  ['ALTER ROLE SET default_transaction_read_only', () => 'alter role authenticated set default_transaction_read_only = on'],
  ['ALTER ROLE IN DATABASE SET work_mem', () => `alter role authenticated in database ${DATABASE} set work_mem = '64kB'`],
  ['ALTER ROLE SET role = postgres', () => `alter role authenticated set role = 'postgres'`],
  ['ALTER ROLE SET pg_authorize.session', () => `alter role authenticated set pg_authorize.session = 'v1.1.x.y'`],
  ['ALTER ROLE PASSWORD (lock the gateway out, log in directly)', () => `alter role authenticated password 'owned-by-alice'`],
  ['ALTER ROLE SUPERUSER', () => 'alter role authenticated superuser'],
  ['ALTER ROLE BYPASSRLS', () => 'alter role authenticated bypassrls'],
  ['CREATE ROLE', () => 'create role evil login superuser'],
  ['GRANT the owner role to itself', () => 'grant postgres to authenticated'],
  // State that could survive into another user's request
  ['prepared statement', () => `prepare leak as select '${bob.sub}'`],
  ['LISTEN', () => 'listen leak'],
  ['advisory lock', () => 'select pg_advisory_lock(42)'],
  ['cursor WITH HOLD', () => 'declare leak cursor with hold for select * from users'],
  ['temp table', () => 'create temp table leak (x int)'],
  ['session statement_timeout', () => `select set_config('statement_timeout', '1', false)`],
  ['session work_mem', () => `set work_mem = '64kB'`],
  ['session default_transaction_read_only', () => 'set default_transaction_read_only = on'],
  ['an open transaction', () => 'begin'],
  ['a failed transaction', () => 'begin; select 1/0'],
]

const STATE = `select auth.user_id() as me,
  (select string_agg(id::text, ',') from users) as ids,
  (select count(*) from pg_prepared_statements)::int as prepared,
  (select count(*) from pg_cursors)::int as cursors,
  (select count(*) from pg_listening_channels())::int as listening,
  (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid())::int as advisory,
  (select count(*) from pg_class where relnamespace = pg_my_temp_schema())::int as temp,
  (select count(*) from pg_proc where pronamespace = pg_my_temp_schema())::int as temp_functions,
  current_setting('statement_timeout') as statement_timeout, current_setting('search_path') as search_path,
  current_setting('work_mem') as work_mem, current_setting('default_transaction_read_only') as read_only,
  current_setting('row_security') as row_security, current_user as who, session_user as login`

async function bobState(transport: Transport): Promise<Outcome> {
  return s.run(transport, bobToken, STATE)
}

test('every forgery and escape attempt fails closed on every transport, and leaves nothing for the next user', async () => {
  let tried = 0
  for (const transport of TRANSPORTS) {
    // What a fresh request of Bob's sees on this transport (HTTP's own portal shows in pg_cursors).
    const baseline = await bobState(transport)
    assert.ok(baseline.ok, JSON.stringify(baseline))
    assert.equal(baseline.rows[0]!.me, bob.sub)
    assert.equal(baseline.rows[0]!.ids, bob.sub)
    for (const [name, make] of ATTEMPTS) {
      const what = `${name} over ${transport}`
      const session = await s.session(transport, aliceToken)
      try {
        await session.query(make())
        const after = await session.query(`select string_agg(id::text, ',') as ids from users`)
        if (after.ok) {
          assert.ok([alice.sub, null].includes(after.rows[0]!.ids as string), `${what}: Alice's session saw ${after.rows[0]!.ids}`)
        } else {
          // Fails closed: forged claims (28000), a cancelled or aborted or read-only statement, no rights.
          assert.match(after.code, /^(28000|57014|25P02|25006|42501|42P01|42883)$/, `${what}: ${after.code} ${after.message}`)
        }
      } finally {
        await session.close()
      }
      tried++
      const next = await bobState(transport)
      assert.ok(next.ok, `${what}: Bob's next request failed: ${JSON.stringify(next)}`)
      assert.deepEqual(next.rows[0], baseline.rows[0], `${what}: Bob's next request saw leftover state`)
    }
  }
  console.log(`# forgeries: ${ATTEMPTS.length} attempts x ${TRANSPORTS.length} transports = ${tried} tried`)
  assert.equal(await s.auditCount(), 0, 'COPY wrote into the audit table')
  const r = await s.owner.query(`select rolname, rolsuper, rolbypassrls from pg_roles where rolname in ('authenticated', 'evil')`)
  assert.deepEqual(r.rows, [{ rolname: 'authenticated', rolsuper: false, rolbypassrls: false }])
})

test('ALTER ROLE on itself cannot poison other users\' future connections or lock the gateway out (found and fixed)', async () => {
  for (const transport of TRANSPORTS) {
    const poison = [
      'alter role current_user set statement_timeout = 1',
      'alter role current_user set default_transaction_read_only = on',
      `alter role current_user in database ${DATABASE} set search_path = pg_temp`,
      `alter role current_user password 'owned-by-alice'`,
    ]
    // One session (one pooled backend over HTTP): a new wire session would already repair the role.
    const session = await s.session(transport, aliceToken)
    for (const sql of poison) {
      const out = await session.query(sql)
      assert.ok(out.ok, `${transport}: Postgres lets a role do this to itself (${sql}): ${JSON.stringify(out)}`)
    }
    await session.close()
    const stored = await s.owner.query(`select count(*)::int as n from pg_db_role_setting where setrole = 'authenticated'::regrole`)
    assert.ok(stored.rows[0].n > 0, 'the poison was stored')
    // Kill the pooled backend so HTTP needs a new connection too (a role may signal its own backends).
    await s.run('http', aliceToken, 'select pg_terminate_backend(pg_backend_pid())')
    for (const t of TRANSPORTS) {
      const out = await s.run(t, bobToken, `select auth.user_id() as me, current_setting('statement_timeout') as st,
        current_setting('default_transaction_read_only') as ro, current_setting('search_path') as sp`)
      assert.ok(out.ok, `after poisoning over ${transport}, Bob over ${t}: ${JSON.stringify(out)}`)
      assert.deepEqual(out.rows[0], { me: bob.sub, st: '30s', ro: 'off', sp: '"$user", public' }, `Bob over ${t}`)
      // A write works too (a stored default_transaction_read_only would refuse it).
      assert.equal((await s.run(t, bobToken, `insert into notes (body) values ('after repair') returning id`)).ok, true, t)
    }
    const left = await s.owner.query(`select count(*)::int as n from pg_db_role_setting where setrole = 'authenticated'::regrole`)
    assert.equal(left.rows[0].n, 0, 'the gateway removed the stored role defaults')
    // The password Alice chose no longer logs in directly.
    const direct = new pg.Client({ host: '127.0.0.1', port: s.postgres.port, user: 'authenticated', password: 'owned-by-alice', database: DATABASE })
    await assert.rejects(direct.connect(), (e: { code?: string }) => e.code === '28P01')
  }
  assert.ok(s.gatewayEvents.some((e) => e.kind === 'role-repair'), 'the repair was reported')
})

test('another session\'s sealed claims never show in pg_stat_activity, so they cannot be replayed (found and fixed)', async () => {
  // Bob holds wire sessions open (TCP and WebSocket) and an HTTP request in flight.
  const bobTcp = await s.session('tcp', bobToken)
  const bobWs = await s.session('ws', bobToken)
  const slow = s.run('http', bobToken, 'select pg_sleep(1.5), 1 as done')
  try {
    await new Promise((r) => setTimeout(r, 300))
    for (const transport of TRANSPORTS) {
      const out = await s.run(transport, aliceToken,
        `select coalesce(string_agg(query, ' || '), '') as q, count(*)::int as n from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()`)
      assert.ok(out.ok, JSON.stringify(out))
      assert.ok((out.rows[0]!.n as number) >= 2, `Alice should see Bob's backends (same role) over ${transport}`)
      const envelopes = String(out.rows[0]!.q).match(/v1\.\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|v[23]\t\d+\t/g) ?? []
      assert.deepEqual(envelopes, [], `${transport}: another user's envelope is readable in pg_stat_activity`)
    }
  } finally {
    await slow
    await bobTcp.close()
    await bobWs.close()
  }
})
