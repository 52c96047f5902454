/**
 * The Data API's schema cache: the tables, views, columns, keys, relationships and functions of the exposed
 * schemas, as one restricted role sees them.
 *
 * Why per role: PostgREST shows what the role may use (`openapi-mode=follow-privileges`), and an object a
 * role holds no privilege on must be the same "not found" as one that does not exist. So the catalog is read
 * *by the role itself*, on one of its own connections, filtered by `has_table_privilege` and friends for
 * `current_user`; no owner connection is involved.
 *
 * Every identifier the SQL builder writes comes from here (security property: no name from a request reaches
 * SQL unless the catalog has it). Reloads are coalesced (`src/lib/coalesce.ts`): a flood of
 * `NOTIFY pgrst` costs one reload in flight and one pending per role, and requests keep using the last
 * good cache while a reload runs.
 *
 * @module
 */
import { coalesce, type Coalesced } from '../../lib/coalesce.js'

export interface Column {
  name: string
  /** `format_type(atttypid, atttypmod)`: SQL text from the catalog, safe to write as a type. */
  type: string
  /** Base type name (`int4`, `tsvector`, `jsonb`). */
  typname: string
  nullable: boolean
  /** `pg_get_expr` of the default, catalog SQL (written only by the owner). */
  default: string | null
  generated: boolean
  position: number
}

export interface Table {
  oid: string
  schema: string
  name: string
  kind: 'table' | 'view' | 'matview' | 'foreign' | 'partitioned'
  comment: string | null
  columns: Map<string, Column>
  /** In table order. */
  columnList: Column[]
  pk: string[]
  /** Unique column sets (the PK among them), for one-to-one detection and `on_conflict`. */
  uniques: string[][]
  select: boolean
  insert: boolean
  update: boolean
  delete: boolean
}

export interface ForeignKey {
  name: string
  /** The referencing table and its columns. */
  from: { schema: string; table: string; columns: string[] }
  /** The referenced table and its columns. */
  to: { schema: string; table: string; columns: string[] }
}

export interface FunctionArg {
  name: string
  type: string
  /** Has a DEFAULT (may be omitted). */
  optional: boolean
  variadic: boolean
}

export interface RestFunction {
  schema: string
  name: string
  args: FunctionArg[]
  /** Unnamed IN arguments (only a single unnamed json/jsonb one is usable: it takes the whole body). */
  unnamedArgs: number
  singleJsonArg: boolean
  returnsSet: boolean
  returnType: string
  /** What a call's row looks like: a scalar, a composite type's columns, or void. */
  returnKind: 'scalar' | 'composite' | 'void'
  /** `pg_class` oid of the composite return type ('0' when none): a table's row type makes its result embeddable. */
  returnRelid: string
  /** Columns of a composite / TABLE result. */
  columns: Column[]
  volatility: 'immutable' | 'stable' | 'volatile'
  comment: string | null
}

export interface SchemaCache {
  schemas: readonly string[]
  /** By `schema.table`. */
  tables: Map<string, Table>
  foreignKeys: ForeignKey[]
  /** By `schema.name`: every overload. */
  functions: Map<string, RestFunction[]>
  loadedAt: number
}

/** Runs one catalog query as the role (no claims) and returns its rows as objects. */
export type CatalogQuery = (sql: string, values: unknown[]) => Promise<Record<string, unknown>[]>

const RELKIND: Record<string, Table['kind']> = { r: 'table', v: 'view', m: 'matview', f: 'foreign', p: 'partitioned' }

const TABLES_SQL = `
select c.oid::int8::text as oid, n.nspname as schema, c.relname as name, c.relkind as kind,
       pg_catalog.obj_description(c.oid, 'pg_class') as comment,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') or
         exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                   and pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')) as sel,
       pg_catalog.has_table_privilege(c.oid, 'INSERT') as ins,
       pg_catalog.has_table_privilege(c.oid, 'UPDATE') as upd,
       pg_catalog.has_table_privilege(c.oid, 'DELETE') as del,
       coalesce((select pg_catalog.json_agg(json_build_object(
           'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'typname', t.typname,
           'nullable', not a.attnotnull, 'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
           'generated', a.attgenerated <> '', 'position', a.attnum) order by a.attnum)
         from pg_catalog.pg_attribute a
         join pg_catalog.pg_type t on t.oid = a.atttypid
         left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          and (pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')
               or pg_catalog.has_column_privilege(c.oid, a.attnum, 'INSERT')
               or pg_catalog.has_column_privilege(c.oid, a.attnum, 'UPDATE'))), '[]') as columns,
       coalesce((select pg_catalog.json_agg(json_build_object('type', k.contype, 'columns',
           (select pg_catalog.json_agg(a.attname order by u.ord) from pg_catalog.unnest(k.conkey) with ordinality u(attnum, ord)
              join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = u.attnum)))
         from pg_catalog.pg_constraint k where k.conrelid = c.oid and k.contype in ('p', 'u')), '[]') as keys
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
   and pg_catalog.has_schema_privilege(n.oid, 'USAGE')
   and (pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')
        or exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                     and pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE')))`

const FKS_SQL = `
select k.conname as name, fn.nspname as from_schema, fc.relname as from_table, tn.nspname as to_schema, tc.relname as to_table,
       (select pg_catalog.json_agg(a.attname order by u.ord) from pg_catalog.unnest(k.conkey) with ordinality u(attnum, ord)
          join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum) as from_columns,
       (select pg_catalog.json_agg(a.attname order by u.ord) from pg_catalog.unnest(k.confkey) with ordinality u(attnum, ord)
          join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.attnum) as to_columns
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_class fc on fc.oid = k.conrelid
  join pg_catalog.pg_namespace fn on fn.oid = fc.relnamespace
  join pg_catalog.pg_class tc on tc.oid = k.confrelid
  join pg_catalog.pg_namespace tn on tn.oid = tc.relnamespace
 where k.contype = 'f' and fn.nspname = any($1::text[]) and tn.nspname = any($1::text[])`

const FUNCTIONS_SQL = `
select n.nspname as schema, p.proname as name, p.proretset as returns_set, p.provolatile as volatility,
       pg_catalog.format_type(p.prorettype, null) as return_type, rt.typtype as return_typtype, rt.typrelid::int8::text as return_relid,
       rt.typname as return_typname, pg_catalog.obj_description(p.oid, 'pg_proc') as comment, p.pronargs as nargs,
       p.pronargdefaults as nargdefaults, p.provariadic <> 0 as variadic,
       coalesce(p.proargnames, '{}') as argnames, coalesce(p.proargmodes::text[], '{}') as argmodes,
       (select coalesce(pg_catalog.array_agg(pg_catalog.format_type(t, null) order by o), '{}')
          from pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(t, o)) as argtypes,
       (select coalesce(pg_catalog.array_agg(tt.typname order by o), '{}')
          from pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(t, o)
          join pg_catalog.pg_type tt on tt.oid = u.t) as argtypnames,
       coalesce((select pg_catalog.json_agg(json_build_object(
           'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'typname', t.typname,
           'nullable', not a.attnotnull, 'default', null, 'generated', false, 'position', a.attnum) order by a.attnum)
         from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid
        where a.attrelid = rt.typrelid and rt.typrelid <> 0 and a.attnum > 0 and not a.attisdropped), '[]') as rel_columns
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
 where n.nspname = any($1::text[]) and p.prokind = 'f'
   and pg_catalog.has_schema_privilege(n.oid, 'USAGE')
   and pg_catalog.has_function_privilege(p.oid, 'EXECUTE')`

/** Reads the catalog of `schemas` as the role `query` runs as. */
export async function loadSchemaCache(query: CatalogQuery, schemas: readonly string[]): Promise<SchemaCache> {
  const [tables, fks, fns] = [
    await query(TABLES_SQL, [schemas]),
    await query(FKS_SQL, [schemas]),
    await query(FUNCTIONS_SQL, [schemas]),
  ]
  const cache: SchemaCache = { schemas, tables: new Map(), foreignKeys: [], functions: new Map(), loadedAt: Date.now() }
  for (const r of tables) {
    const columnList = (r.columns as Column[]).map((c) => ({ ...c }))
    const keys = r.keys as { type: string; columns: string[] }[]
    const pk = keys.find((k) => k.type === 'p')?.columns ?? []
    const t: Table = {
      oid: r.oid as string,
      schema: r.schema as string,
      name: r.name as string,
      kind: RELKIND[r.kind as string] ?? 'table',
      comment: (r.comment as string | null) ?? null,
      columns: new Map(columnList.map((c) => [c.name, c])),
      columnList,
      pk,
      uniques: keys.map((k) => k.columns),
      select: r.sel === true,
      insert: r.ins === true,
      update: r.upd === true,
      delete: r.del === true,
    }
    cache.tables.set(`${t.schema}.${t.name}`, t)
  }
  for (const r of fks) {
    const fk: ForeignKey = {
      name: r.name as string,
      from: { schema: r.from_schema as string, table: r.from_table as string, columns: r.from_columns as string[] },
      to: { schema: r.to_schema as string, table: r.to_table as string, columns: r.to_columns as string[] },
    }
    // Only relationships between tables this role can see.
    if (cache.tables.has(`${fk.from.schema}.${fk.from.table}`) && cache.tables.has(`${fk.to.schema}.${fk.to.table}`)) cache.foreignKeys.push(fk)
  }
  for (const r of fns) {
    const f = toFunction(r)
    const key = `${f.schema}.${f.name}`
    const list = cache.functions.get(key) ?? []
    list.push(f)
    cache.functions.set(key, list)
  }
  return cache
}

function toFunction(r: Record<string, unknown>): RestFunction {
  const names = r.argnames as string[]
  const modes = r.argmodes as string[]
  const types = r.argtypes as string[]
  const typnames = r.argtypnames as string[]
  const nargs = r.nargs as number
  const ndefaults = r.nargdefaults as number
  const args: FunctionArg[] = []
  const outColumns: Column[] = []
  let inIndex = 0
  let unnamed = 0
  let singleJson = false
  for (let i = 0; i < types.length; i++) {
    const mode = modes[i] ?? 'i'
    const name = names[i] ?? ''
    if (mode === 'o' || mode === 't') {
      outColumns.push({ name, type: types[i]!, typname: typnames[i]!, nullable: true, default: null, generated: false, position: i + 1 })
      continue
    }
    // IN, INOUT, VARIADIC: the last `pronargdefaults` of the IN arguments have defaults.
    const optional = inIndex >= nargs - ndefaults
    inIndex++
    if (mode === 'b') outColumns.push({ name, type: types[i]!, typname: typnames[i]!, nullable: true, default: null, generated: false, position: i + 1 })
    if (name === '') {
      unnamed++
      if (typnames[i] === 'json' || typnames[i] === 'jsonb') singleJson = true
      continue
    }
    args.push({ name, type: types[i]!, optional, variadic: mode === 'v' })
  }
  const typtype = r.return_typtype as string
  const relColumns = r.rel_columns as Column[]
  const returnKind: RestFunction['returnKind'] =
    r.return_typname === 'void' ? 'void'
      : outColumns.length > 1 || (typtype === 'c' && relColumns.length > 0) || (r.return_typname === 'record' && outColumns.length > 0) ? 'composite'
        : 'scalar'
  return {
    schema: r.schema as string,
    name: r.name as string,
    args,
    unnamedArgs: unnamed,
    singleJsonArg: singleJson && unnamed === 1 && args.length === 0,
    returnsSet: r.returns_set === true,
    returnType: r.return_type as string,
    returnRelid: r.return_relid as string,
    returnKind,
    columns: outColumns.length > 1 || (outColumns.length === 1 && r.return_typname === 'record') ? outColumns : relColumns,
    volatility: r.volatility === 'i' ? 'immutable' : r.volatility === 's' ? 'stable' : 'volatile',
    comment: (r.comment as string | null) ?? null,
  }
}

/**
 * The caches of one gateway: one per (database, role, schemas), loaded on first use, reloaded (coalesced)
 * when `invalidate(database)` is called, i.e. on `NOTIFY pgrst` or the setup's DDL event trigger.
 */
export class SchemaCaches {
  readonly #load: (database: string, role: string) => CatalogQueryRunner
  readonly #schemas: readonly string[]
  readonly #entries = new Map<string, { current: SchemaCache | undefined; loader: Coalesced<SchemaCache>; database: string }>()

  /** `connect(database, role)` gives a way to run catalog queries as that role. */
  constructor(connect: (database: string, role: string) => CatalogQueryRunner, schemas: readonly string[]) {
    this.#load = connect
    this.#schemas = schemas
  }

  get schemas(): readonly string[] {
    return this.#schemas
  }

  /** The cache of `role` in `database`: the last good one, or the first load (waited for). */
  async get(database: string, role: string): Promise<SchemaCache> {
    const key = `${database}\u0000${role}`
    let entry = this.#entries.get(key)
    if (!entry) {
      const runner = this.#load(database, role)
      const e: { current: SchemaCache | undefined; loader: Coalesced<SchemaCache>; database: string } = {
        current: undefined,
        database,
        loader: coalesce(async () => {
          const cache = await runner((q) => loadSchemaCache(q, this.#schemas))
          e.current = cache
          return cache
        }),
      }
      entry = e
      this.#entries.set(key, e)
    }
    if (entry.current) return entry.current
    try {
      return await entry.loader.trigger()
    } catch (err) {
      // A failed first load is not remembered: the next request tries again.
      if (!entry.current) this.#entries.delete(key)
      throw err
    }
  }

  /** Reloads every loaded cache of `database` (coalesced per role); resolves when they are reloaded. */
  async invalidate(database: string): Promise<void> {
    const reloads: Promise<unknown>[] = []
    for (const e of this.#entries.values()) {
      if (e.database === database) reloads.push(e.loader.trigger().catch(() => undefined))
    }
    await Promise.all(reloads)
  }

  /** Reload runs started so far, over all roles (for tests: a NOTIFY flood must not mean a reload each). */
  get reloads(): number {
    let n = 0
    for (const e of this.#entries.values()) n += e.loader.runs
    return n
  }
}

/** Runs `fn` with a catalog query function bound to one role connection. */
export type CatalogQueryRunner = <T>(fn: (query: CatalogQuery) => Promise<T>) => Promise<T>
