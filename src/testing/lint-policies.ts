/**
 * The lint rules that read policy expressions: `auth_rls_initplan`, `rls_policy_always_true`,
 * `multiple_permissive_policies`, `policy_column_unindexed`, `uid_compared_as_text`,
 * `subject_cast_to_uuid`, `forgeable_claim_source` and `unknown_claim`. They read the stored expression
 * trees (`pg_policy.polqual`), which know a correlated subquery from an uncorrelated one and a cast
 * from a comparison, and the deparsed text only to write the fixes.
 *
 * @module
 */
import { quoteIdent } from '../database/connect.js'
import { constText, findCalls, isNode, listField, parseNodeTree, someNode, stripCasts, walkTree, type TreeValue } from './node-tree.js'
import type { LintContext, RawFinding } from './lint.js'

const AUTH_FUNCTIONS = ['session', 'jwt', 'user_id', 'uid']
const UUID = '2950'
/** Claims every verified token has, whatever the provider: never "unknown". */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'])

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

export interface PolicyRow {
  oid: string
  name: string
  table: string
  tableOid: string
  tableRls: boolean
  cmd: string
  permissive: boolean
  qualTree: TreeValue | null
  checkTree: TreeValue | null
  qual: string | null
  withCheck: string | null
  /** The restricted roles it applies to (directly or through PUBLIC). */
  roles: string[]
  /** Those of them that hold the write privilege of its command. */
  writers: string[]
}

/** Every policy on a table of a checked schema (temporary relations skipped: they are other sessions'). */
export async function readPolicies(ctx: LintContext): Promise<PolicyRow[]> {
  const r = await ctx.c.query<Omit<PolicyRow, 'qualTree' | 'checkTree'> & { qual_tree: string | null; check_tree: string | null }>(
    `select p.oid::text as oid, p.polname as name, p.polrelid::regclass::text as table, p.polrelid::text as "tableOid",
            c.relrowsecurity as "tableRls", p.polcmd as cmd, p.polpermissive as permissive,
            p.polqual::text as qual_tree, p.polwithcheck::text as check_tree,
            pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as "withCheck",
            array(select r from unnest($1::text[]) r
                   where 0 = any(p.polroles) or (select oid from pg_catalog.pg_roles where rolname = r) = any(p.polroles)) as roles,
            array(select r from unnest($1::text[]) r
                   where (0 = any(p.polroles) or (select oid from pg_catalog.pg_roles where rolname = r) = any(p.polroles))
                     and pg_catalog.has_table_privilege(r, p.polrelid,
                           case p.polcmd when 'a' then 'INSERT' when 'w' then 'UPDATE' when 'd' then 'DELETE' else 'INSERT,UPDATE,DELETE' end)
                     and p.polcmd <> 'r') as writers
       from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'pgauthorize') and c.relpersistence <> 't'
      order by 3, 2`,
    [ctx.roles],
  )
  return r.rows.map(({ qual_tree, check_tree, ...p }) => ({
    ...p,
    qualTree: qual_tree ? parseNodeTree(qual_tree) : null,
    checkTree: check_tree ? parseNodeTree(check_tree) : null,
  }))
}

const isTrue = (expr: string | null) => expr !== null && ['true', '(true)', '1=1', '(1=1)'].includes(expr.replace(/\s+/g, '').toLowerCase())

/** A text rewrite of the policy's expressions, as the ALTER POLICY that applies it. */
function alterWith(p: PolicyRow, rewrite: (e: string) => string): string {
  const parts = [
    p.cmd !== 'a' && p.qual && `USING (${rewrite(p.qual)})`,
    p.cmd !== 'r' && p.cmd !== 'd' && p.withCheck && `WITH CHECK (${rewrite(p.withCheck)})`,
  ].filter(Boolean)
  return `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} ${parts.join(' ')};`
}

/**
 * Replaces reads of the PostgREST/Supabase claim settings with pg-authorize's verified accessors. What
 * it cannot rewrite it leaves, so the caller can tell a complete fix from a template.
 */
export function replaceForgeableReads(expr: string): string {
  const setting = (name: string) => `current_setting\\('${name}'(?:::text)?(?:, (?:true|false))?\\)`
  return expr
    .replace(new RegExp(`\\(${setting('request\\.jwt\\.claims')}\\)::jsonb?`, 'g'), '( SELECT auth.session())')
    .replace(new RegExp(`\\(?${setting('request\\.jwt\\.claim\\.sub')}\\)?`, 'g'), '( SELECT auth.user_id())')
    .replace(new RegExp(`\\(?${setting("request\\.jwt\\.claim\\.((?:[^']|'')+)")}\\)?`, 'g'), (_, claim: string) => `(( SELECT auth.session()) ->> '${claim}'::text)`)
}

export async function policyFindings(ctx: LintContext, policies: PolicyRow[]): Promise<RawFinding[]> {
  const { c } = ctx
  const authRows = await c.query<{ oid: string; name: string }>(
    `select p.oid::text as oid, p.proname as name from pg_catalog.pg_proc p
      where p.pronamespace = (select oid from pg_catalog.pg_namespace where nspname = 'auth') and p.proname = any($1) and p.pronargs = 0`,
    [AUTH_FUNCTIONS],
  )
  const authName = new Map(authRows.rows.map((r) => [r.oid, r.name]))
  const authOids = new Set(authName.keys())
  const subjectOids = new Set(authRows.rows.filter((r) => r.name !== 'uid').map((r) => r.oid))
  const settingOids = new Set((await c.query<{ oid: string }>(
    `select oid::text from pg_catalog.pg_proc where oid in ('pg_catalog.current_setting(text)'::regprocedure, 'pg_catalog.current_setting(text, boolean)'::regprocedure)`,
  )).rows.map((r) => r.oid))
  const findings: RawFinding[] = []
  const applying = policies.filter((p) => p.roles.length)

  // Per table and column, whether some index starts with it (for policy_column_unindexed).
  const leading = new Set((await c.query<{ k: string }>(
    `select i.indrelid::text || ':' || i.indkey[0]::text as k from pg_catalog.pg_index i where i.indkey[0] <> 0 and i.indpred is null`,
  )).rows.map((r) => r.k))

  // Functions the policies call (directly), with their source, for forgeable_claim_source.
  const called = new Set<string>()
  for (const p of applying) {
    for (const tree of [p.qualTree, p.checkTree]) {
      if (!tree) continue
      walkTree(tree, (n) => {
        if (isNode(n, 'FUNCEXPR')) called.add(String(n.fields.funcid))
        if (isNode(n, 'OPEXPR')) called.add(String(n.fields.opfuncid))
      })
    }
  }
  const bodies = new Map((await c.query<{ oid: string; fn: string; def: string }>(
    `select p.oid::text as oid, p.oid::regprocedure::text as fn, pg_catalog.pg_get_functiondef(p.oid) as def
       from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where p.oid = any($1::oid[]) and p.prokind = 'f' and n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'pgauthorize')
        and not exists (select 1 from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')`,
    [[...called]],
  )).rows.map((r) => [r.oid, r]))

  // Settings read by name, in policies and in those functions; then which of them a client can set.
  const reads = new Map<string, { settings: Set<string>; dynamic: boolean; via: Map<string, { fn: string; oid: string; settings: Set<string> }> }>()
  const readNames = new Set<string>()
  for (const p of applying) {
    const entry = { settings: new Set<string>(), dynamic: false, via: new Map<string, { fn: string; oid: string; settings: Set<string> }>() }
    for (const tree of [p.qualTree, p.checkTree]) {
      if (!tree) continue
      walkTree(tree, (n) => {
        if (isNode(n, 'FUNCEXPR') && settingOids.has(String(n.fields.funcid))) {
          const name = constText(listField(n, 'args')[0])
          if (name === undefined) entry.dynamic = true
          else entry.settings.add(name.toLowerCase())
        }
        const fid = n.type === 'FUNCEXPR' ? String(n.fields.funcid) : n.type === 'OPEXPR' ? String(n.fields.opfuncid) : ''
        const body = bodies.get(fid)
        if (body && !entry.via.has(fid)) {
          const settings = new Set([...body.def.matchAll(/current_setting\s*\(\s*'((?:[^']|'')+)'/gi)].map((m) => m[1]!.replace(/''/g, "'").toLowerCase()))
          if (settings.size) entry.via.set(fid, { fn: body.fn, oid: fid, settings })
        }
      })
    }
    for (const s of [...entry.settings, ...[...entry.via.values()].flatMap((v) => [...v.settings])]) readNames.add(s)
    reads.set(p.oid, entry)
  }
  // A client can set any placeholder (a name with a dot that no module defines) and any USERSET setting.
  const settable = new Set((await c.query<{ name: string }>(
    `select x.name from unnest($1::text[]) x(name)
      where not exists (select 1 from pg_catalog.pg_settings s where s.name = x.name) or exists (select 1 from pg_catalog.pg_settings s where s.name = x.name and s.context = 'user')`,
    [[...readNames]],
  )).rows.map((r) => r.name))

  const sampleClaims = ctx.options.sampleClaims
  const known = sampleClaims && new Set([...REGISTERED_CLAIMS, ...sampleClaims.flatMap((s) => Object.keys(s))])

  for (const p of applying) {
    const object = `${quoteIdent(p.name)} on ${p.table}`
    const anchors = [{ kind: 'policy' as const, oid: p.oid }, { kind: 'relation' as const, oid: p.tableOid }]
    const base = { object, table: p.table, anchors }
    const trees = [p.qualTree, p.checkTree].filter((t): t is TreeValue => t !== null)
    const text = [p.qual, p.withCheck].filter(Boolean).join(' ')

    const perRow = new Set<string>()
    for (const tree of trees) for (const call of findCalls(tree, authOids)) if (!call.once) perRow.add(`auth.${authName.get(call.funcOid)}()`)
    if (perRow.size) {
      findings.push({
        ...base,
        rule: 'auth_rls_initplan',
        message: `${[...perRow].join(', ')} is evaluated for every row (not inside an uncorrelated (select ...)); wrapped, Postgres evaluates it once per statement`,
        fix: alterWith(p, wrapAuthCalls),
      })
    }

    // A permissive policy with no expression for its command lets every row through, like true.
    const usingTrue = p.cmd !== 'a' && (isTrue(p.qual) || p.qual === null)
    const checkTrue = p.cmd !== 'r' && p.cmd !== 'd' && (isTrue(p.withCheck) || (p.withCheck === null && (p.cmd === 'a' || usingTrue)))
    if (p.permissive && p.writers.length && (usingTrue || checkTrue)) {
      const what = [usingTrue && `USING ${p.qual === null ? '(none)' : `(${p.qual})`}`, checkTrue && `WITH CHECK ${p.withCheck === null ? '(none)' : `(${p.withCheck})`}`].filter(Boolean).join(' and ')
      const alter = [
        usingTrue && 'USING (<condition on the claims, e.g. (select auth.user_id()) = owner_id>)',
        checkTrue && 'WITH CHECK (<condition on the claims>)',
      ].filter(Boolean)
      findings.push({
        ...base,
        rule: 'rls_policy_always_true',
        message: `${what} on a ${cmdName[p.cmd]} policy lets ${p.writers.join(', ')} write any row of ${p.table}, whoever the claims say they are`,
        fix: `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} ${alter.join(' ')};`,
      })
    }

    if (text.includes('auth.uid()') && (/auth\.uid\(\)(?: AS \w+)?\)+::text/.test(text) || text.includes('::uuid'))) {
      const swap = (e: string) => e.replace(/\(\( SELECT auth\.uid\(\)(?: AS \w+)?\)\)::text|\(auth\.uid\(\)\)::text/g, '( SELECT auth.user_id())')
      findings.push({
        ...base,
        rule: 'uid_compared_as_text',
        message: 'auth.uid() is compared as text here (cast to text, or beside a column cast to uuid), so the subjects are stored as text and ' +
          'may not be UUIDs; auth.uid() is NULL for any sub that is not a UUID (user_2abc, auth0|123), and such users match nothing',
        fix: /auth\.uid\(\)(?: AS \w+)?\)+::text/.test(text)
          ? alterWith(p, swap)
          : `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} USING (<text column> = (select auth.user_id())); -- compare the text subject, without casts`,
      })
    }

    const castsSubject = trees.some((t) => someNode(t, (n) =>
      isNode(n, 'COERCEVIAIO') && String(n.fields.resulttype) === UUID &&
      someNode(n.fields.arg ?? '', (m) => isNode(m, 'FUNCEXPR') && subjectOids.has(String(m.fields.funcid)))))
    if (castsSubject) {
      findings.push({
        ...base,
        rule: 'subject_cast_to_uuid',
        message: 'a subject from auth.user_id() or auth.session() is cast to uuid: for a sub that is not a UUID (Clerk user_2abc, Auth0 auth0|123, ' +
          'Firebase uids) the cast raises 22P02 and the whole query fails',
        fix: `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} USING (<column>::text = (select auth.user_id())); -- compare as text; or use auth.uid(), which is NULL (no match) for a non-UUID sub`,
      })
    }

    const entry = reads.get(p.oid)!
    const direct = [...entry.settings].filter((s) => settable.has(s))
    const viaFns = [...entry.via.values()].map((v) => ({ ...v, forged: [...v.settings].filter((s) => settable.has(s)) })).filter((v) => v.forged.length)
    if (direct.length || entry.dynamic || viaFns.length) {
      const fixed = alterWith(p, replaceForgeableReads)
      const complete = !viaFns.length && !entry.dynamic && !/current_setting\(/.test(fixed)
      const where = [
        ...direct.map((s) => `current_setting('${s}')`),
        ...(entry.dynamic ? ['current_setting() of a name computed at run time'] : []),
        ...viaFns.map((v) => `${v.fn} (reads ${v.forged.map((s) => `'${s}'`).join(', ')})`),
      ]
      findings.push({
        ...base,
        anchors: [...anchors, ...viaFns.map((v) => ({ kind: 'function' as const, oid: v.oid }))],
        rule: 'forgeable_claim_source',
        message: `the policy reads its claims from ${where.join(', ')}: any client can SET that through pg-authorize's SQL transports and ` +
          'be whoever it likes; only auth.session(), auth.jwt(), auth.user_id() and auth.uid() are verified',
        fix: complete
          ? fixed
          : `${fixed.includes('current_setting(') ? `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} USING (<the same condition on (select auth.session()) ->> '<claim>' or (select auth.user_id())>);` : fixed}` +
            (viaFns.length ? ` -- and in ${viaFns.map((v) => v.fn).join(', ')}: read auth.session() / auth.user_id() instead of current_setting()` : ''),
      })
    }

    if (known) {
      const named = new Set([...text.matchAll(/auth\.(?:session|jwt)\(\)(?: AS \w+\))?\s*->>?\s*'((?:[^']|'')+)'/g)].map((m) => m[1]!.replace(/''/g, "'")))
      const missing = [...named].filter((n) => !known.has(n))
      if (missing.length) {
        findings.push({
          ...base,
          rule: 'unknown_claim',
          message: `the policy reads claim(s) ${missing.map((m) => `'${m}'`).join(', ')}, which none of the ${sampleClaims!.length} sample token(s) carries, ` +
            `so it is always NULL and the policy matches nothing; they carry: ${[...known].filter((k) => !REGISTERED_CLAIMS.has(k)).sort().join(', ') || '(only registered claims)'}`,
          fix: `ALTER POLICY ${quoteIdent(p.name)} ON ${p.table} USING (<the condition, on a claim the tokens carry>); -- or add the claim to the tokens`,
        })
      }
    }

    // A column of this row compared with an expression that reads the claims: each query filters on it.
    const unindexed = new Map<string, string>()
    for (const tree of trees) {
      walkTree(tree, (n, depth) => {
        if (!isNode(n, 'OPEXPR') || String(n.fields.opresulttype) !== '16') return
        const args = listField(n, 'args')
        if (args.length !== 2) return
        const readsClaims = (v: TreeValue) => someNode(v, (m) => isNode(m, 'FUNCEXPR') && authOids.has(String(m.fields.funcid)))
        for (const [col, other] of [[args[0]!, args[1]!], [args[1]!, args[0]!]] as const) {
          const v = stripCasts(col)
          if (isNode(v, 'VAR') && Number(v.fields.varlevelsup) === depth && readsClaims(other) && !leading.has(`${p.tableOid}:${v.fields.varattno}`)) {
            unindexed.set(String(v.fields.varattno), '')
          }
        }
      })
    }
    if (unindexed.size) {
      const cols = (await c.query<{ name: string }>(
        `select attname as name from pg_catalog.pg_attribute where attrelid = $1::oid and attnum = any($2::int2[]) order by attnum`,
        [p.tableOid, [...unindexed.keys()]],
      )).rows.map((r) => quoteIdent(r.name))
      findings.push({
        ...base,
        rule: 'policy_column_unindexed',
        message: `the policy compares ${cols.join(', ')} with the claims, and no index of ${p.table} starts with ${cols.length > 1 ? 'them' : 'it'}: every query scans the table`,
        fix: cols.map((col) => `CREATE INDEX ON ${p.table} (${col});`).join(' '),
      })
    }
  }

  // multiple_permissive_policies: per table, the (role, command) pairs with more than one permissive policy.
  const byTable = new Map<string, PolicyRow[]>()
  for (const p of applying) if (p.permissive) byTable.set(p.tableOid, [...(byTable.get(p.tableOid) ?? []), p])
  for (const [tableOid, ps] of byTable) {
    const pairs: string[] = []
    const involved = new Set<PolicyRow>()
    for (const role of ctx.roles) {
      for (const [code, cmd] of [['r', 'SELECT'], ['a', 'INSERT'], ['w', 'UPDATE'], ['d', 'DELETE']] as const) {
        const hit = ps.filter((p) => p.roles.includes(role) && (p.cmd === code || p.cmd === '*'))
        if (hit.length > 1) {
          pairs.push(`${role} ${cmd} (${hit.map((p) => quoteIdent(p.name)).join(', ')})`)
          hit.forEach((p) => involved.add(p))
        }
      }
    }
    if (!pairs.length) continue
    const table = ps[0]!.table
    findings.push({
      rule: 'multiple_permissive_policies',
      object: table,
      table,
      anchors: [{ kind: 'relation', oid: tableOid }, ...[...involved].map((p) => ({ kind: 'policy' as const, oid: p.oid }))],
      message: `more than one permissive policy applies to the same role and command: ${pairs.join('; ')}; Postgres evaluates each of them for every row`,
      fix: `-- merge them into one policy per role and command: CREATE POLICY "<name>" ON ${table} FOR <command> TO <role> USING ((<first>) OR (<second>)); ` +
        `then DROP POLICY each of ${[...involved].map((p) => quoteIdent(p.name)).join(', ')} ON ${table};`,
    })
  }
  return findings
}
