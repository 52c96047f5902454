/**
 * The lint rules about relations and their grants: RLS state (`rls_disabled_in_public`,
 * `rls_enabled_no_policy`, `policy_exists_rls_disabled`), exposure (`sensitive_columns_exposed`,
 * `security_definer_view`, `materialized_view_in_api`, `foreign_table_in_api`, `sequence_usage_missing`)
 * and indexes (`unindexed_foreign_keys`, `duplicate_index`, `no_primary_key`).
 *
 * "Exposed" means a restricted role (one `pg-authorize setup` made) holds a privilege on it, directly
 * or through PUBLIC: the gateway logs in as those roles, so that is what a client can reach.
 * Temporary relations are skipped: they belong to other sessions, and a client could plant findings.
 *
 * @module
 */
import { quoteIdent } from '../database/connect.js'
import { USER_SCHEMA, type LintContext, type RawFinding } from './lint.js'
import type { PolicyRow } from './lint-policies.js'

/**
 * Column names that usually hold credentials or personal data (compared lower-cased, `-` read as `_`).
 * The categories follow splinter's list; the names are ours.
 */
export const SENSITIVE_COLUMNS: readonly string[] = [
  'password', 'passwd', 'pwd', 'password_hash', 'passphrase', 'secret', 'secret_key', 'client_secret', 'private_key', 'api_key', 'apikey',
  'token', 'jwt', 'access_token', 'refresh_token', 'id_token', 'session_token', 'session_secret', 'otp', 'totp_secret', 'mfa_secret',
  'recovery_code', 'backup_codes', 'ssn', 'social_security_number', 'tax_id', 'national_id', 'passport_number', 'drivers_license',
  'credit_card', 'card_number', 'cvv', 'cvc', 'iban', 'bank_account', 'account_number', 'routing_number', 'medical_record',
  'health_record', 'diagnosis',
]

const PRIVS = `'SELECT,INSERT,UPDATE,DELETE'`

export async function tableFindings(ctx: LintContext, policies: PolicyRow[]): Promise<RawFinding[]> {
  const { c, roles } = ctx
  const findings: RawFinding[] = []
  const roleList = (rs: string[]) => rs.map(quoteIdent).join(', ')
  const rel = (oid: string) => [{ kind: 'relation' as const, oid }]

  const rels = await c.query<{ oid: string; name: string; kind: string; rls: boolean; invoker: boolean; pk: boolean; roles: string[]; readers: string[]; sensitive: string[] }>(
    `select c.oid::text as oid, pg_catalog.format('%I.%I', n.nspname, c.relname) as name, c.relkind as kind, c.relrowsecurity as rls,
            coalesce(c.reloptions, '{}') && array['security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'] as invoker,
            exists (select 1 from pg_catalog.pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as pk,
            array(select r from unnest($1::text[]) r where pg_catalog.has_table_privilege(r, c.oid, ${PRIVS})) as roles,
            array(select r from unnest($1::text[]) r where pg_catalog.has_table_privilege(r, c.oid, 'SELECT')
                     or pg_catalog.has_any_column_privilege(r, c.oid, 'SELECT')) as readers,
            array(select a.attname::text from pg_catalog.pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                     and replace(lower(a.attname), '-', '_') = any($2::text[]) order by a.attnum) as sensitive
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'v', 'm', 'f') and ${USER_SCHEMA} and c.relpersistence <> 't'
        and not exists (select 1 from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by 2`,
    [roles, SENSITIVE_COLUMNS],
  )
  const policyCount = new Map<string, number>()
  for (const p of policies) policyCount.set(p.tableOid, (policyCount.get(p.tableOid) ?? 0) + 1)

  for (const t of rels.rows) {
    const table = t.name
    const base = { object: table, table, anchors: rel(t.oid) }
    if (t.kind === 'r' || t.kind === 'p') {
      const n = policyCount.get(t.oid) ?? 0
      if (t.roles.length && !t.rls) {
        findings.push({
          ...base,
          rule: 'rls_disabled_in_public',
          message: `${t.roles.join(', ')} can reach every row of ${table}: it is granted to them and RLS is not enabled`,
          fix: `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY; -- then add policies; or, if they should not reach it: REVOKE ALL ON ${table} FROM ${roleList(t.roles)};`,
        })
      } else if (t.roles.length && n === 0) {
        findings.push({
          ...base,
          rule: 'rls_enabled_no_policy',
          message: `RLS is enabled on ${table} but it has no policy, so ${t.roles.join(', ')} see and change nothing (default deny); fine if intended`,
          fix: `CREATE POLICY "<name>" ON ${table} FOR SELECT TO ${roleList(t.roles)} USING ((select auth.user_id()) = <owner column>); -- or REVOKE ALL ON ${table} FROM ${roleList(t.roles)};`,
        })
      }
      if (!t.rls && n > 0) {
        findings.push({
          ...base,
          rule: 'policy_exists_rls_disabled',
          message: `${table} has ${n} polic${n === 1 ? 'y' : 'ies'} but RLS is disabled, so none of them applies${t.roles.length ? `: ${t.roles.join(', ')} reach every row` : ''}`,
          fix: `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`,
        })
      }
      if (!t.rls && t.readers.length && t.sensitive.length) {
        findings.push({
          ...base,
          rule: 'sensitive_columns_exposed',
          message: `${t.readers.join(', ')} can read ${t.sensitive.map(quoteIdent).join(', ')} of every row of ${table} (no RLS): the names suggest credentials or personal data`,
          fix: `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY; -- plus policies; or REVOKE SELECT (${t.sensitive.map(quoteIdent).join(', ')}) ON ${table} FROM ${roleList(t.readers)}; ` +
            '(column privileges need the table-level SELECT revoked and granted back column by column)',
        })
      }
      if (!t.pk) {
        findings.push({
          ...base,
          rule: 'no_primary_key',
          message: `${table} has no primary key: rows cannot be addressed one by one (logical replication, many ORMs and the Data API's upserts need one)`,
          fix: `ALTER TABLE ${table} ADD PRIMARY KEY (<column>);`,
        })
      }
    } else if (t.kind === 'v' && t.readers.length && !t.invoker) {
      // Postgres 14 has no security_invoker: the fix is a revoke, or a view that filters on the claims itself.
      findings.push({
        ...base,
        rule: 'security_definer_view',
        message: `${t.readers.join(', ')} can query view ${table}, which reads its tables with its owner's rights (no security_invoker): their RLS policies do not apply to it`,
        fix: ctx.major >= 15
          ? `ALTER VIEW ${table} SET (security_invoker = true); -- or REVOKE ALL ON ${table} FROM ${roleList(t.readers)};`
          : `REVOKE ALL ON ${table} FROM ${roleList(t.readers)}; -- Postgres 14 has no security_invoker (15 does)`,
      })
    } else if ((t.kind === 'm' || t.kind === 'f') && t.roles.length) {
      const matview = t.kind === 'm'
      findings.push({
        ...base,
        rule: matview ? 'materialized_view_in_api' : 'foreign_table_in_api',
        message: `${t.roles.join(', ')} can reach ${matview ? 'materialized view' : 'foreign table'} ${table}, which has no RLS: every row is visible to every token`,
        fix: `REVOKE ALL ON ${table} FROM ${roleList(t.roles)}; -- ${matview ? 'expose it through a security_invoker view or a function that filters on the claims' : 'copy what they may see into a table with RLS'}`,
      })
    }
  }

  const seqs = await c.query<{ oid: string; seq: string; tbl: string; tbl_oid: string; col: string; roles: string[] }>(
    `select s.oid::text as oid, s.oid::regclass::text as seq, t.oid::regclass::text as tbl, t.oid::text as tbl_oid, a.attname as col,
            array(select r from unnest($1::text[]) r
                   where pg_catalog.has_table_privilege(r, t.oid, 'INSERT') and not pg_catalog.has_sequence_privilege(r, s.oid, 'USAGE')) as roles
       from pg_catalog.pg_depend d
       join pg_catalog.pg_class s on s.oid = d.objid and s.relkind = 'S'
       join pg_catalog.pg_class t on t.oid = d.refobjid
       join pg_catalog.pg_namespace n on n.oid = t.relnamespace
       join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
      where d.classid = 'pg_catalog.pg_class'::regclass and d.refclassid = 'pg_catalog.pg_class'::regclass and d.deptype = 'a'
        and ${USER_SCHEMA} and t.relpersistence <> 't'
      order by 2`,
    [roles],
  )
  for (const s of seqs.rows) {
    if (!s.roles.length) continue
    findings.push({
      rule: 'sequence_usage_missing',
      object: s.seq,
      table: s.tbl,
      anchors: [{ kind: 'relation', oid: s.oid }, { kind: 'relation', oid: s.tbl_oid }],
      message: `${s.roles.join(', ')} may insert into ${s.tbl} but not use the sequence of its serial column ${s.col}: inserts fail with "permission denied for sequence"`,
      fix: `GRANT USAGE, SELECT ON SEQUENCE ${s.seq} TO ${roleList(s.roles)};`,
    })
  }

  // A foreign key is covered when some index's leading columns are exactly its columns, in any order.
  const fks = await c.query<{ tbl_oid: string; tbl: string; name: string; cols: string[] }>(
    `select k.conrelid::text as tbl_oid, k.conrelid::regclass::text as tbl, k.conname as name,
            array(select a.attname::text from unnest(k.conkey) with ordinality u(attnum, i)
                    join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum order by u.i) as cols
       from pg_catalog.pg_constraint k join pg_catalog.pg_class c on c.oid = k.conrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where k.contype = 'f' and ${USER_SCHEMA} and c.relpersistence <> 't'
        and not exists (select 1 from pg_catalog.pg_index i
                         where i.indrelid = k.conrelid and i.indpred is null
                           and (select pg_catalog.array_agg(x order by x) from unnest((i.indkey::int2[])[0:pg_catalog.cardinality(k.conkey) - 1]) x)
                             = (select pg_catalog.array_agg(x order by x) from unnest(k.conkey) x))
      order by 2, 3`,
  )
  for (const f of fks.rows) {
    const cols = f.cols.map(quoteIdent).join(', ')
    findings.push({
      rule: 'unindexed_foreign_keys',
      object: `${quoteIdent(f.name)} on ${f.tbl}`,
      table: f.tbl,
      anchors: rel(f.tbl_oid),
      message: `foreign key ${quoteIdent(f.name)} (${cols}) has no index starting with its columns: joins on it, and deletes and updates of the rows it refers to, scan ${f.tbl}`,
      fix: `CREATE INDEX ON ${f.tbl} (${cols});`,
    })
  }

  const dups = await c.query<{ tbl_oid: string; tbl: string; indexes: string[]; oids: string[]; constraint_backed: boolean[] }>(
    `select i.indrelid::text as tbl_oid, i.indrelid::regclass::text as tbl,
            pg_catalog.array_agg(i.indexrelid::regclass::text order by (k.oid is null), i.indexrelid::regclass::text) as indexes,
            pg_catalog.array_agg(i.indexrelid::text order by (k.oid is null), i.indexrelid::regclass::text) as oids,
            pg_catalog.array_agg(k.oid is not null order by (k.oid is null), i.indexrelid::regclass::text) as constraint_backed
       from pg_catalog.pg_index i
       join pg_catalog.pg_class c on c.oid = i.indrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       join pg_catalog.pg_class ic on ic.oid = i.indexrelid
       left join pg_catalog.pg_constraint k on k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x')
      where ${USER_SCHEMA} and c.relpersistence <> 't'
      group by i.indrelid, ic.relam, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
               pg_catalog.pg_get_expr(i.indexprs, i.indrelid), pg_catalog.pg_get_expr(i.indpred, i.indrelid), i.indisunique
     having count(*) > 1
      order by 2`,
  )
  for (const d of dups.rows) {
    // Keep the first (a constraint's index sorts first); drop the others, unless they back a constraint too.
    const drop = d.indexes.slice(1).filter((_, i) => !d.constraint_backed[i + 1])
    findings.push({
      rule: 'duplicate_index',
      object: d.indexes.join(', '),
      table: d.tbl,
      anchors: [...rel(d.tbl_oid), ...d.oids.map((oid) => ({ kind: 'relation' as const, oid }))],
      message: `indexes ${d.indexes.join(', ')} of ${d.tbl} are identical: every write updates each of them, and only one is ever used`,
      fix: drop.length ? `DROP INDEX ${drop.join(', ')};` : `-- each backs a constraint: drop all but one of the constraints (ALTER TABLE ${d.tbl} DROP CONSTRAINT <name>)`,
    })
  }
  return findings
}
