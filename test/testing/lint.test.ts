import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { LINT_RULES, lintPolicies, wrapAuthCalls, type Finding, type LintRule } from '../../src/testing/lint.js'
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

test('on the flawed schema every rule fires, on the right object and with the right severity', async () => {
  const report = await lintPolicies(flawed.url)
  assert.deepEqual(byRule(report.findings), {
    'rls-disabled': ['error public.secrets'],
    'rls-no-policy': ['warning public.locked'],
    'auth-call-per-row': ['warning "notes_read" on public.notes'],
    'permissive-true': ['error "notes_insert" on public.notes'],
    'uid-not-uuid': ['warning "notes_update" on public.notes'],
    'sequence-grant': ['error public.notes_id_seq'],
    'security-definer': ['error public.all_notes()'],
    'large-objects': ['error authenticated'],
  })
  assert.deepEqual(new Set(report.findings.map((f) => f.rule)), new Set(LINT_RULES))
  for (const f of report.findings) assert.ok(f.message && f.fix, `${f.rule} has a message and a fix`)
  assert.equal(report.errors, 5)
  assert.equal(report.warnings, 3)

  const cli = await runCli(['lint', '--database-url', flawed.url])
  assert.equal(cli.code, 1, 'errors make the exit status non-zero')
  assert.match(cli.stdout, /5 error\(s\), 3 warning\(s\)/)
  const json = await runCli(['lint', '--database-url', flawed.url, '--json'])
  assert.equal(JSON.parse(json.stdout).findings.length, 8)
})

test('each rule goes silent once its flaw is fixed (the linter\'s own fix SQL where it is concrete)', async () => {
  const fixOf = async (rule: LintRule) => (await lintPolicies(flawed.url)).findings.find((f) => f.rule === rule)!.fix
  const fixes: [LintRule, () => Promise<string>][] = [
    ['rls-disabled', async () => `alter table public.secrets enable row level security;
       create policy secrets_owner on public.secrets for select to authenticated using (owner = (select auth.user_id()))`],
    ['rls-no-policy', async () => 'revoke all on public.locked from authenticated, anonymous'],
    ['auth-call-per-row', () => fixOf('auth-call-per-row')],
    ['permissive-true', async () => 'alter policy notes_insert on public.notes with check (owner = (select auth.user_id()))'],
    ['uid-not-uuid', () => fixOf('uid-not-uuid')],
    ['sequence-grant', () => fixOf('sequence-grant')],
    ['security-definer', async () => (await fixOf('security-definer')).replace(/; --.*$/, '')],
    ['large-objects', async () => 'revoke execute on function pg_catalog.lo_get(oid) from authenticated'],
  ]
  const remaining = new Set<LintRule>(LINT_RULES)
  for (const [rule, fix] of fixes) {
    await ownerQuery(flawed.url, await fix())
    remaining.delete(rule)
    const fired = new Set((await lintPolicies(flawed.url)).findings.map((f) => f.rule))
    assert.deepEqual(fired, remaining, `after fixing ${rule}`)
  }
  const cli = await runCli(['lint', '--database-url', flawed.url])
  assert.equal(cli.code, 0)
  assert.match(cli.stdout, /no findings/)
})

test('the demo has no errors; its only findings are the per-row auth calls of drizzle\'s crudPolicy form, which are real', async () => {
  const report = await lintPolicies(demo.url)
  assert.equal(report.errors, 0)
  assert.deepEqual(new Set(report.findings.map((f) => f.rule)), new Set(['auth-call-per-row']))
  assert.equal(report.findings.length, 8) // 4 commands x 2 tables
  const cli = await runCli(['lint', '--database-url', demo.url])
  assert.equal(cli.code, 0, 'warnings alone exit 0')

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
