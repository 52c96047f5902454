/**
 * The policy linter: reads the catalog through the owner connection and reports what would let the
 * restricted roles see or change too much, or make policies slow. Each finding carries its fix.
 *
 * The rules ({@link RULES}, documented with their exact semantics in docs/testing-policies.md) take
 * Supabase's splinter names where splinter has the same check, so findings read the same across
 * Supabase, Neon's advisor and pg-authorize; the rest are checks only pg-authorize can make (it knows
 * which settings a client can forge and which roles its gateway logs in as). They live in
 * lint-tables.ts, lint-policies.ts, lint-functions.ts and lint-large-objects.ts; this file runs them,
 * applies suppressions and renders text (SARIF: lint-sarif.ts).
 *
 * A finding is suppressed by a comment on its object (or, for a policy or an index, on its table)
 * holding `pg-authorize:ignore RULE` (several rules: `pg-authorize:ignore RULE1, RULE2`), so the reason
 * for a deliberate choice sits where the choice was made.
 *
 * @module
 */
import type pg from 'pg'
import { withOwner } from '../database/providers.js'
import { PgAuthorizeError } from '../errors.js'
import { alignedTable } from './format.js'
import { largeObjectFindings } from './lint-large-objects.js'
import { functionFindings } from './lint-functions.js'
import { policyFindings, readPolicies } from './lint-policies.js'
import { tableFindings } from './lint-tables.js'

export { wrapAuthCalls } from './lint-policies.js'

/** `error` fails `lint` by default, `warning` with `--fail-on warn`; `info` never fails it. */
export type Severity = 'error' | 'warning' | 'info'
export type Category = 'security' | 'performance'

export interface RuleInfo {
  /** The usual severity (a few rules raise or lower it per finding; the finding says). */
  severity: Severity
  category: Category
  /** What the rule reports, one sentence. */
  summary: string
}

const rule = (severity: Severity, category: Category, summary: string): RuleInfo => ({ severity, category, summary })

/** Every rule, in report order. */
export const RULES = {
  rls_disabled_in_public: rule('error', 'security', 'A table a restricted role holds a privilege on has RLS disabled: the role reaches every row.'),
  rls_enabled_no_policy: rule('info', 'security', 'RLS is enabled on a granted table with no policy: everything is denied (maybe intended).'),
  policy_exists_rls_disabled: rule('error', 'security', 'A table has policies but RLS is disabled, so none of them applies.'),
  sensitive_columns_exposed: rule('error', 'security', 'A table without RLS, readable by a restricted role, has a column named like a credential or personal data.'),
  security_definer_view: rule('error', 'security', 'A view a restricted role can query runs with its owner\'s rights (no security_invoker), so the RLS of the tables under it does not apply.'),
  materialized_view_in_api: rule('warning', 'security', 'A restricted role can read a materialized view: it has no RLS, every row is visible.'),
  foreign_table_in_api: rule('warning', 'security', 'A restricted role can reach a foreign table: foreign tables have no RLS.'),
  sequence_usage_missing: rule('error', 'security', 'A role may INSERT into a table but lacks USAGE on its serial column\'s sequence: its inserts fail.'),
  rls_policy_always_true: rule('error', 'security', 'A permissive policy that lets a restricted role write is always true (USING (true), WITH CHECK (true), 1 = 1, or no expression).'),
  forgeable_claim_source: rule('error', 'security', 'A policy, or a function it calls, reads claims from a setting a client can set (request.jwt.claims, request.jwt.claim.*, pg_session_jwt.*, any x.y) instead of auth.*.'),
  subject_cast_to_uuid: rule('warning', 'security', 'A policy casts auth.user_id() or a claim of auth.session() to uuid: a sub that is not a UUID (Clerk, Auth0, Firebase) makes every query fail.'),
  uid_compared_as_text: rule('warning', 'security', 'A policy uses auth.uid() in a text comparison: the subjects are stored as text, may not be UUIDs, and auth.uid() is NULL for those.'),
  unknown_claim: rule('warning', 'security', 'A policy reads a claim that none of the sample tokens carries: it is always NULL.'),
  authenticated_security_definer_function_executable: rule('error', 'security', 'A signed-in restricted role can execute a SECURITY DEFINER function, which bypasses RLS (error through PUBLIC, warning when granted).'),
  anon_security_definer_function_executable: rule('error', 'security', 'The anonymous role can execute a SECURITY DEFINER function, which bypasses RLS (error through PUBLIC, warning when granted).'),
  function_search_path_mutable: rule('warning', 'security', 'A function does not pin search_path, so what its unqualified names resolve to depends on the caller.'),
  large_objects_executable: rule('error', 'security', 'A restricted role may execute the large-object functions: large objects are outside RLS and shared by every user of the role.'),
  auth_rls_initplan: rule('warning', 'performance', 'An auth.* call in a policy is evaluated for every row rather than once per statement.'),
  multiple_permissive_policies: rule('warning', 'performance', 'A role has more than one permissive policy for the same command on a table: every one is evaluated for every row.'),
  policy_column_unindexed: rule('warning', 'performance', 'A policy compares a column with a claim, and no index starts with that column.'),
  unindexed_foreign_keys: rule('info', 'performance', 'A foreign key has no index starting with its columns.'),
  duplicate_index: rule('warning', 'performance', 'Two or more indexes of a table are identical.'),
  no_primary_key: rule('info', 'performance', 'A table has no primary key.'),
} as const satisfies Record<string, RuleInfo>

export type LintRule = keyof typeof RULES
export const LINT_RULES: readonly LintRule[] = Object.keys(RULES) as LintRule[]

export interface Finding {
  rule: LintRule
  severity: Severity
  category: Category
  /** The table, view, policy (`"name" on table`), sequence, index, function or role concerned. */
  object: string
  /** The table or view the finding belongs to, when it belongs to one (`schema.name`, quoted as needed). */
  table?: string
  message: string
  /** SQL that fixes it (or a template to fill in, marked with <...>). */
  fix: string
}

export interface SuppressedFinding extends Finding {
  /** The comment that suppresses it. */
  justification: string
}

export interface LintReport {
  findings: Finding[]
  /** Findings a `pg-authorize:ignore` comment suppresses: not counted, kept for the record. */
  suppressed: SuppressedFinding[]
  errors: number
  warnings: number
  infos: number
}

export interface LintOptions {
  /**
   * Claims of sample tokens (decoded payloads, or the claim names a provider declares, as an object).
   * With them, `unknown_claim` reports claims that policies read and no sample carries; without, it is silent.
   */
  sampleClaims?: readonly Record<string, unknown>[]
}

/** Where a suppression comment may sit: a relation (table, view, sequence, index), a policy or a function. */
export interface Anchor {
  kind: 'relation' | 'policy' | 'function'
  oid: string
}

/** A finding as a rule produces it: with the objects whose comments may suppress it. */
export interface RawFinding extends Omit<Finding, 'category' | 'severity'> {
  severity?: Severity
  anchors: Anchor[]
}

/** What every rule reads: the connection (read-only, search_path = pg_catalog) and the restricted roles. */
export interface LintContext {
  c: pg.ClientBase
  roles: string[]
  /** Server major version. */
  major: number
  options: LintOptions
}

/** Schemas never checked: the system's and pg-authorize's own. */
export const SYSTEM_SCHEMAS = `('pg_catalog', 'information_schema', 'auth', 'pgauthorize')`
/** A SQL condition on `n.nspname` (pg_namespace alias `n`): a schema the linter checks. */
export const USER_SCHEMA = `n.nspname not in ${SYSTEM_SCHEMAS} and n.nspname not like 'pg\\_%'`

const IGNORE = /pg-authorize:ignore\s+([a-z0-9_]+(?:\s*,\s*[a-z0-9_]+|\s+[a-z0-9_]+)*)/gi

/** The rules a comment suppresses: the known rule names after each `pg-authorize:ignore`. */
export function ignoredRules(comment: string): Set<LintRule> {
  const out = new Set<LintRule>()
  for (const m of comment.matchAll(IGNORE)) {
    for (const word of m[1]!.split(/[\s,]+/)) {
      // The names stop at the first word that is not one: the rest of the comment is the reason.
      if (!Object.hasOwn(RULES, word)) break
      out.add(word as LintRule)
    }
  }
  return out
}

async function suppressions(c: pg.ClientBase): Promise<Map<string, { rules: Set<LintRule>; text: string }>> {
  const r = await c.query<{ kind: Anchor['kind']; oid: string; text: string }>(
    `select case d.classoid when 'pg_catalog.pg_class'::pg_catalog.regclass then 'relation'
                            when 'pg_catalog.pg_policy'::pg_catalog.regclass then 'policy' else 'function' end as kind,
            d.objoid::text as oid, d.description as text
       from pg_catalog.pg_description d
      where d.objsubid = 0 and d.description like '%pg-authorize:ignore%'
        and d.classoid in ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_policy'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)`,
  )
  return new Map(r.rows.map((x) => [`${x.kind}:${x.oid}`, { rules: ignoredRules(x.text), text: x.text }]))
}

/** The restricted roles set up by `pg-authorize setup`. */
async function restrictedRoles(c: pg.ClientBase): Promise<string[]> {
  try {
    return (await c.query<{ role: string }>('select role from pgauthorize.role_credentials order by role')).rows.map((r) => r.role)
  } catch (err) {
    throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', 'pg-authorize is not set up in this database', {
      cause: err,
      hint: 'run: pg-authorize setup --database-url OWNER_URL',
    })
  }
}

/**
 * Runs every rule on a connection with owner rights. It sets `search_path` (so the fixes come
 * schema-qualified): run it inside a transaction that is rolled back, as {@link lintPolicies} does.
 */
export async function lintConnection(c: pg.ClientBase, options: LintOptions = {}): Promise<LintReport> {
  const roles = await restrictedRoles(c)
  await c.query('set local search_path = pg_catalog')
  const major = Math.floor(Number((await c.query<{ v: string }>(`select pg_catalog.current_setting('server_version_num') as v`)).rows[0]!.v) / 10000)
  const ctx: LintContext = { c, roles, major, options }
  const policies = await readPolicies(ctx)
  const raw = [
    ...(await tableFindings(ctx, policies)),
    ...(await policyFindings(ctx, policies)),
    ...(await functionFindings(ctx)),
    ...(await largeObjectFindings(c, roles)),
  ]
  const order = new Map(LINT_RULES.map((r, i) => [r, i]))
  raw.sort((a, b) => order.get(a.rule)! - order.get(b.rule)! || (a.object < b.object ? -1 : a.object > b.object ? 1 : 0))
  const comments = await suppressions(c)
  const findings: Finding[] = []
  const suppressed: SuppressedFinding[] = []
  for (const { anchors, ...f } of raw) {
    const finding: Finding = { ...f, severity: f.severity ?? RULES[f.rule].severity, category: RULES[f.rule].category }
    const by = anchors.map((a) => comments.get(`${a.kind}:${a.oid}`)).find((s) => s?.rules.has(f.rule))
    if (by) suppressed.push({ ...finding, justification: by.text })
    else findings.push(finding)
  }
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length
  return { findings, suppressed, errors: count('error'), warnings: count('warning'), infos: count('info') }
}

/** Lints the database named by the owner URL, in a read-only transaction that is rolled back. */
export async function lintPolicies(ownerUrl: string, options: LintOptions = {}): Promise<LintReport> {
  return withOwner(ownerUrl, async (c) => {
    await c.query('begin read only')
    try {
      return await lintConnection(c, options)
    } finally {
      await c.query('rollback').catch(() => {})
    }
  })
}

export type FailOn = 'error' | 'warn'

/** True when the report should fail a CI step: any error, or with `warn` any error or warning. */
export function lintFails(report: LintReport, failOn: FailOn = 'error'): boolean {
  return report.errors > 0 || (failOn === 'warn' && report.warnings > 0)
}

export function formatLint(report: LintReport): string {
  const tail = `${report.errors} error(s), ${report.warnings} warning(s), ${report.infos} info` +
    (report.suppressed.length ? `; ${report.suppressed.length} suppressed by pg-authorize:ignore comments` : '')
  if (!report.findings.length) return `no findings: the policies pass every rule (${tail})`
  const rows = report.findings.map((f) => [f.severity, f.rule, f.object])
  const details = report.findings.map((f, i) => `${i + 1}. [${f.severity}] ${f.rule}: ${f.object}\n   ${f.message}\n   fix: ${f.fix}`)
  return [alignedTable(['severity', 'rule', 'object'], rows), '', ...details, '', tail].join('\n')
}
