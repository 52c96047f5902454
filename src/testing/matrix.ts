/**
 * The policy matrix: for each table with RLS enabled and each named identity, which of SELECT, INSERT,
 * UPDATE and DELETE are allowed and on how many rows. Every probe runs as the restricted role itself with
 * the identity's claims installed as the gateway installs them, inside a transaction that is rolled back
 * (each probe in a savepoint that is rolled back too), so nothing changes.
 *
 * What each probe means (documented in docs/testing-policies.md):
 * - granted: the role holds the table privilege (`has_table_privilege`, evaluated as the role).
 * - SELECT: `select count(*) from t`: the rows the SELECT policies make visible.
 * - UPDATE: `update t set c = c` (c: the first column the role may update): the rows the UPDATE policies'
 *   USING lets it touch whose unchanged new row passes WITH CHECK. It reads c, so, as for any real UPDATE
 *   with a WHERE clause, the SELECT policies apply too.
 * - DELETE: `delete from t`: the rows the DELETE policies let it delete. A foreign key that would refuse the
 *   delete at the end of the statement is reported beside the count (the count is taken before it fires).
 * - INSERT: for each of the table's first `sampleRows` rows (read by the owner), a copy of that row is
 *   inserted as the identity; RLS checks WITH CHECK before any constraint, so a 42501 means the policies
 *   refuse a row like it, and success or a constraint error (a duplicate key) means they accept it.
 *   Reported as "accepted of sampled". An empty table cannot be probed this way.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { connectOwner, quoteIdent } from '../database/connect.js'
import { openDatabaseContext, type DatabaseContext } from '../database/context.js'
import type { Claims } from '../database/session.js'
import { alignedTable, markdownTable } from './format.js'
import { checkRole, installIdentity, rollbackQuietly, sqlError } from './identity.js'

export const OPERATIONS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const
export type Operation = (typeof OPERATIONS)[number]

/** A named identity of the matrix. */
export interface MatrixIdentity {
  name: string
  role: string
  claims: Claims | null
}

export interface MatrixCell {
  /** The role holds the table privilege. */
  granted: boolean
  /** Granted and at least one row qualifies; null when it could not be told (an error, nothing to probe). */
  allowed: boolean | null
  /** Rows visible (SELECT), touched (UPDATE, DELETE) or sampled copies accepted (INSERT); null when unknown. */
  rows: number | null
  /** INSERT only: how many sampled rows were tried. */
  sampled?: number
  /** The error the probe ended with (for DELETE a deferred foreign-key error may come with a count). */
  error?: { sqlstate: string; message: string }
}

export interface MatrixEntry {
  table: string
  identity: string
  role: string
  cells: Record<Operation, MatrixCell>
}

export interface PolicyMatrix {
  tables: string[]
  identities: string[]
  entries: MatrixEntry[]
}

export interface MatrixOptions {
  /** Rows per table copied for the INSERT probe. Default 50. */
  sampleRows?: number
}

const WRAPPED_KEYS = new Set(['role', 'claims'])

/**
 * Reads a claims file's content: `{ "alice": {claims}, "nobody": null, "anon": { "role": "anonymous",
 * "claims": null } }`. `null` is a request without a token: the `anonymous` role with no identity. An
 * object whose keys are `claims` (and optionally `role`) names the role; any other object is claims.
 */
export function parseClaimSets(value: unknown, defaultRole = 'authenticated'): MatrixIdentity[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'the claims file must hold a JSON object of named claim sets')
  }
  const out: MatrixIdentity[] = []
  for (const [name, entry] of Object.entries(value)) {
    if (entry === null) {
      out.push({ name, role: 'anonymous', claims: null })
      continue
    }
    if (typeof entry !== 'object' || Array.isArray(entry)) {
      throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `claim set '${name}' must be an object or null`)
    }
    const keys = Object.keys(entry)
    if (keys.includes('claims') && keys.every((k) => WRAPPED_KEYS.has(k))) {
      const { role, claims } = entry as { role?: unknown; claims: unknown }
      if (role !== undefined && typeof role !== 'string') throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `claim set '${name}': role must be a string`)
      if (claims !== null && (typeof claims !== 'object' || Array.isArray(claims))) {
        throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `claim set '${name}': claims must be an object or null`)
      }
      out.push({ name, role: role ?? defaultRole, claims: claims as Claims | null })
    } else {
      out.push({ name, role: defaultRole, claims: entry as Claims })
    }
  }
  if (out.length === 0) throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'the claims file names no claim sets')
  return out
}

interface TableInfo {
  oid: number
  name: string
  columns: { name: string; identityAlways: boolean; generated: boolean }[]
  samples: string[]
}

async function loadTables(ownerUrl: string, sampleRows: number): Promise<TableInfo[]> {
  const owner = await connectOwner(ownerUrl)
  try {
    const t = await owner.query<{ oid: number; name: string }>(
      `select c.oid::int as oid, pg_catalog.format('%I.%I', n.nspname, c.relname) as name
         from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and c.relrowsecurity
          and n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'pgauthorize') and n.nspname not like 'pg\\_%'
        order by 2`,
    )
    const tables: TableInfo[] = []
    for (const { oid, name } of t.rows) {
      const cols = await owner.query<{ name: string; identity: string; generated: string }>(
        `select attname as name, attidentity as identity, attgenerated as generated from pg_catalog.pg_attribute
          where attrelid = $1 and attnum > 0 and not attisdropped order by attnum`,
        [oid],
      )
      // The owner reads the rows (it bypasses RLS as the table's owner) to build the INSERT probe's copies.
      const rows = await owner.query<{ j: string }>(`select pg_catalog.row_to_json(t)::text as j from ${name} t limit ${sampleRows}`)
      tables.push({
        oid,
        name,
        columns: cols.rows.map((c) => ({ name: c.name, identityAlways: c.identity === 'a', generated: c.generated !== '' })),
        samples: rows.rows.map((r) => r.j),
      })
    }
    return tables
  } finally {
    await owner.end().catch(() => {})
  }
}

const PROBE_SEQ = 'pg_temp.pga_matrix_probe'

/** Runs `sql` in a savepoint that is always rolled back. */
async function probe(client: pg.Client, sql: string, params: unknown[] = []): Promise<{ result?: pg.QueryResult; error?: { sqlstate: string; message: string } }> {
  await client.query('SAVEPOINT pga_probe')
  try {
    return { result: await client.query(sql, params) }
  } catch (err) {
    const e = sqlError(err)
    if (!e) throw err
    return { error: e }
  } finally {
    await client.query('ROLLBACK TO SAVEPOINT pga_probe')
  }
}

async function probeTable(client: pg.Client, t: TableInfo, counter: boolean): Promise<Record<Operation, MatrixCell>> {
  const priv = (
    await client.query<Record<Operation, boolean>>(
      `select pg_catalog.has_table_privilege($1::oid, 'SELECT') as "SELECT", pg_catalog.has_table_privilege($1::oid, 'INSERT') as "INSERT",
              pg_catalog.has_table_privilege($1::oid, 'UPDATE') as "UPDATE", pg_catalog.has_table_privilege($1::oid, 'DELETE') as "DELETE"`,
      [t.oid],
    )
  ).rows[0]!
  const denied = (): MatrixCell => ({ granted: false, allowed: false, rows: 0 })
  const counted = (rows: number | null, error?: { sqlstate: string; message: string }): MatrixCell => ({
    granted: true,
    allowed: rows === null ? null : rows > 0,
    rows,
    ...(error ? { error } : {}),
  })
  // UPDATE and DELETE count through a temporary sequence: nextval is not undone by a rolled-back
  // savepoint, so the count survives a foreign-key error raised at the end of the statement.
  const countedWrite = async (sql: string): Promise<MatrixCell> => {
    if (!counter) {
      const r = await probe(client, sql)
      return r.error ? counted(null, r.error) : counted(r.result!.rowCount ?? 0)
    }
    await client.query(`select pg_catalog.setval('${PROBE_SEQ}', 1, false)`)
    const r = await probe(client, `${sql} returning pg_catalog.nextval('${PROBE_SEQ}')`)
    if (!r.error) return counted(r.result!.rowCount ?? 0)
    if (r.error.sqlstate !== '23503') return counted(null, r.error)
    const n = await client.query<{ n: string }>(`select case when is_called then last_value else 0 end as n from ${PROBE_SEQ}`)
    return counted(Number(n.rows[0]!.n), r.error)
  }

  const cells = {} as Record<Operation, MatrixCell>
  if (!priv.SELECT) cells.SELECT = denied()
  else {
    const r = await probe(client, `select count(*)::int as n from ${t.name}`)
    cells.SELECT = r.error ? counted(null, r.error) : counted(r.result!.rows[0].n as number)
  }

  if (!priv.UPDATE) cells.UPDATE = denied()
  else {
    const settable = t.columns.filter((c) => !c.generated && !c.identityAlways).map((c) => c.name)
    const can = await client.query<{ name: string }>(
      `select c as name from unnest($2::text[]) with ordinality u(c, i) where pg_catalog.has_column_privilege($1::oid, c, 'UPDATE') order by i limit 1`,
      [t.oid, settable],
    )
    const col = can.rows[0]?.name
    cells.UPDATE = col === undefined
      ? { granted: true, allowed: null, rows: null, error: { sqlstate: '42501', message: 'no column the role may update' } }
      : await countedWrite(`update ${t.name} set ${quoteIdent(col)} = ${quoteIdent(col)}`)
  }

  cells.DELETE = priv.DELETE ? await countedWrite(`delete from ${t.name}`) : denied()

  if (!priv.INSERT) cells.INSERT = denied()
  else if (t.samples.length === 0) cells.INSERT = { granted: true, allowed: null, rows: null, sampled: 0 }
  else {
    const cols = t.columns.filter((c) => !c.generated)
    const list = cols.map((c) => quoteIdent(c.name)).join(', ')
    const overriding = cols.some((c) => c.identityAlways) ? ' overriding system value' : ''
    const sql = `insert into ${t.name} (${list})${overriding} select ${list} from pg_catalog.json_populate_record(null::${t.name}, $1::json)`
    let accepted = 0
    let error: { sqlstate: string; message: string } | undefined
    for (const sample of t.samples) {
      const r = await probe(client, sql, [sample])
      // WITH CHECK runs before constraints: 42501 is the policy refusing; class 23 came after it passed.
      if (!r.error || r.error.sqlstate.startsWith('23')) accepted++
      else if (r.error.sqlstate !== '42501') error ??= r.error
    }
    cells.INSERT = error && accepted === 0
      ? { granted: true, allowed: null, rows: null, sampled: t.samples.length, error }
      : { granted: true, allowed: accepted > 0, rows: accepted, sampled: t.samples.length, ...(error ? { error } : {}) }
  }
  return cells
}

/** Builds the matrix for `identities` over every table with RLS enabled (outside auth and pgauthorize). */
export async function policyMatrix(ownerUrl: string, identities: readonly MatrixIdentity[], options: MatrixOptions = {}): Promise<PolicyMatrix> {
  const ctx: DatabaseContext = await openDatabaseContext(ownerUrl)
  for (const id of identities) checkRole(ctx, id.role)
  const tables = await loadTables(ownerUrl, options.sampleRows ?? 50)
  const entries: MatrixEntry[] = []
  for (const id of identities) {
    const client = new pg.Client(ctx.roleConnectionConfig(id.role))
    client.on('error', () => {})
    await client.connect()
    try {
      await client.query('BEGIN')
      await installIdentity(client, ctx, id.role, id.claims)
      // A temporary sequence needs the TEMP privilege (PUBLIC has it by default); without it, counts are plain row counts.
      let counter = true
      try {
        await client.query(`SAVEPOINT pga_seq; create temporary sequence pga_matrix_probe; RELEASE SAVEPOINT pga_seq`)
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT pga_seq')
        counter = false
      }
      for (const t of tables) {
        entries.push({ table: t.name, identity: id.name, role: id.role, cells: await probeTable(client, t, counter) })
      }
    } finally {
      await rollbackQuietly(client)
      await client.end().catch(() => {})
    }
  }
  return { tables: tables.map((t) => t.name), identities: identities.map((i) => i.name), entries }
}

/** The text of one cell: `yes (2)`, `no (0)`, `no grant`, `yes (1/2)` for INSERT, or the error. */
export function cellLabel(op: Operation, c: MatrixCell): string {
  if (!c.granted) return 'no grant'
  if (op === 'INSERT' && c.sampled === 0) return 'granted (empty table, not probed)'
  if (c.rows === null) return `error ${c.error?.sqlstate ?? ''}`.trim()
  const n = op === 'INSERT' ? `${c.rows}/${c.sampled}` : String(c.rows)
  const base = `${c.allowed ? 'yes' : 'no'} (${n})`
  return c.error ? `${base}, then ${c.error.sqlstate}` : base
}

export type MatrixFormat = 'table' | 'json' | 'markdown'

export function formatMatrix(m: PolicyMatrix, format: MatrixFormat): string {
  if (format === 'json') return JSON.stringify(m, null, 2)
  const headers = ['table', 'identity', 'role', ...OPERATIONS]
  const rows = m.entries.map((e) => [e.table, e.identity, e.role, ...OPERATIONS.map((op) => cellLabel(op, e.cells[op]))])
  return format === 'markdown' ? markdownTable(headers, rows) : alignedTable(headers, rows)
}
