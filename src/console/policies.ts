/**
 * The Policies page: per table, the policy matrix (role x command: which policies let rows through) and
 * the findings of `pg-authorize lint` (the same engine, src/testing/lint.ts) about it, read from the
 * catalogs through the owner connection in one read-only transaction.
 *
 * @module
 */
import type pg from 'pg'
import { withOwner } from '../database/providers.js'
import { lintConnection, type Finding as LintFinding, type LintRule, type Severity } from '../testing/lint.js'

export const COMMANDS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const

export interface Finding {
  level: Severity
  rule: LintRule
  object: string
  message: string
  fix: string
}

const toFinding = (f: LintFinding): Finding => ({ level: f.severity, rule: f.rule, object: f.object, message: f.message, fix: f.fix })

export interface TablePolicies {
  schema: string
  table: string
  rls: boolean
  forceRls: boolean
  /** role -> command -> names of the permissive policies that apply ([] = denied by RLS). */
  matrix: Record<string, Record<string, string[] | 'no grant' | 'no RLS'>>
  policies: Array<{ name: string; command: string; permissive: boolean; roles: string[]; using: string | null; withCheck: string | null }>
  findings: Finding[]
}

/** Findings that belong to no table (functions, large objects) are in `findings`. */
export async function policiesView(ownerUrl: string): Promise<{ roles: string[]; tables: TablePolicies[]; findings: Finding[] }> {
  return withOwner(ownerUrl, async (c) => {
    await c.query('begin read only')
    try {
      return await view(c)
    } finally {
      await c.query('rollback').catch(() => {})
    }
  })
}

async function view(c: pg.ClientBase): Promise<{ roles: string[]; tables: TablePolicies[]; findings: Finding[] }> {
  const installed = (await c.query<{ t: string | null }>(`select to_regclass('pgauthorize.role_credentials')::text as t`)).rows[0]?.t
  const roles = installed
    ? (await c.query<{ role: string }>(`select role from pgauthorize.role_credentials r join pg_roles p on p.rolname = r.role order by role`)).rows.map((r) => r.role)
    : []
  const lint = installed ? (await lintConnection(c)).findings : []
  const r = await c.query<{
    key: string
    schema: string
    table: string
    rls: boolean
    force: boolean
    grants: Record<string, string[]>
    policies: TablePolicies['policies'] | null
  }>(
    `select pg_catalog.format('%I.%I', n.nspname, c.relname) as key, n.nspname as schema, c.relname as table, c.relrowsecurity as rls, c.relforcerowsecurity as force,
            (select coalesce(json_object_agg(r.role, array_remove(array[
               case when has_table_privilege(r.role, c.oid, 'SELECT') then 'SELECT' end,
               case when has_table_privilege(r.role, c.oid, 'INSERT') then 'INSERT' end,
               case when has_table_privilege(r.role, c.oid, 'UPDATE') then 'UPDATE' end,
               case when has_table_privilege(r.role, c.oid, 'DELETE') then 'DELETE' end], null)), '{}')
               from unnest($1::text[]) as r(role)) as grants,
            (select json_agg(json_build_object('name', p.policyname, 'command', p.cmd,
                    'permissive', p.permissive = 'PERMISSIVE', 'roles', p.roles, 'using', p.qual,
                    'withCheck', p.with_check) order by p.policyname)
               from pg_policies p where p.schemaname = n.nspname and p.tablename = c.relname) as policies
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'pgauthorize')
        and n.nspname not like 'pg\\_%' and c.relpersistence <> 't'
      order by n.nspname, c.relname`,
    [roles],
  )
  const tables = r.rows.map((t): TablePolicies => {
    const policies = t.policies ?? []
    const matrix: TablePolicies['matrix'] = {}
    for (const role of roles) {
      const granted = t.grants[role] ?? []
      matrix[role] = {}
      for (const cmd of COMMANDS) {
        if (!granted.includes(cmd)) matrix[role]![cmd] = 'no grant'
        else if (!t.rls) matrix[role]![cmd] = 'no RLS'
        else {
          matrix[role]![cmd] = policies
            .filter((p) => p.permissive && (p.command === 'ALL' || p.command === cmd) && (p.roles.includes(role) || p.roles.includes('public')))
            .map((p) => p.name)
        }
      }
    }
    const findings = lint.filter((f) => f.table === t.key).map(toFinding)
    return { schema: t.schema, table: t.table, rls: t.rls, forceRls: t.force, matrix, policies, findings }
  })
  const keys = new Set(r.rows.map((t) => t.key))
  return { roles, tables, findings: lint.filter((f) => !f.table || !keys.has(f.table)).map(toFinding) }
}
