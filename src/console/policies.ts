/**
 * The Policies page: per table, the policy matrix (role x command: which policies let rows through) and
 * a few findings about what looks wrong, read from the catalogs through the owner connection.
 *
 * @module
 */
import { withOwner } from '../database/providers.js'

export const COMMANDS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const

export interface Finding {
  level: 'error' | 'warning' | 'info'
  message: string
}

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

export async function policiesView(ownerUrl: string): Promise<{ roles: string[]; tables: TablePolicies[] }> {
  return withOwner(ownerUrl, async (c) => {
    const installed = (await c.query<{ t: string | null }>(`select to_regclass('pgauthorize.role_credentials')::text as t`)).rows[0]?.t
    const roles = installed
      ? (await c.query<{ role: string }>(`select role from pgauthorize.role_credentials r join pg_roles p on p.rolname = r.role order by role`)).rows.map((r) => r.role)
      : []
    const r = await c.query<{
      schema: string
      table: string
      rls: boolean
      force: boolean
      grants: Record<string, string[]>
      policies: TablePolicies['policies'] | null
    }>(
      `select n.nspname as schema, c.relname as table, c.relrowsecurity as rls, c.relforcerowsecurity as force,
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
          and n.nspname not like 'pg\\_%'
        order by n.nspname, c.relname`,
      [roles],
    )
    const tables = r.rows.map((t): TablePolicies => {
      const policies = t.policies ?? []
      const findings: Finding[] = []
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
        if (granted.length && !t.rls) {
          findings.push({ level: 'error', message: `RLS is off but ${role} may ${granted.join(', ')}: every row is visible to every token` })
        } else if (t.rls && granted.length) {
          const denied = granted.filter((cmd) => Array.isArray(matrix[role]![cmd]) && (matrix[role]![cmd] as string[]).length === 0)
          if (denied.length) findings.push({ level: 'info', message: `${role} is granted ${denied.join(', ')} but no policy allows it: always denied` })
        }
      }
      if (t.rls && policies.length === 0) findings.push({ level: 'warning', message: 'RLS is on with no policy: nobody but the owner sees a row' })
      for (const p of policies) {
        for (const [what, expr] of [['USING', p.using], ['WITH CHECK', p.withCheck]] as const) {
          if (expr && /\bauth\.\w+\(/.test(expr) && !/\bSELECT\b/i.test(expr)) {
            findings.push({ level: 'warning', message: `policy "${p.name}" ${what} calls auth functions once per row; wrap the call as (select auth.…()) to evaluate it once per statement` })
          }
        }
        if (p.roles.includes('public')) findings.push({ level: 'info', message: `policy "${p.name}" applies to PUBLIC, so to every restricted role (anonymous too)` })
      }
      return { schema: t.schema, table: t.table, rls: t.rls, forceRls: t.force, matrix, policies, findings }
    })
    return { roles, tables }
  })
}
