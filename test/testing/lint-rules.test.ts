// Every lint rule, one case each: a schema that triggers it (and nothing else), then the same schema
// fixed (with the linter's own fix where it is concrete), and every rule silent on it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { LINT_RULES, lintPolicies, type Finding, type LintRule } from '../../src/testing/lint.js'
import { setup } from '../../src/database/setup.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { ownerQuery } from './helpers.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
})
after(() => db?.close())

const SAMPLE = [{ sub: 'user_2abc', tenant_id: 't1', role: 'authenticated' }]

interface Case {
  rule: LintRule
  /** SQL creating the flaw; `S` stands for the case's own schema. */
  flaw: string
  /** The findings expected on the case's objects: `rule severity object`. */
  expect: string[]
  /** SQL fixing it, or 'own' to apply the linter's fix of the finding of `rule`. */
  fix: string
  /** Findings to look at: those on the case's schema, unless given. */
  scope?: (f: Finding) => boolean
}

// A table with RLS and a well-formed owner policy, readable by authenticated: silent on its own.
const SAFE_TABLE = `create table S.t (id int primary key, owner text not null); create index on S.t (owner);
  alter table S.t enable row level security; grant select, insert, update, delete on S.t to authenticated;`

const CASES: Case[] = [
  {
    rule: 'rls_disabled_in_public',
    flaw: 'create table S.t (id int primary key, owner text); grant select on S.t to authenticated',
    expect: ['rls_disabled_in_public error S.t'],
    fix: `alter table S.t enable row level security; create index on S.t (owner);
          create policy p on S.t for select to authenticated using (owner = (select auth.user_id()))`,
  },
  {
    rule: 'rls_enabled_no_policy',
    flaw: 'create table S.t (id int primary key); alter table S.t enable row level security; grant select on S.t to authenticated',
    expect: ['rls_enabled_no_policy info S.t'],
    fix: 'revoke all on S.t from authenticated',
  },
  {
    rule: 'policy_exists_rls_disabled',
    flaw: `create table S.t (id int primary key, owner text); create index on S.t (owner);
           create policy p on S.t to authenticated using (owner = (select auth.user_id()))`,
    expect: ['policy_exists_rls_disabled error S.t'],
    fix: 'own',
  },
  {
    rule: 'sensitive_columns_exposed',
    flaw: 'create table S.t (id int primary key, email text, "Password" text); grant select on S.t to anonymous',
    expect: ['rls_disabled_in_public error S.t', 'sensitive_columns_exposed error S.t'],
    fix: 'revoke all on S.t from anonymous',
  },
  {
    rule: 'security_definer_view',
    flaw: `${SAFE_TABLE} create policy p on S.t for select to authenticated using (owner = (select auth.user_id()));
           create view S.v as select * from S.t; grant select on S.v to authenticated`,
    expect: ['security_definer_view error S.v'],
    fix: 'own',
  },
  {
    rule: 'materialized_view_in_api',
    flaw: 'create table S.t (id int primary key); create materialized view S.m as select id from S.t; grant select on S.m to authenticated',
    expect: ['materialized_view_in_api warning S.m'],
    fix: 'own',
  },
  {
    rule: 'foreign_table_in_api',
    flaw: `create foreign data wrapper S_fdw; create server S_srv foreign data wrapper S_fdw;
           create foreign table S.f (id int) server S_srv; grant select on S.f to authenticated`,
    expect: ['foreign_table_in_api warning S.f'],
    fix: 'own',
  },
  {
    rule: 'sequence_usage_missing',
    flaw: `create table S.t (id serial primary key, owner text not null); create index on S.t (owner);
           alter table S.t enable row level security; grant insert on S.t to authenticated;
           create policy p on S.t for insert to authenticated with check (owner = (select auth.user_id()))`,
    expect: ['sequence_usage_missing error S.t_id_seq'],
    fix: 'own',
  },
  {
    rule: 'rls_policy_always_true',
    flaw: `${SAFE_TABLE} create policy p on S.t for insert to authenticated with check (true)`,
    expect: ['rls_policy_always_true error "p" on S.t'],
    fix: 'alter policy p on S.t with check (owner = (select auth.user_id()))',
  },
  {
    rule: 'forgeable_claim_source',
    // Supabase's and PostgREST's convention: the claims from a plain setting.
    flaw: `${SAFE_TABLE} create policy p on S.t for select to authenticated
             using (owner = current_setting('request.jwt.claims', true)::jsonb ->> 'sub')`,
    expect: ['forgeable_claim_source error "p" on S.t'],
    fix: 'own',
  },
  {
    rule: 'subject_cast_to_uuid',
    flaw: `create table S.t (id int primary key, owner uuid not null); create index on S.t (owner);
           alter table S.t enable row level security; grant select on S.t to authenticated;
           create policy p on S.t for select to authenticated using (owner = (select auth.user_id())::uuid)`,
    expect: ['subject_cast_to_uuid warning "p" on S.t'],
    fix: 'alter policy p on S.t using (owner = (select auth.uid()))',
  },
  {
    rule: 'uid_compared_as_text',
    flaw: `${SAFE_TABLE} create policy p on S.t for select to authenticated using ((select auth.uid())::text = owner)`,
    expect: ['uid_compared_as_text warning "p" on S.t'],
    fix: 'own',
  },
  {
    rule: 'unknown_claim',
    flaw: `create table S.t (id int primary key, tenant text not null); create index on S.t (tenant);
           alter table S.t enable row level security; grant select on S.t to authenticated;
           create policy p on S.t for select to authenticated using (tenant = (select auth.session() ->> 'org_id'))`,
    expect: ['unknown_claim warning "p" on S.t'],
    fix: `alter policy p on S.t using (tenant = (select auth.session() ->> 'tenant_id'))`,
  },
  {
    rule: 'authenticated_security_definer_function_executable',
    flaw: `create function S.f() returns int language sql security definer set search_path = pg_catalog as 'select 1';
           revoke execute on function S.f() from public; grant execute on function S.f() to authenticated`,
    expect: ['authenticated_security_definer_function_executable warning S.f()'],
    fix: 'own',
  },
  {
    rule: 'anon_security_definer_function_executable',
    // Executable through PUBLIC, the default: both roles, as errors.
    flaw: `create function S.f() returns int language sql security definer set search_path = pg_catalog as 'select 1'`,
    expect: ['anon_security_definer_function_executable error S.f()', 'authenticated_security_definer_function_executable error S.f()'],
    fix: 'own',
  },
  {
    rule: 'function_search_path_mutable',
    flaw: `create function S.f() returns int language sql as 'select 1'`,
    expect: ['function_search_path_mutable warning S.f()'],
    fix: 'own',
  },
  {
    rule: 'large_objects_executable',
    flaw: 'grant execute on function pg_catalog.lo_get(oid) to authenticated',
    expect: ['large_objects_executable error authenticated'],
    fix: 'revoke execute on function pg_catalog.lo_get(oid) from authenticated',
    scope: (f) => f.rule === 'large_objects_executable',
  },
  {
    rule: 'auth_rls_initplan',
    flaw: `${SAFE_TABLE} create policy p on S.t for select to authenticated using (owner = auth.user_id())`,
    expect: ['auth_rls_initplan warning "p" on S.t'],
    fix: 'own',
  },
  {
    rule: 'multiple_permissive_policies',
    flaw: `${SAFE_TABLE} create policy p1 on S.t for select to authenticated using (owner = (select auth.user_id()));
           create policy p2 on S.t for all to authenticated using (owner = (select auth.session() ->> 'tenant_id'))`,
    expect: ['multiple_permissive_policies warning S.t'],
    fix: `drop policy p2 on S.t`,
  },
  {
    rule: 'policy_column_unindexed',
    flaw: `create table S.t (id int primary key, owner text not null); alter table S.t enable row level security;
           grant select on S.t to authenticated;
           create policy p on S.t for select to authenticated using ((select auth.user_id() = S.t.owner))`,
    // The correlated (select ...) of drizzle's crudPolicy form is per row as well.
    expect: ['auth_rls_initplan warning "p" on S.t', 'policy_column_unindexed warning "p" on S.t'],
    fix: `alter policy p on S.t using ((select auth.user_id()) = owner); create index on S.t (owner)`,
  },
  {
    rule: 'unindexed_foreign_keys',
    flaw: 'create table S.a (id int primary key); create table S.b (id int primary key, a_id int references S.a)',
    expect: ['unindexed_foreign_keys info "b_a_id_fkey" on S.b'],
    fix: 'own',
  },
  {
    rule: 'duplicate_index',
    flaw: 'create table S.t (id int primary key, x int); create index i1 on S.t (x); create index i2 on S.t (x); create unique index i3 on S.t (id)',
    expect: ['duplicate_index warning S.i1, S.i2', 'duplicate_index warning S.t_pkey, S.i3'],
    fix: 'own',
  },
  {
    rule: 'no_primary_key',
    flaw: 'create table S.t (x int not null)',
    expect: ['no_primary_key info S.t'],
    fix: 'alter table S.t add primary key (x)',
  },
]

test('there is a case for every rule', () => {
  assert.deepEqual(new Set(CASES.map((c) => c.rule)), new Set(LINT_RULES))
})

for (const [i, c] of CASES.entries()) {
  test(`${c.rule}: fires on the flawed schema, silent once fixed`, async () => {
    const S = `lint_case_${i}`
    const sql = (s: string) => s.replace(/\bS(?=[._])/g, S)
    const scope = c.scope ?? ((f: Finding) => f.object.includes(`${S}.`) || f.object.includes(`${S}_`) || !!f.table?.includes(`${S}.`))
    const mine = async () => (await lintPolicies(db.url, { sampleClaims: SAMPLE })).findings.filter(scope)
    await ownerQuery(db.url, `create schema ${S}; grant usage on schema ${S} to authenticated, anonymous; ${sql(c.flaw)}`)
    try {
      const fired = await mine()
      assert.deepEqual(fired.map((f) => `${f.rule} ${f.severity} ${f.object}`).sort(), c.expect.map(sql).sort())
      for (const f of fired) assert.ok(f.message && f.fix, `${f.rule} has a message and a fix`)
      const fixes = c.fix === 'own' ? fired.filter((f) => f.rule === c.rule).map((f) => f.fix) : [sql(c.fix)]
      for (const fix of fixes) {
        assert.doesNotMatch(fix, /<[^>]+>/, 'a concrete fix, no template')
        await ownerQuery(db.url, fix)
      }
      assert.deepEqual(await mine(), [], 'silent once fixed')
    } finally {
      await ownerQuery(db.url, `drop schema ${S} cascade; drop server if exists ${S}_srv cascade; drop foreign data wrapper if exists ${S}_fdw cascade`)
    }
  })
}
