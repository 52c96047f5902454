/**
 * The playground: run one SQL statement as an identity (a pasted JWT, verified through the providers,
 * or hand-written claims) and see what that identity sees, with the policies that applied to each table
 * the statement touches.
 *
 * The statement runs exactly as a gateway request would: on a connection logged in *as the restricted
 * role itself* (never the owner; security property 1), with the claims sealed into the transaction
 * (property 2). It runs in a transaction that is always rolled back, and through the extended query
 * protocol, which takes a single statement: `COMMIT; delete from users` cannot smuggle a committed change
 * past the rollback.
 *
 * Tables touched are read from `EXPLAIN (FORMAT JSON, VERBOSE)` of the same statement (planned, not run),
 * in a savepoint so a statement EXPLAIN refuses (DDL, `SET`) still runs.
 *
 * @module
 */
import pg from 'pg'
import { ERROR_TABLE, isPgAuthorizeError } from '../errors.js'
import type { ConsoleDatabase } from './backend.js'
import { installClaimsParamSql, type Claims } from '../database/session.js'
import type { Verifier } from '../verify/verifier.js'
import { cleanToken } from './inspect.js'
import { fail, str } from './http.js'
import { queryRefusingCopyIn } from '../lib/copy-in.js'

/** Rows returned to the page at most. */
export const MAX_ROWS = 500

export interface IdentityInput {
  /** `token`: a JWT verified through the providers; `claims`: hand-written claims; `none`: no identity. */
  kind: 'token' | 'claims' | 'none'
  token?: string
  /** A JSON object (as text or parsed). */
  claims?: string | Record<string, unknown>
  /** The restricted role to run as. Default `authenticated`. */
  role?: string
}

export interface PolicyView {
  name: string
  command: string
  permissive: boolean
  roles: string[]
  using: string | null
  withCheck: string | null
  /** True when the policy takes part in this statement (its command matches). */
  applies: boolean
}

export interface TouchedTable {
  schema: string
  table: string
  rls: boolean
  forceRls: boolean
  /** The policies of this table for the role (or PUBLIC). */
  policies: PolicyView[]
}

export interface RunResult {
  identity: { kind: IdentityInput['kind']; role: string; provider?: string; subject?: string; claims: Claims | null }
  ok: boolean
  command?: string
  rowCount?: number | null
  fields?: string[]
  rows?: unknown[][]
  truncated?: boolean
  error?: { code: string; sqlstate: string; message: string; detail?: string; hint?: string; position?: string }
  tables: TouchedTable[]
}

/** Turns a page's identity object into an {@link IdentityInput}; throws ERR_INVALID_ARGUMENT. */
export function parseIdentity(raw: unknown): IdentityInput {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw fail('ERR_INVALID_ARGUMENT', 'an identity must be an object')
  const o = raw as Record<string, unknown>
  const kind = o.kind
  if (kind !== 'token' && kind !== 'claims' && kind !== 'none') throw fail('ERR_INVALID_ARGUMENT', 'identity kind must be token, claims or none')
  const role = str(o, 'role', 63)
  const out: IdentityInput = { kind, ...(role ? { role } : {}) }
  if (kind === 'token') out.token = cleanToken(o.token)
  if (kind === 'claims') {
    if (typeof o.claims === 'string') out.claims = o.claims
    else if (o.claims && typeof o.claims === 'object' && !Array.isArray(o.claims)) out.claims = o.claims as Record<string, unknown>
    else throw fail('ERR_INVALID_CLAIMS', 'write the claims as a JSON object')
  }
  return out
}

function claimsObject(c: string | Record<string, unknown> | undefined): Claims {
  let v: unknown = c
  if (typeof c === 'string') {
    try {
      v = JSON.parse(c)
    } catch {
      throw fail('ERR_INVALID_CLAIMS', 'the claims are not valid JSON')
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fail('ERR_INVALID_CLAIMS', 'the claims must be a JSON object')
  return v as Claims
}

/** JSON-safe cell values, shown as Postgres prints them where JSON has no type for them. */
function cell(v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (Buffer.isBuffer(v)) return '\\x' + v.toString('hex')
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString()
  if (typeof v === 'bigint') return v.toString()
  return v
}

interface PlanNode {
  'Node Type'?: string
  Operation?: string
  'Relation Name'?: string
  Schema?: string
  Plans?: PlanNode[]
  [k: string]: unknown
}

function relations(node: PlanNode, out: Map<string, { schema: string; table: string }>): void {
  if (node['Relation Name'] && node.Schema) {
    out.set(`${node.Schema}.${node['Relation Name']}`, { schema: node.Schema, table: node['Relation Name'] })
  }
  for (const child of node.Plans ?? []) relations(child, out)
}

/** The command a policy must be for to apply to `command` (UPDATE and DELETE also read rows: SELECT policies). */
function applies(policyCmd: string, command: string): boolean {
  if (policyCmd === 'ALL' || policyCmd === command) return true
  return (command === 'UPDATE' || command === 'DELETE') && policyCmd === 'SELECT'
}

// pg's `queryMode: 'extended'` (one statement per Parse) is not in @types/pg.
type ExtendedQuery = pg.QueryArrayConfig & { queryMode: 'extended' }
const extended = (text: string): ExtendedQuery => ({ text, rowMode: 'array', queryMode: 'extended' })

async function touchedTables(client: pg.Client, sql: string, role: string): Promise<{ tables: TouchedTable[]; command: string | undefined }> {
  let plan: PlanNode | undefined
  await client.query('SAVEPOINT pga_explain')
  try {
    const r = await client.query(extended(`EXPLAIN (FORMAT JSON, VERBOSE) ${sql}`))
    const doc = r.rows[0]?.[0]
    plan = (typeof doc === 'string' ? JSON.parse(doc) : doc)?.[0]?.Plan
    await client.query('RELEASE SAVEPOINT pga_explain')
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pga_explain')
  }
  if (!plan) return { tables: [], command: undefined }
  const command = plan['Node Type'] === 'ModifyTable' && plan.Operation ? plan.Operation.toUpperCase() : 'SELECT'
  const found = new Map<string, { schema: string; table: string }>()
  relations(plan, found)
  if (found.size === 0) return { tables: [], command }
  const list = [...found.values()]
  const r = await client.query<{
    schema: string
    table: string
    rls: boolean
    force: boolean
    policies: Array<{ name: string; cmd: string; permissive: string; roles: string[]; qual: string | null; with_check: string | null }> | null
  }>(
    `select t.schema, t.name as table, c.relrowsecurity as rls, c.relforcerowsecurity as force,
            (select json_agg(json_build_object('name', p.policyname, 'cmd', p.cmd, 'permissive', p.permissive,
                      'roles', p.roles, 'qual', p.qual, 'with_check', p.with_check) order by p.policyname)
               from pg_catalog.pg_policies p
              where p.schemaname = t.schema and p.tablename = t.name
                and ($3 = any(p.roles) or 'public' = any(p.roles))) as policies
       from unnest($1::text[], $2::text[]) as t(schema, name)
       join pg_catalog.pg_namespace n on n.nspname = t.schema
       join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = t.name
      order by t.schema, t.name`,
    [list.map((x) => x.schema), list.map((x) => x.table), role],
  )
  return {
    command,
    tables: r.rows.map((t) => ({
      schema: t.schema,
      table: t.table,
      rls: t.rls,
      forceRls: t.force,
      policies: (t.policies ?? []).map((p) => ({
        name: p.name,
        command: p.cmd,
        permissive: p.permissive === 'PERMISSIVE',
        roles: p.roles,
        using: p.qual,
        withCheck: p.with_check,
        applies: applies(p.cmd, command),
      })),
    })),
  }
}

function sqlError(err: unknown): NonNullable<RunResult['error']> {
  if (isPgAuthorizeError(err)) return { code: err.code, sqlstate: ERROR_TABLE[err.code].sqlstate, message: err.message }
  const e = err as { code?: unknown; message?: unknown; detail?: unknown; hint?: unknown; position?: unknown }
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    return {
      code: e.code,
      sqlstate: e.code,
      message: String(e.message),
      ...(typeof e.detail === 'string' ? { detail: e.detail } : {}),
      ...(typeof e.hint === 'string' ? { hint: e.hint } : {}),
      ...(typeof e.position === 'string' ? { position: e.position } : {}),
    }
  }
  return { code: 'ERR_INTERNAL', sqlstate: 'XX000', message: 'the statement could not be run' }
}

/** Runs `sql` as `input`, rolled back. Identity failures come back as a result with `error`, not a throw. */
export async function runAs(
  ctx: ConsoleDatabase,
  verifier: Verifier,
  sql: string,
  input: IdentityInput,
  options: { statementTimeoutMs?: number } = {},
): Promise<RunResult> {
  let role = input.role ?? 'authenticated'
  const identity: RunResult['identity'] = { kind: input.kind, role, claims: null }
  let client: pg.Client | undefined
  try {
    if (input.kind === 'token') {
      const v = await verifier.verify(input.token!, { role })
      // As the gateway does: the provider's role claim may choose another role than the one asked for.
      role = identity.role = v.role
      identity.provider = v.provider.name
      identity.claims = { ...v.claims }
    } else if (input.kind === 'claims') {
      identity.claims = claimsObject(input.claims)
    }
    if (typeof identity.claims?.sub === 'string') identity.subject = identity.claims.sub
    // Throws ERR_ROLE_NOT_ALLOWED for the owner or any role set-up did not make.
    const config = ctx.roleConnectionConfig(role)
    client = new pg.Client({ ...config, connectionTimeoutMillis: 10_000 })
    client.on('error', () => {})
    await client.connect()
    const timeout = Math.max(100, Math.floor(options.statementTimeoutMs ?? 10_000))
    const begin = [`BEGIN`, `SET LOCAL statement_timeout = ${timeout}`]
    await client.query(begin.join('; '))
    // As a bind parameter: SQL text is visible to other sessions of the role in pg_stat_activity.
    if (identity.claims) await client.query(installClaimsParamSql(true), [ctx.seal(identity.claims, role, 'console', { maxTtlSeconds: 300 })])
    const { tables, command } = await touchedTables(client, sql, role)
    try {
      const r = await queryRefusingCopyIn<unknown[]>(client, extended(sql))
      const rows = r.rows ?? []
      return {
        identity,
        ok: true,
        command: r.command ?? command,
        rowCount: r.rowCount,
        fields: (r.fields ?? []).map((f) => f.name),
        rows: rows.slice(0, MAX_ROWS).map((row) => row.map(cell)),
        truncated: rows.length > MAX_ROWS,
        tables,
      }
    } catch (err) {
      return { identity, ok: false, ...(command ? { command } : {}), error: sqlError(err), tables }
    }
  } catch (err) {
    return { identity, ok: false, error: sqlError(err), tables: [] }
  } finally {
    if (client) {
      await client.query('ROLLBACK').catch(() => {})
      await client.end().catch(() => {})
    }
  }
}
