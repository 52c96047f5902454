import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import Ajv2020Module from 'ajv/dist/2020.js'
import ajvFormats from 'ajv-formats'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { LINT_RULES, ignoredRules, lintPolicies, wrapAuthCalls, type Finding, type LintReport, type LintRule } from '../../src/testing/lint.js'
import { toSarif } from '../../src/testing/lint-sarif.js'
import { policyTester } from '../../src/testing/policy-tester.js'
import { findCalls, parseNodeTree } from '../../src/testing/node-tree.js'
import { setup } from '../../src/database/setup.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'
import { demoDatabase, ownerQuery } from './helpers.js'

let demo: TestDatabase
let flawed: TestDatabase
const [alice] = DEMO_USERS as [(typeof DEMO_USERS)[0]]

before(async () => {
  ;[demo, flawed] = await Promise.all([demoDatabase(), createTestDatabase()])
  await setup(flawed.url)
  await ownerQuery(flawed.url, await readFile(new URL('./flawed-schema.sql', import.meta.url), 'utf8'))
})
after(async () => {
  await demo?.close()
  await flawed?.close()
})

const byRule = (findings: Finding[]) => {
  const out: Partial<Record<LintRule, string[]>> = {}
  for (const f of findings) (out[f.rule] ??= []).push(`${f.severity} ${f.object}`)
  return out
}

const FLAWED_FINDINGS = {
  rls_disabled_in_public: ['error public.secrets'],
  rls_enabled_no_policy: ['info public.locked'],
  sequence_usage_missing: ['error public.notes_id_seq'],
  rls_policy_always_true: ['error "notes_insert" on public.notes'],
  uid_compared_as_text: ['warning "notes_update" on public.notes'],
  authenticated_security_definer_function_executable: ['error public.all_notes()'],
  anon_security_definer_function_executable: ['error public.all_notes()'],
  function_search_path_mutable: ['error public.all_notes()'],
  large_objects_executable: ['error authenticated'],
  auth_rls_initplan: ['warning "notes_read" on public.notes'],
  policy_column_unindexed: ['warning "notes_read" on public.notes', 'warning "notes_update" on public.notes'],
}

test('on the flawed schema the rules fire on the right objects with the right severities; text, JSON and exit status', async () => {
  const report = await lintPolicies(flawed.url)
  assert.deepEqual(byRule(report.findings), FLAWED_FINDINGS)
  for (const f of report.findings) assert.ok(f.message && f.fix, `${f.rule} has a message and a fix`)
  assert.deepEqual([report.errors, report.warnings, report.infos], [7, 4, 1])
  assert.deepEqual(report.suppressed, [])

  const cli = await runCli(['lint', '--database-url', flawed.url])
  assert.equal(cli.code, 1, 'errors make the exit status non-zero')
  assert.match(cli.stdout, /7 error\(s\), 4 warning\(s\), 1 info/)
  assert.match(cli.stdout, /rls_policy_always_true: "notes_insert" on public\.notes\n.*\n   fix: ALTER POLICY/)
  for (const args of [['--json'], ['--format', 'json']]) {
    const json = await runCli(['lint', '--database-url', flawed.url, ...args])
    assert.equal(json.code, 1)
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse(JSON.stringify(report)))
  }
  const bad = await runCli(['lint', '--database-url', flawed.url, '--format', 'xml'])
  assert.equal(bad.code, 2)
  assert.equal((await runCli(['lint', '--database-url', flawed.url, '--fail-on', 'info'])).code, 2)
})

test('SARIF output validates against the SARIF 2.1.0 schema, one result per finding, suppressed ones marked', async () => {
  const schema = JSON.parse(await readFile(new URL('./fixtures/sarif-schema-2.1.0.json', import.meta.url), 'utf8'))
  // Both are CommonJS: their default export sits on .default.
  const ajv = new Ajv2020Module.default({ allErrors: true, strict: false })
  ajvFormats.default(ajv)
  const validate = ajv.compile(schema)
  const check = (log: unknown) => assert.ok(validate(log), JSON.stringify(validate.errors?.slice(0, 5)))

  const cli = await runCli(['lint', '--database-url', flawed.url, '--format', 'sarif'])
  assert.equal(cli.code, 1)
  const log = JSON.parse(cli.stdout)
  check(log)
  const run = log.runs[0]
  assert.equal(run.tool.driver.rules.length, LINT_RULES.length)
  assert.equal(run.results.length, 12)
  const r = run.results.find((x: { ruleId: string }) => x.ruleId === 'rls_disabled_in_public')
  assert.equal(r.level, 'error')
  assert.equal(run.tool.driver.rules[r.ruleIndex].id, 'rls_disabled_in_public')
  assert.equal(r.locations[0].logicalLocations[0].fullyQualifiedName, 'public.secrets')
  assert.equal(run.results.find((x: { ruleId: string }) => x.ruleId === 'rls_enabled_no_policy').level, 'note')

  // The validator is not a rubber stamp: a level SARIF does not know is refused.
  check(toSarif(await lintPolicies(flawed.url)))
  const broken = structuredClone(log)
  broken.runs[0].results[0].level = 'fatal'
  assert.equal(validate(broken), false)
})

test('a pg-authorize:ignore comment on the policy, table or function suppresses exactly the rules it names', async () => {
  await ownerQuery(flawed.url, `
    comment on policy notes_insert on public.notes is 'guest book: pg-authorize:ignore rls_policy_always_true anyone may post';
    comment on table public.locked is 'pg-authorize:ignore rls_enabled_no_policy (reached through functions only)';
    comment on function public.all_notes() is 'pg-authorize:ignore anon_security_definer_function_executable, authenticated_security_definer_function_executable';
    comment on table public.secrets is 'pg-authorize:ignore no_primary_key, a rule that does not fire here'`)
  try {
    const report = await lintPolicies(flawed.url)
    assert.deepEqual(report.suppressed.map((f) => `${f.rule} ${f.object}`).sort(), [
      'anon_security_definer_function_executable public.all_notes()',
      'authenticated_security_definer_function_executable public.all_notes()',
      'rls_enabled_no_policy public.locked',
      'rls_policy_always_true "notes_insert" on public.notes',
    ])
    assert.match(report.suppressed.find((f) => f.rule === 'rls_policy_always_true')!.justification, /anyone may post/)
    // Not named, so still reported: the secrets table, and the function's search_path.
    const left = byRule(report.findings)
    assert.deepEqual(left.rls_disabled_in_public, ['error public.secrets'])
    assert.deepEqual(left.function_search_path_mutable, ['error public.all_notes()'])
    assert.deepEqual([report.errors, report.warnings, report.infos], [4, 4, 0])
    const text = await runCli(['lint', '--database-url', flawed.url])
    assert.match(text.stdout, /4 suppressed by pg-authorize:ignore comments/)
    const sarif = JSON.parse((await runCli(['lint', '--database-url', flawed.url, '--format', 'sarif'])).stdout)
    const suppressed = sarif.runs[0].results.filter((x: { suppressions?: unknown[] }) => x.suppressions)
    assert.equal(suppressed.length, 4)
    assert.equal(suppressed[0].suppressions[0].kind, 'inSource')
  } finally {
    await ownerQuery(flawed.url, `comment on policy notes_insert on public.notes is null; comment on table public.locked is null;
      comment on function public.all_notes() is null; comment on table public.secrets is null`)
  }
})

test('ignoredRules reads the rule names after pg-authorize:ignore and stops at the reason', () => {
  assert.deepEqual([...ignoredRules('pg-authorize:ignore auth_rls_initplan, no_primary_key because')], ['auth_rls_initplan', 'no_primary_key'])
  assert.deepEqual([...ignoredRules('x pg-authorize:ignore duplicate_index kept for a migration; pg-authorize:ignore no_primary_key')], ['duplicate_index', 'no_primary_key'])
  assert.deepEqual([...ignoredRules('pg-authorize:ignore everything')], [])
  assert.deepEqual([...ignoredRules('ignore no_primary_key')], [])
})

test('a Supabase-style schema reading request.jwt.claims is an error, directly or through a helper, and auth.* fixes it', async () => {
  await ownerQuery(flawed.url, `
    create schema supa; grant usage on schema supa to authenticated;
    create function supa.jwt_sub() returns text language sql stable set search_path = pg_catalog
      as $$ select nullif(current_setting('request.jwt.claim.sub', true), '') $$;
    create table supa.todos (id int primary key, user_id text not null, tenant text not null);
    create index on supa.todos (user_id); create index on supa.todos (tenant);
    alter table supa.todos enable row level security; grant select, update on supa.todos to authenticated;
    create policy todos_read on supa.todos for select to authenticated
      using (user_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'sub'));
    create policy todos_update on supa.todos for update to authenticated
      using (user_id = supa.jwt_sub() and tenant = current_setting('request.jwt.claim.tenant', true))`)
  try {
    const supa = async () => (await lintPolicies(flawed.url)).findings.filter((f) => f.table === 'supa.todos')
    const found = await supa()
    assert.deepEqual(found.map((f) => `${f.rule} ${f.severity} ${f.object}`), [
      'forgeable_claim_source error "todos_read" on supa.todos',
      'forgeable_claim_source error "todos_update" on supa.todos',
    ])
    assert.match(found[0]!.message, /current_setting\('request\.jwt\.claims'\)/)
    assert.match(found[1]!.message, /supa\.jwt_sub\(\) \(reads 'request\.jwt\.claim\.sub'\)/)
    assert.match(found[1]!.message, /current_setting\('request\.jwt\.claim\.tenant'\)/)
    // The direct read has a complete fix; applying it leaves the policy on the verified claims.
    assert.match(found[0]!.fix, /^ALTER POLICY "todos_read" ON supa\.todos USING \(\(user_id = \(\( SELECT auth\.session\(\)\) ->> 'sub'::text\)\)\);$/)
    await ownerQuery(flawed.url, found[0]!.fix)
    await ownerQuery(flawed.url, `alter policy todos_update on supa.todos
      using (user_id = (select auth.user_id()) and tenant = (select auth.session() ->> 'tenant'))`)
    assert.deepEqual(await supa(), [])
  } finally {
    await ownerQuery(flawed.url, 'drop schema supa cascade')
  }
})

test('the demo has no errors; its findings are the per-row calls of drizzle\'s crudPolicy form and an unindexed foreign key', async () => {
  const report = await lintPolicies(demo.url, { sampleClaims: [demoClaims(alice)] })
  assert.equal(report.errors, 0)
  assert.deepEqual(byRule(report.findings).unindexed_foreign_keys, ['info "users_tenant_id_tenants_id_fk" on public.users'])
  assert.equal(report.findings.filter((f) => f.rule === 'auth_rls_initplan').length, 8) // 4 commands x 2 tables
  assert.equal(report.findings.length, 9)
  const cli = await runCli(['lint', '--database-url', demo.url])
  assert.equal(cli.code, 0, 'warnings alone exit 0')
  assert.equal((await runCli(['lint', '--database-url', demo.url, '--fail-on', 'warn'])).code, 1, '--fail-on warn fails on warnings')
  assert.equal((await runCli(['lint', '--database-url', demo.url, '--fail-on', 'error'])).code, 0)

  // Real: `(select auth.user_id() = users.id::text)` is correlated, so Postgres runs it per row (a SubPlan).
  const plan = async () => (await ownerQuery<{ 'QUERY PLAN': string }>(demo.url,
    `explain (costs off) select * from users where (select auth.user_id() = users.id::text)`)).map((r) => r['QUERY PLAN']).join('\n')
  assert.match(await plan(), /SubPlan/)

  // Applying the linter's fixes makes the demo fully clean, with the same behaviour.
  for (const f of report.findings) await ownerQuery(demo.url, f.fix)
  assert.deepEqual((await lintPolicies(demo.url)).findings, [])
  const policy = await ownerQuery<{ q: string }>(demo.url,
    `select pg_get_expr(polqual, polrelid) as q from pg_policy where polname = 'crud-authenticated-policy-select' and polrelid = 'users'::regclass`)
  const p = (await ownerQuery<{ 'QUERY PLAN': string }>(demo.url, `explain (costs off) select * from users where ${policy[0]!.q}`)).map((r) => r['QUERY PLAN']).join('\n')
  assert.match(p, /InitPlan/)
  assert.doesNotMatch(p, /SubPlan/)
  const t = await policyTester(demo.url)
  try {
    await t.as(demoClaims(alice)).expectRows('select id from users', [{ id: alice.sub }])
    await t.as(demoClaims(alice)).expectRows('select id from tenants', [{ id: alice.tenantId }])
    await t.as(demoClaims(alice)).expectDenied('insert into tenants (id, name) values ($1, $2)', [DEMO_USERS[1]!.tenantId, 'x'])
  } finally {
    await t.close()
  }
})

test('--sample-claims: a claim the policies read that no sample carries is reported', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pga-lint-'))
  try {
    const file = path.join(dir, 'claims.json')
    await writeFile(file, JSON.stringify([{ sub: alice.sub, org: 'x' }]))
    const cli = await runCli(['lint', '--database-url', demo.url, '--sample-claims', file, '--format', 'json'])
    const unknown = (JSON.parse(cli.stdout) as LintReport).findings.filter((f) => f.rule === 'unknown_claim')
    assert.deepEqual(unknown.map((f) => f.object), ['"crud-authenticated-policy-delete" on public.tenants', '"crud-authenticated-policy-insert" on public.tenants',
      '"crud-authenticated-policy-select" on public.tenants', '"crud-authenticated-policy-update" on public.tenants'])
    assert.match(unknown[0]!.message, /'tenant_id'/)
    await writeFile(file, '"not claims"')
    assert.equal((await runCli(['lint', '--database-url', demo.url, '--sample-claims', file])).code, 2)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('wrapAuthCalls wraps bare calls, keeps wrapped ones, and drops a redundant outer subselect', () => {
  assert.equal(wrapAuthCalls('(owner = auth.user_id())'), '(owner = ( SELECT auth.user_id()))')
  assert.equal(wrapAuthCalls('(owner = ( SELECT auth.user_id() AS user_id))'), '(owner = ( SELECT auth.user_id() AS user_id))')
  assert.equal(wrapAuthCalls("( SELECT (auth.user_id() = (users.id)::text))"), '((( SELECT auth.user_id()) = (users.id)::text))')
  assert.equal(wrapAuthCalls("( SELECT x FROM t WHERE (t.a = auth.uid()))"), '( SELECT x FROM t WHERE (t.a = ( SELECT auth.uid())))')
})

test('findCalls tells a correlated subquery (per row) from an uncorrelated one (once)', async () => {
  await ownerQuery(demo.url, `
    create table public.t (a text);
    create policy p1 on public.t using ((select auth.user_id()) = a);
    create policy p2 on public.t using ((select auth.user_id() = a));
    create policy p3 on public.t using (a in (select u.id::text from users u where u.id::text = auth.user_id()))`)
  const trees = await ownerQuery<{ name: string; tree: string; oids: string[] }>(demo.url, `
    select polname as name, polqual::text as tree, array(select oid::text from pg_proc where proname = 'user_id') as oids
      from pg_policy where polrelid = 'public.t'::regclass order by 1`)
  const once = trees.map((r) => findCalls(parseNodeTree(r.tree), new Set(r.oids)).map((c) => c.once))
  assert.deepEqual(once, [[true], [false], [true]])
})

test("another session's temporary objects never show in the report (a user cannot plant findings)", async () => {
  const { openDatabaseContext } = await import('../../src/database/context.js')
  const pg = (await import('pg')).default
  const ctx = await openDatabaseContext(demo.url)
  const planter = new pg.Client(ctx.roleConnectionConfig('authenticated'))
  await planter.connect()
  try {
    // A restricted user's own temp table, with a serial, RLS on and a policy that lets everything through.
    await planter.query(`create temp table planted (id serial, x int);
      alter table planted enable row level security;
      create policy planted_all on planted using (true) with check (true)`)
    const report = await lintPolicies(demo.url)
    const planted = report.findings.filter((f) => /pg_temp|planted/.test(f.object))
    assert.deepEqual(planted, [])
  } finally {
    await planter.end()
    await ctx.close()
  }
})
