/**
 * The policy linter: reads the catalog through the owner connection and reports what would let the
 * restricted roles see or change too much, or make policies slow. Each finding carries its fix.
 *
 * Rules (documented with their exact semantics in docs/testing-policies.md):
 * - `rls-disabled` (error): a table a restricted role holds a privilege on, without RLS enabled.
 * - `rls-no-policy` (warning): RLS enabled on a granted table, but no policy: everything is denied.
 * - `auth-call-per-row` (warning): an `auth.session()/jwt()/user_id()/uid()` call evaluated for every row:
 *   not inside an *uncorrelated* `(select ...)`. Read from the stored expression tree, so a correlated
 *   subquery such as `(select auth.user_id() = t.owner)`, which Postgres runs once per row, counts.
 * - `permissive-true` (error): a permissive policy `USING (true)` or `WITH CHECK (true)` that lets a
 *   restricted role write (its command, and the role's privilege, include INSERT, UPDATE or DELETE).
 * - `uid-not-uuid` (warning): `auth.uid()` used in a text comparison (cast to text, or beside a column
 *   cast to uuid): the subjects are stored as text, so they may not be UUIDs, and `auth.uid()` is NULL then.
 * - `sequence-grant` (error): a serial column's sequence that a role may INSERT into the table of, but
 *   lacks USAGE on: inserts fail.
 * - `security-definer` (error when executable through PUBLIC, warning when granted explicitly): a
 *   SECURITY DEFINER function outside `auth` that a restricted role can execute: it runs with its owner's
 *   rights, which bypass RLS.
 * - `large-objects` (error): a restricted role may execute the large-object functions (lint-large-objects.ts).
 *
 * @module
 */
import type pg from 'pg'
import { quoteIdent } from '../database/connect.js'
import { withOwner } from '../database/providers.js'
import { PgAuthorizeError } from '../errors.js'
import { alignedTable } from './format.js'
import { findCalls, parseNodeTree } from './node-tree.js'
import { largeObjectFindings } from './lint-large-objects.js'

export type Severity = 'error' | 'warning'

export const LINT_RULES = [
  'rls-disabled',
  'rls-no-policy',
  'auth-call-per-row',
  'permissive-true',
  'uid-not-uuid',
  'sequence-grant',
  'security-definer',
  'large-objects',
] as const
export type LintRule = (typeof LINT_RULES)[number]

export interface Finding {
  rule: LintRule
  severity: Severity
  /** The table, policy (`"name" on table`), sequence or function concerned. */
  object: string
  message: string
  /** SQL that fixes it (or a template to fill in, marked with <...>). */
  fix: string
}

export interface LintReport {
  findings: Finding[]
  errors: number
  warnings: number
}

const SYSTEM_SCHEMAS = `('pg_catalog', 'information_schema', 'auth', 'pgauthorize')`
const AUTH_FUNCTIONS = ['session', 'jwt', 'user_id', 'uid']

/** Index of the parenthesis closing the one at `open`, skipping string literals; -1 if none. */
function closingParen(text: string, open: number): number {
  let depth = 0
  for (let i = open; i < text.length; i++) {
    const ch = text[i]
    if (ch === "'") {
      i++
      while (i < text.length && !(text[i] === "'" && text[i + 1] !== "'")) i += text[i] === "'" ? 2 : 1
    } else if (ch === '(') depth++
    else if (ch === ')' && --depth === 0) return i
  }
  return -1
}

/**
 * Rewrites a deparsed policy expression so each auth call is evaluated once: every call not already
 * alone in a `( SELECT auth.f())` is wrapped in one, and a redundant outer `( SELECT ...)` without FROM
 * (drizzle's crudPolicy form, a per-row SubPlan) is removed.
 */
export function wrapAuthCalls(expr: string): string {
  const calls = AUTH_FUNCTIONS.join('|')
  const kept: string[] = []
  let out = expr.replace(new RegExp(`\\( SELECT auth\\.(${calls})\\(\\)(?: AS \\w+)?\\)`, 'g'), (m) => `\u0000${kept.push(m) - 1}\u0000`)
  out = out.replace(new RegExp(`auth\\.(${calls})\\(\\)`, 'g'), '( SELECT auth.$1())')
  out = out.replace(/\u0000(\d+)\u0000/g, (_, i: string) => kept[Number(i)]!)
  if (out.startsWith('( SELECT ') && closingParen(out, 0) === out.length - 1 && !/\bFROM\b/i.test(out)) {
    out = `(${out.slice('( SELECT '.length, -1)})`
  }
  return out
}

const cmdName: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' }

interface PolicyRow {
  name: string
  table: string
  cmd: string
  permissive: boolean
  qual_tree: string | null
  check_tree: string | null
  qual: string | null
  with_check: string | null
  roles: string[]
  writers: string[]
}

async function lintWith(c: pg.ClientBase): Promise<Finding[]> {
  let roles: string[]
  try {
    roles = (await c.query<{ role: string }>('select role from pgauthorize.role_credentials order by role')).rows.map((r) => r.role)
  } catch (err) {
    throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', 'pg-authorize is not set up in this database', {
      cause: err,
      hint: 'run: pg-authorize setup --database-url OWNER_URL',
    })
  }
  // Deparse with only pg_catalog on the path, so every other name in the fixes comes schema-qualified.
  await c.query('set search_path = pg_catalog')
  const findings: Finding[] = []
  const roleList = (rs: string[]) => rs.map(quoteIdent).join(', ')

  const tables = await c.query<{ name: string; rls: boolean; policies: number; roles: string[] }>(
    `select pg_catalog.format('%I.%I', n.nspname, c.relname) as name, c.relrowsecurity as rls,
            (select count(*)::int from pg_catalog.pg_policy p where p.polrelid = c.oid) as policies,
            array(select r from unnest($1::text[]) r where pg_catalog.has_table_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,DELETE')) as roles
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname not in ${SYSTEM_SCHEMAS} and n.nspname not like 'pg\\_%' and c.relpersistence <> 't'
      order by 1`,
    [roles],
  )
  for (const t of tables.rows) {
    if (!t.roles.length) continue
    if (!t.rls) {
      findings.push({
        rule: 'rls-disabled',
        severity: 'error',
        object: t.name,
        message: `${t.roles.join(', ')} can reach every row of ${t.name}: it is granted to them and RLS is not enabled`,
        fix: `ALTER TABLE ${t.name} ENABLE ROW LEVEL SECURITY; -- then add policies; or, if they should not reach it: REVOKE ALL ON ${t.name} FROM ${roleList(t.roles)};`,
      })
    } else if (t.policies === 0) {
      findings.push({
        rule: 'rls-no-policy',
        severity: 'warning',
        object: t.name,
        message: `RLS is enabled on ${t.name} but it has no policy, so ${t.roles.join(', ')} see and change nothing (default deny); fine if intended`,
        fix: `CREATE POLICY "<name>" ON ${t.name} FOR SELECT TO ${roleList(t.roles)} USING ((select auth.user_id()) = <owner column>); -- or REVOKE ALL ON ${t.name} FROM ${roleList(t.roles)};`,
      })
    }
  }

  const authOids = await c.query<{ oid: string; name: string }>(
    `select p.oid::text as oid, p.proname as name from pg_catalog.pg_proc p
      where p.pronamespace = (select oid from pg_catalog.pg_namespace where nspname = 'auth') and p.proname = any($1) and p.pronargs = 0`,
    [AUTH_FUNCTIONS],
  )
  const oids = new Set(authOids.rows.map((r) => r.oid))
  const names = new Map(authOids.rows.map((r) => [r.oid, r.name]))
  const policies = await c.query<PolicyRow>(
    `select p.polname as name, p.polrelid::regclass::text as table, p.polcmd as cmd, p.polpermissive as permissive,
            p.polqual::text as qual_tree, p.polwithcheck::text as check_tree,
            pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check,
            array(select r from unnest($1::text[]) r
                   where 0 = any(p.polroles) or (select oid from pg_catalog.pg_roles where rolname = r) = any(p.polroles)) as roles,
            array(select r from unnest($1::text[]) r
                   where (0 = any(p.polroles) or (select oid from pg_catalog.pg_roles where rolname = r) = any(p.polroles))
                     and pg_catalog.has_table_privilege(r, p.polrelid,
                           case p.polcmd when 'a' then 'INSERT' when 'w' then 'UPDATE' when 'd' then 'DELETE' else 'INSERT,UPDATE,DELETE' end)
                     and p.polcmd <> 'r') as writers
       from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname not in ${SYSTEM_SCHEMAS} and c.relpersistence <> 't'
      order by 2, 1`,
    [roles],
  )
  for (const p of policies.rows) {
    const object = `${quoteIdent(p.name)} on ${p.table}`
    if (!p.roles.length) continue

    const perRow = new Set<string>()
    for (const tree of [p.qual_tree, p.check_tree]) {
      if (!tree) continue
      for (const call of findCalls(parseNodeTree(tree), oids)) if (!call.once) perRow.add(`auth.${names.get(call.funcOid)}()`)
    }
    if (perRow.size) {
      const parts = [p.qual && `USING (${wrapAuthCalls(p.qual)})`, p.with_check && `WITH CHECK (${wrapAuthCalls(p.with_check)})`].filter(Boolean)
      findings.push({
        rule: 'auth-call-per-row',
        severity: 'warning',
        object,
        message: `${[...perRow].join(', ')} is evaluated for every row (not inside an uncorrelated (select ...)); wrapped, Postgres evaluates it once per statement`,
        fix: `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} ${parts.join(' ')};`,
      })
    }

    if (p.permissive && p.writers.length && (p.qual === 'true' || p.with_check === 'true')) {
      const what = [p.qual === 'true' && 'USING (true)', p.with_check === 'true' && 'WITH CHECK (true)'].filter(Boolean).join(' and ')
      const alter = [
        p.qual === 'true' && 'USING (<condition on the claims, e.g. (select auth.user_id()) = owner_id>)',
        p.with_check === 'true' && 'WITH CHECK (<condition on the claims>)',
      ].filter(Boolean)
      findings.push({
        rule: 'permissive-true',
        severity: 'error',
        object,
        message: `${what} on a ${cmdName[p.cmd]} policy lets ${p.writers.join(', ')} write any row of ${p.table}, whoever the claims say they are`,
        fix: `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} ${alter.join(' ')};`,
      })
    }

    const text = [p.qual, p.with_check].filter(Boolean).join(' ')
    if (text.includes('auth.uid()') && (/auth\.uid\(\)(?: AS \w+)?\)+::text/.test(text) || text.includes('::uuid'))) {
      const swap = (e: string) => e.replace(/\(\( SELECT auth\.uid\(\)(?: AS \w+)?\)\)::text|\(auth\.uid\(\)\)::text/g, '( SELECT auth.user_id())')
      const parts = [p.qual && `USING (${swap(p.qual)})`, p.with_check && `WITH CHECK (${swap(p.with_check)})`].filter(Boolean)
      findings.push({
        rule: 'uid-not-uuid',
        severity: 'warning',
        object,
        message: 'auth.uid() is compared as text here (cast to text, or beside a column cast to uuid), so the subjects are stored as text and ' +
          'may not be UUIDs; auth.uid() is NULL for any sub that is not a UUID (user_2abc, auth0|123), and such users match nothing',
        fix: /auth\.uid\(\)(?: AS \w+)?\)+::text/.test(text)
          ? `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} ${parts.join(' ')};`
          : `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} USING (<text column> = (select auth.user_id())); -- compare the text subject, without casts`,
      })
    }
  }

  const seqs = await c.query<{ seq: string; tbl: string; col: string; roles: string[] }>(
    `select s.oid::regclass::text as seq, t.oid::regclass::text as tbl, a.attname as col,
            array(select r from unnest($1::text[]) r
                   where pg_catalog.has_table_privilege(r, t.oid, 'INSERT') and not pg_catalog.has_sequence_privilege(r, s.oid, 'USAGE')) as roles
       from pg_catalog.pg_depend d
       join pg_catalog.pg_class s on s.oid = d.objid and s.relkind = 'S'
       join pg_catalog.pg_class t on t.oid = d.refobjid
       join pg_catalog.pg_namespace n on n.oid = t.relnamespace
       join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
      where d.classid = 'pg_catalog.pg_class'::regclass and d.refclassid = 'pg_catalog.pg_class'::regclass and d.deptype = 'a'
        and n.nspname not in ${SYSTEM_SCHEMAS} and t.relpersistence <> 't'
      order by 1`,
    [roles],
  )
  for (const s of seqs.rows) {
    if (!s.roles.length) continue
    findings.push({
      rule: 'sequence-grant',
      severity: 'error',
      object: s.seq,
      message: `${s.roles.join(', ')} may insert into ${s.tbl} but not use the sequence of its serial column ${s.col}: inserts fail with "permission denied for sequence"`,
      fix: `GRANT USAGE, SELECT ON SEQUENCE ${s.seq} TO ${roleList(s.roles)};`,
    })
  }

  const fns = await c.query<{ fn: string; public: boolean; roles: string[] }>(
    `select p.oid::regprocedure::text as fn,
            exists (select 1 from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x
                     where x.grantee = 0 and x.privilege_type = 'EXECUTE') as public,
            array(select r from unnest($1::text[]) r where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE')) as roles
       from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where p.prosecdef and n.nspname not in ${SYSTEM_SCHEMAS} and n.nspname not like 'pg\\_%'
        and not exists (select 1 from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      order by 1`,
    [roles],
  )
  for (const f of fns.rows) {
    if (!f.roles.length) continue
    findings.push({
      rule: 'security-definer',
      severity: f.public ? 'error' : 'warning',
      object: f.fn,
      message: `${f.roles.join(', ')} can execute SECURITY DEFINER function ${f.fn}${f.public ? ' (through PUBLIC, the default)' : ''}: it runs with its owner's rights, which bypass RLS`,
      fix: `REVOKE EXECUTE ON FUNCTION ${f.fn} FROM PUBLIC, ${roleList(f.roles)}; -- or, if it need not bypass RLS: ALTER FUNCTION ${f.fn} SECURITY INVOKER;`,
    })
  }
  findings.push(...(await largeObjectFindings(c, roles)))
  return findings
}

/** Lints the database named by the owner URL. */
export async function lintPolicies(ownerUrl: string): Promise<LintReport> {
  const findings = await withOwner(ownerUrl, async (c) => {
    // Read-only, and nothing the linter set outlives it.
    await c.query('begin read only')
    try {
      return await lintWith(c)
    } finally {
      await c.query('rollback').catch(() => {})
    }
  })
  return {
    findings,
    errors: findings.filter((f) => f.severity === 'error').length,
    warnings: findings.filter((f) => f.severity === 'warning').length,
  }
}

export function formatLint(report: LintReport): string {
  if (!report.findings.length) return 'no findings: the policies pass every rule'
  const rows = report.findings.map((f) => [f.severity, f.rule, f.object])
  const details = report.findings.map((f, i) => `${i + 1}. [${f.severity}] ${f.rule}: ${f.object}\n   ${f.message}\n   fix: ${f.fix}`)
  return [alignedTable(['severity', 'rule', 'object'], rows), '', ...details, '', `${report.errors} error(s), ${report.warnings} warning(s)`].join('\n')
}
