/**
 * Builds the one SQL statement of a Data API request, as PostgREST does: the rows, their embeds (LATERAL
 * joins) and the JSON body are all made inside Postgres (`json_agg`, `row_to_json`), so a large result
 * never passes row by row through JavaScript.
 *
 * Two rules hold for every byte written here:
 * - identifiers come only from the schema cache (a name the cache does not have is a PGRST error, never
 *   SQL), and are always double-quoted by {@link ident};
 * - every value from the request is a bind parameter (`$n`, unknown-typed, so Postgres infers its type
 *   from the column). The only request text written as SQL is a cast's type name, which must match
 *   `^[a-z_][a-z0-9_]*(\[\])?$`: one word, no quote, no space, no punctuation.
 *
 * Every statement answers one row: `total` (a count or null), `page` (rows in the body), `body` (the JSON or
 * CSV text), and for writes `inserted` (rows an upsert inserted) and `location` (the PK query of one row).
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'
import type { Condition, Field, Filter, OrderTerm, ParsedQuery, SelectItem } from './parse-query.js'
import { IS_VALUES } from './parse-query.js'
import type { Column, ForeignKey, RestFunction, SchemaCache, Table } from './schema-cache.js'
import type { MediaType, Preferences } from './headers.js'

/** Quotes an identifier (doubling any `"`). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}

/** Bind parameters of one statement. */
export class Params {
  readonly values: (string | null)[] = []
  add(v: string | null): string {
    this.values.push(v)
    return `$${this.values.length}`
  }
}

export interface Statement {
  text: string
  values: (string | null)[]
}

/** A relation rows come from: a table or view, or a function's result (its columns). */
interface Source {
  /** The table a row type belongs to (relationships and embeds); undefined for a function's own columns. */
  table: Table | undefined
  /** Display name in errors. */
  name: string
  columns: Map<string, Column>
  columnList: Column[]
}

type Relationship =
  | { kind: 'm2o' | 'o2m'; fk: ForeignKey; target: Table; toOne: boolean }
  | { kind: 'm2m'; junction: Table; fkSource: ForeignKey; fkTarget: ForeignKey; target: Table; toOne: false }

interface BuildOptions {
  cache: SchemaCache
  schema: string
  query: ParsedQuery
  /** The most rows the root level returns. */
  maxRows: number | undefined
  /**
   * The longest body, bytes: a longer one is not sent by Postgres at all (the row says how long it was), so
   * a huge result costs no transfer and no buffering in the gateway. Default: no cap in SQL.
   */
  maxBodyBytes?: number | undefined
}

/** Wraps a read's statement so that a body past the cap stays in Postgres: (total, page, body|null, null, null, size). */
function capRead(b: Builder, text: string, cap: number | undefined): string {
  if (cap === undefined) return text
  const n = b.params.add(String(cap))
  return `select _r.total, _r.page, case when pg_catalog.octet_length(_r.body) <= ${n}::int8 then _r.body end as body, null as inserted, null as location, ` +
    `pg_catalog.octet_length(_r.body)::text as size from (${text}) _r`
}

/** What one level's SELECT produces. */
interface LevelSql {
  sql: string
  /** Output column names, in order. */
  outputs: string[]
}

class Builder {
  readonly params = new Params()
  readonly #o: BuildOptions
  #aliases = 0
  readonly #usedLevels = new Set<string>([''])

  constructor(o: BuildOptions) {
    this.#o = o
  }

  alias(): string {
    return `pgrst_${this.#aliases++}`
  }

  table(name: string): Table {
    const t = this.#o.cache.tables.get(`${this.#o.schema}.${name}`)
    if (!t) {
      const near = [...this.#o.cache.tables.values()].find((x) => x.schema === this.#o.schema && similar(x.name, name))
      throw new PgAuthorizeError('ERR_REST_NO_TABLE', `Could not find the table '${this.#o.schema}.${name.slice(0, 63)}' in the schema cache`, near ? { hint: `Perhaps you meant the table '${near.schema}.${near.name}'` } : {})
    }
    return t
  }

  /** Checks that every `path.param` names an embed of the request. */
  checkLevels(): void {
    for (const path of this.#o.query.levels.keys()) {
      if (!this.#usedLevels.has(path)) {
        const last = path.split('.').pop()!
        throw new PgAuthorizeError('ERR_REST_NOT_EMBEDDED', `'${last.slice(0, 63)}' is not an embedded resource in this request`, { hint: `Verify that '${last.slice(0, 63)}' is included in the 'select' query parameter.` })
      }
    }
  }

  column(src: Source, name: string): Column {
    const c = src.columns.get(name)
    if (!c) throw new PgAuthorizeError('ERR_REST_UNDEFINED_COLUMN', `column ${src.name}.${name.slice(0, 63)} does not exist`)
    return c
  }

  /** `"alias"."col"` followed by its JSON path, the path keys as parameters. */
  fieldSql(src: Source, alias: string, field: Field): string {
    const col = this.column(src, field.name)
    let sql = `${ident(alias)}.${ident(col.name)}`
    if (field.path.length > 0) {
      // Composite and array columns go through to_jsonb first (PostgREST does the same).
      if (col.typname !== 'json' && col.typname !== 'jsonb') sql = `pg_catalog.to_jsonb(${sql})`
      for (const step of field.path) {
        sql = step.index ? `(${sql} ${step.arrow} (${this.params.add(step.key)})::int)` : `(${sql} ${step.arrow} ${this.params.add(step.key)}::text)`
      }
    }
    return sql
  }

  /** One level: `select <outputs> from <from> as "alias" <joins> where <conditions> order by ... limit ...`. */
  level(src: Source, from: string, alias: string, select: SelectItem[], path: string, extraWhere: string[], root: boolean, paging: boolean): LevelSql {
    const lvl = this.#o.query.levels.get(path)
    const outputs: string[] = []
    const projections: string[] = []
    const joins: string[] = []
    const embedAliases = new Map<string, { alias: string; toOne: boolean; outputs: string[] }>()
    const where = [...extraWhere]
    const out = (expr: string, name: string) => {
      projections.push(`${expr} as ${ident(name)}`)
      outputs.push(name)
    }
    for (const item of select) {
      if (item.kind === 'star') {
        for (const c of src.columnList) out(`${ident(alias)}.${ident(c.name)}`, c.name)
      } else if (item.kind === 'column') {
        let expr = this.fieldSql(src, alias, item.field)
        if (item.cast) expr = `cast(${expr} as ${item.cast})`
        const last = item.field.path.at(-1)
        // A JSON path's output name is its last key: request text, so bounded like an alias.
        const name = item.alias ?? (last ? last.key : item.field.name)
        if (Buffer.byteLength(name) > 63) throw new PgAuthorizeError('ERR_REST_PARSE', `the output name "${name.slice(0, 20)}..." is longer than 63 bytes`, { hint: 'give it a shorter alias' })
        out(expr, name)
      } else {
        if (!src.table) throw new PgAuthorizeError('ERR_REST_NO_RELATIONSHIP', `Could not find a relationship between '${src.name}' and '${item.name.slice(0, 63)}' in the schema cache`)
        const rel = this.relationship(src.table, item.name, item.hints)
        const label = item.alias ?? item.name
        const childPath = path === '' ? label : `${path}.${label}`
        this.#usedLevels.add(childPath)
        const ca = this.alias()
        const ea = `${ca}_e`
        const target: Source = { table: rel.target, name: rel.target.name, columns: rel.target.columns, columnList: rel.target.columnList }
        let childFrom = `${ident(rel.target.schema)}.${ident(rel.target.name)}`
        const childWhere: string[] = []
        if (rel.kind === 'm2o') {
          childWhere.push(...rel.fk.to.columns.map((c, i) => `${ident(ca)}.${ident(c)} = ${ident(alias)}.${ident(rel.fk.from.columns[i]!)}`))
        } else if (rel.kind === 'o2m') {
          childWhere.push(...rel.fk.from.columns.map((c, i) => `${ident(ca)}.${ident(c)} = ${ident(alias)}.${ident(rel.fk.to.columns[i]!)}`))
        } else if (rel.kind === 'm2m') {
          const ja = `${ca}_j`
          childFrom += ` as ${ident(ca)} join ${ident(rel.junction.schema)}.${ident(rel.junction.name)} as ${ident(ja)} on ` +
            rel.fkTarget.from.columns.map((c, i) => `${ident(ja)}.${ident(c)} = ${ident(ca)}.${ident(rel.fkTarget.to.columns[i]!)}`).join(' and ')
          childWhere.push(...rel.fkSource.from.columns.map((c, i) => `${ident(ja)}.${ident(c)} = ${ident(alias)}.${ident(rel.fkSource.to.columns[i]!)}`))
        }
        const child = this.level(target, childFrom, ca, item.select.length ? item.select : [], childPath, childWhere, false, true)
        const joinType = item.inner ? 'inner join lateral' : 'left join lateral'
        if (rel.toOne) {
          joins.push(`${joinType} (${child.sql}) as ${ident(ea)} on true`)
          if (item.spread) for (const o of child.outputs) out(`${ident(ea)}.${ident(o)}`, o)
          else if (item.select.length > 0) out(`case when ${ident(ea)} is null then null else pg_catalog.row_to_json(${ident(ea)}.*) end`, label)
          embedAliases.set(label, { alias: ea, toOne: true, outputs: child.outputs })
        } else {
          if (item.spread) throw new PgAuthorizeError('ERR_REST_NOT_IMPLEMENTED', 'Feature not implemented', { detail: 'spreading a to-many embed is not supported' })
          const agg = `pg_catalog.json_agg(${ident(ca + '_a')})`
          joins.push(item.inner
            ? `inner join lateral (select ${agg} as body from (${child.sql}) as ${ident(ca + '_a')}) as ${ident(ea)} on ${ident(ea)}.body is not null`
            : `left join lateral (select coalesce(${agg}, '[]') as body from (${child.sql}) as ${ident(ca + '_a')}) as ${ident(ea)} on true`)
          if (item.select.length > 0) out(`${ident(ea)}.body`, label)
          embedAliases.set(label, { alias: ea, toOne: false, outputs: [] })
        }
      }
    }
    for (const cond of lvl?.conditions ?? []) where.push(this.condition(src, alias, cond))
    let sql = `select ${projections.length ? projections.join(', ') : ''} from ${from.includes(' as ') ? from : `${from} as ${ident(alias)}`}`
    if (joins.length) sql += ' ' + joins.join(' ')
    if (where.length) sql += ` where ${where.join(' and ')}`
    if (paging) {
      const order = lvl?.order
      if (order && order.length) sql += ` order by ${order.map((t) => this.orderTerm(src, alias, t, embedAliases)).join(', ')}`
      let limit = lvl?.limit
      if (root && this.#o.maxRows !== undefined) limit = limit === undefined ? this.#o.maxRows : Math.min(limit, this.#o.maxRows)
      if (limit !== undefined) sql += ` limit ${this.params.add(String(limit))}::int8`
      if (lvl?.offset) sql += ` offset ${this.params.add(String(lvl.offset))}::int8`
    }
    return { sql, outputs }
  }

  orderTerm(src: Source, alias: string, t: OrderTerm, embeds: Map<string, { alias: string; toOne: boolean; outputs: string[] }>): string {
    let expr: string
    if (t.relation !== undefined) {
      const e = embeds.get(t.relation)
      if (!e) throw new PgAuthorizeError('ERR_REST_NOT_EMBEDDED', `'${t.relation.slice(0, 63)}' is not an embedded resource in this request`)
      if (!e.toOne) throw new PgAuthorizeError('ERR_REST_ORDER_EMBED', `A related order on '${t.relation.slice(0, 63)}' is not possible`, { detail: 'only to-one embeds can be ordered by' })
      if (!e.outputs.includes(t.field.name) || t.field.path.length) throw new PgAuthorizeError('ERR_REST_UNDEFINED_COLUMN', `column ${t.relation.slice(0, 63)}.${t.field.name.slice(0, 63)} does not exist`)
      expr = `${ident(e.alias)}.${ident(t.field.name)}`
    } else {
      expr = this.fieldSql(src, alias, t.field)
    }
    return `${expr}${t.direction ? ` ${t.direction}` : ''}${t.nulls ? ` nulls ${t.nulls}` : ''}`
  }

  condition(src: Source, alias: string, cond: Condition): string {
    if (cond.kind === 'logic') {
      const inner = cond.children.map((c) => this.condition(src, alias, c)).join(cond.op === 'and' ? ' and ' : ' or ')
      return `${cond.negate ? 'not ' : ''}(${inner || (cond.op === 'and' ? 'true' : 'false')})`
    }
    return this.filter(src, alias, cond)
  }

  filter(src: Source, alias: string, f: Filter): string {
    const col = this.column(src, f.field.name)
    const lhs = this.fieldSql(src, alias, f.field)
    const value = f.value
    let sql: string
    const scalar = (): string => {
      if (typeof value !== 'string') throw new PgAuthorizeError('ERR_REST_PARSE', `"failed to parse filter (${f.op})"`)
      return value
    }
    switch (f.op) {
      case 'in': {
        const list = Array.isArray(value) ? value : []
        sql = `${lhs} = any(${this.params.add(arrayLiteral(list))})`
        break
      }
      case 'is': {
        const v = scalar().toLowerCase()
        if (!IS_VALUES.has(v)) throw new PgAuthorizeError('ERR_REST_PARSE', `"failed to parse filter (is.${scalar().slice(0, 20)})"`, { detail: 'expecting null, not_null, true, false or unknown' })
        sql = `${lhs} is ${v === 'not_null' ? 'not null' : v}`
        break
      }
      case 'fts':
      case 'plfts':
      case 'phfts':
      case 'wfts': {
        const fn = { fts: 'to_tsquery', plfts: 'plainto_tsquery', phfts: 'phraseto_tsquery', wfts: 'websearch_to_tsquery' }[f.op]
        const lang = f.language === undefined ? '' : `${this.params.add(f.language)}::regconfig, `
        const doc = col.typname === 'tsvector' && f.field.path.length === 0 ? lhs : `pg_catalog.to_tsvector(${lang}${lhs})`
        sql = `${doc} @@ pg_catalog.${fn}(${lang}${this.params.add(scalar())})`
        break
      }
      default: {
        const op = BINARY[f.op]!
        let v = scalar()
        if (f.op === 'like' || f.op === 'ilike') v = v.replace(/\*/g, '%')
        if (f.quantifier) {
          if ((f.op === 'like' || f.op === 'ilike')) v = v.replace(/\*/g, '%')
          sql = `${lhs} ${op} ${f.quantifier}(${this.params.add(v)})`
        } else {
          sql = `${lhs} ${op} ${this.params.add(v)}`
        }
      }
    }
    return f.negate ? `not (${sql})` : sql
  }

  /** The one relationship `name` (with `!hint`s) names from `from`. */
  relationship(from: Table, name: string, hints: string[]): Relationship {
    const { cache } = this.#o
    const target = cache.tables.get(`${from.schema}.${name}`)
    const found: Relationship[] = []
    if (target) {
      for (const fk of cache.foreignKeys) {
        if (same(fk.from, from) && same(fk.to, target)) found.push({ kind: 'm2o', fk, target, toOne: true })
        if (same(fk.from, target) && same(fk.to, from)) found.push({ kind: 'o2m', fk, target, toOne: isUnique(target, fk.from.columns) })
      }
      // Many-to-many: a junction whose FKs to both tables all lie in its primary key.
      for (const j of cache.tables.values()) {
        if (j === from || j === target || j.pk.length === 0) continue
        for (const a of cache.foreignKeys) {
          if (!same(a.from, j) || !same(a.to, from) || !a.from.columns.every((c) => j.pk.includes(c))) continue
          for (const b of cache.foreignKeys) {
            if (b === a || !same(b.from, j) || !same(b.to, target) || !b.from.columns.every((c) => j.pk.includes(c))) continue
            found.push({ kind: 'm2m', junction: j, fkSource: a, fkTarget: b, target, toOne: false })
          }
        }
      }
    }
    const matching = hints.length === 0 ? found : found.filter((r) => hints.every((h) => hintMatches(r, h)))
    if (matching.length === 1) return matching[0]!
    if (matching.length === 0) {
      throw new PgAuthorizeError('ERR_REST_NO_RELATIONSHIP', `Could not find a relationship between '${from.name}' and '${name.slice(0, 63)}' in the schema cache`, {
        detail: `Searched for a foreign key relationship between '${from.name}' and '${name.slice(0, 63)}'${hints.length ? ` using the hint '${hints.join('!').slice(0, 63)}'` : ''} in the schema '${from.schema}', but no matches were found.`,
      })
    }
    throw new PgAuthorizeError('ERR_REST_AMBIGUOUS_EMBED', `Could not embed because more than one relationship was found for '${from.name}' and '${name.slice(0, 63)}'`, {
      detail: JSON.stringify(matching.map((r) => ({
        cardinality: r.kind === 'm2m' ? 'many-to-many' : r.toOne ? (r.kind === 'm2o' ? 'many-to-one' : 'one-to-one') : 'one-to-many',
        relationship: r.kind === 'm2m' ? `${r.junction.name} using ${r.fkSource.name} and ${r.fkTarget.name}` : `${r.fk.name} using ${r.fk.from.table}(${r.fk.from.columns.join(', ')}) and ${r.fk.to.table}(${r.fk.to.columns.join(', ')})`,
        embedding: `${from.name} with ${name}`,
      }))),
      hint: `Try changing '${name.slice(0, 63)}' to one of the following: ${matching.map((r) => `'${name}!${r.kind === 'm2m' ? r.junction.name : r.fk.name}'`).join(', ')}. Find the desired relationship in the 'details' key.`,
    })
  }
}

const BINARY: Record<string, string> = {
  eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', like: 'like', ilike: 'ilike', match: '~', imatch: '~*',
  isdistinct: 'is distinct from', cs: '@>', cd: '<@', ov: '&&', sl: '<<', sr: '>>', nxr: '&<', nxl: '&>', adj: '-|-',
}

function same(side: { schema: string; table: string }, t: Table): boolean {
  return side.schema === t.schema && side.table === t.name
}

function isUnique(t: Table, columns: string[]): boolean {
  return t.uniques.some((u) => u.length === columns.length && u.every((c) => columns.includes(c)))
}

function hintMatches(r: Relationship, hint: string): boolean {
  if (r.kind === 'm2m') return r.junction.name === hint || r.fkSource.name === hint || r.fkTarget.name === hint
  return r.fk.name === hint || (r.fk.from.columns.length === 1 && r.fk.from.columns[0] === hint) || (r.fk.to.columns.length === 1 && r.fk.to.columns[0] === hint)
}

function similar(a: string, b: string): boolean {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  return x !== y && (x.startsWith(y) || y.startsWith(x) || x.replace(/s$/, '') === y.replace(/s$/, ''))
}

/** `{"a","b"}`: a Postgres array literal of `in`'s values, each quoted with `\` and `"` escaped. */
export function arrayLiteral(values: string[]): string {
  return '{' + values.map((v) => '"' + v.replace(/[\\"]/g, (c) => '\\' + c) + '"').join(',') + '}'
}

function tableSource(t: Table): Source {
  return { table: t, name: t.name, columns: t.columns, columnList: t.columnList }
}

/** How the body is rendered from the rows of `_s`. */
function bodySql(media: MediaType | 'none', outputs: string[], stripNulls: boolean): string {
  if (media === 'none') return `''`
  if (media === 'csv') {
    const header = outputs.map(csvField).join(',')
    const row = outputs.length
      ? `pg_catalog.concat_ws(',', ${outputs.map((o) => {
        const v = `_s.${ident(o)}::text`
        return `case when _s.${ident(o)} is null then '' when ${v} ~ '[",\\r\\n]' then '"' || pg_catalog.replace(${v}, '"', '""') || '"' else ${v} end`
      }).join(', ')})`
      : `''`
    return `${literal(header)} || coalesce(E'\\n' || pg_catalog.string_agg(${row}, E'\\n'), '')`
  }
  const agg = stripNulls ? `pg_catalog.json_strip_nulls(pg_catalog.json_agg(_s))` : `pg_catalog.json_agg(_s)`
  if (media === 'object') return `coalesce((${agg} -> 0)::text, 'null')`
  return `coalesce(${agg}::text, '[]')`
}

/** A string constant of text the builder made itself (never request text: only cached column names). */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`
}

function csvField(name: string): string {
  return /[",\r\n]/.test(name) ? `"${name.replace(/"/g, '""')}"` : name
}

export interface ReadPlan {
  statement: Statement
}

/** GET/HEAD on a table or view. */
export function buildRead(o: BuildOptions & { table: string; media: MediaType | 'none'; stripNulls: boolean; count: boolean; range: { offset: number; limit: number | undefined } | undefined }): Statement {
  const b = new Builder(o)
  const t = b.table(o.table)
  applyRange(o.query, o.range)
  const select = o.query.select
  const lvl = b.level(tableSource(t), `${ident(t.schema)}.${ident(t.name)}`, 'pgrst_t', select, '', [], true, true)
  b.checkLevels()
  let total = 'null'
  if (o.count) {
    // The count: the same rows without order and paging (its filters' parameters appended to the same list).
    const countLevel = b.level(tableSource(t), `${ident(t.schema)}.${ident(t.name)}`, 'pgrst_t', select, '', [], true, false)
    total = `(select pg_catalog.count(*) from (${countLevel.sql}) _c)::text`
  }
  const text = `select ${total} as total, pg_catalog.count(_s.*)::text as page, ${bodySql(o.media, lvl.outputs, o.stripNulls)} as body from (${lvl.sql}) _s`
  return { text: capRead(b, text, o.maxBodyBytes), values: b.params.values }
}

/** A `Range` header narrows the root's limit/offset (intersected with the query's). */
function applyRange(q: ParsedQuery, range: { offset: number; limit: number | undefined } | undefined): void {
  if (!range) return
  let root = q.levels.get('')
  if (!root) {
    root = { conditions: [], order: undefined, limit: undefined, offset: undefined }
    q.levels.set('', root)
  }
  const offset = (root.offset ?? 0) + range.offset
  let limit = root.limit
  if (range.limit !== undefined) limit = limit === undefined ? range.limit : Math.min(Math.max(0, limit - range.offset), range.limit)
  root.offset = offset
  root.limit = limit
}

export type WriteKind = 'insert' | 'update' | 'delete' | 'upsert'

export interface WriteOptions extends BuildOptions {
  table: string
  kind: WriteKind
  /** The body's rows (already parsed and checked to be objects), for insert/upsert/update. */
  body?: string
  /** Columns written (from `columns=` or the body's keys). */
  columns?: string[]
  prefer: Preferences
  media: MediaType | 'none'
  stripNulls: boolean
  /** `merge-duplicates` / `ignore-duplicates` on these columns (default the PK). */
  onConflict?: string[] | undefined
  /** A PUT: update everything on conflict with the PK. */
  put?: boolean
}

/** POST, PUT, PATCH and DELETE on a table or view. */
export function buildWrite(o: WriteOptions): Statement {
  const b = new Builder(o)
  const t = b.table(o.table)
  const src = tableSource(t)
  const target = `${ident(t.schema)}.${ident(t.name)}`
  const rowType = `null::${target}`
  const cols = (o.columns ?? []).map((c) => {
    const col = t.columns.get(c)
    if (!col) throw new PgAuthorizeError('ERR_REST_NO_COLUMN', `Could not find the '${c.slice(0, 63)}' column of '${t.name}' in the schema cache`)
    return col
  })
  const root = o.query.levels.get('')
  const where = (alias: string) => (root?.conditions ?? []).map((c) => b.condition(src, alias, c))
  const upsert = o.kind === 'upsert'
  const returning = `returning ${ident('pgrst_t')}.*` + (upsert ? `, (${ident('pgrst_t')}.xmax = 0) as pgrst_inserted` : '')
  let dml: string
  if (o.kind === 'insert' || o.kind === 'upsert') {
    const list = cols.map((c) => ident(c.name)).join(', ')
    // No columns (`{}`): one row of defaults, and no body parameter (an unused one has no type: 42P18).
    const bodyParam = cols.length ? b.params.add(o.body ?? '[]') : ''
    let rows: string
    if (o.prefer.missing === 'default' && cols.some((c) => c.default !== null)) {
      // Missing keys take the column's default: the defaults' own SQL (catalog text, written by the owner).
      const defaults = cols.filter((c) => c.default !== null).map((c) => `${literal(c.name)}, ${c.default}`).join(', ')
      rows = `select ${cols.map((c) => `_r.${ident(c.name)}`).join(', ')} from pg_catalog.jsonb_array_elements(${bodyParam}::jsonb) _e, ` +
        `lateral pg_catalog.jsonb_populate_record(${rowType}, pg_catalog.jsonb_build_object(${defaults}) || _e) _r`
    } else {
      rows = `select ${cols.map((c) => `_r.${ident(c.name)}`).join(', ')} from pg_catalog.json_populate_recordset(${rowType}, ${bodyParam}::json) _r`
    }
    dml = cols.length ? `insert into ${target} as ${ident('pgrst_t')} (${list}) ${rows}` : `insert into ${target} as ${ident('pgrst_t')} default values`
    if (upsert) {
      const on = o.onConflict ?? t.pk
      if (on.length === 0) throw new PgAuthorizeError('ERR_REST_BODY', `an upsert on '${t.name}' needs on_conflict (the table has no primary key)`)
      const conflict = on.map((c) => ident(b.column(src, c).name)).join(', ')
      if (o.prefer.resolution === 'ignore-duplicates') dml += ` on conflict (${conflict}) do nothing`
      else {
        const set = cols.filter((c) => !on.includes(c.name))
        dml += set.length
          ? ` on conflict (${conflict}) do update set ${set.map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`).join(', ')}`
          : ` on conflict (${conflict}) do update set ${ident(on[0]!)} = excluded.${ident(on[0]!)}`
      }
      if (o.put) dml += ` where ${where('pgrst_t').join(' and ') || 'true'}`
    }
  } else if (o.kind === 'update') {
    const bodyParam = b.params.add(o.body ?? '{}')
    const set = cols.length === 1
      ? `${ident(cols[0]!.name)} = (select _r.${ident(cols[0]!.name)} from pg_catalog.json_populate_record(${rowType}, ${bodyParam}::json) _r)`
      : `(${cols.map((c) => ident(c.name)).join(', ')}) = (select ${cols.map((c) => `_r.${ident(c.name)}`).join(', ')} from pg_catalog.json_populate_record(${rowType}, ${bodyParam}::json) _r)`
    dml = `update ${target} as ${ident('pgrst_t')} set ${set}${limitedWhere(b, o, src, target, where)}`
  } else {
    dml = `delete from ${target} as ${ident('pgrst_t')}${limitedWhere(b, o, src, target, where)}`
  }
  dml += ' ' + returning
  const wantBody = o.prefer.return === 'representation' && o.media !== 'none'
  let body = `''`
  let outputs: string[] = []
  let lvlSql = ''
  if (wantBody) {
    const lvl = b.level(src, 'pgrst_source', 'pgrst_t', o.query.select, '', [], false, false)
    outputs = lvl.outputs
    lvlSql = lvl.sql
    body = bodySql(o.media, outputs, o.stripNulls)
  }
  b.checkLevels()
  const location = t.pk.length && o.prefer.return === 'headers-only'
    ? `(select pg_catalog.string_agg(${t.pk.map((c) => `${literal(c)} || '=eq.' || coalesce(s.${ident(c)}::text, '')`).join(` || '&' || `)}, '') from (select * from pgrst_source limit 1) s)`
    : 'null'
  const inserted = upsert ? `(select pg_catalog.count(*) from pgrst_source where pgrst_inserted)::text` : 'null'
  const cap = o.maxBodyBytes === undefined ? undefined : b.params.add(String(o.maxBodyBytes))
  const bodyOut = cap === undefined ? '_b.b' : `case when pg_catalog.octet_length(_b.b) <= ${cap}::int8 then _b.b end`
  const text = `with pgrst_source as (${dml}) select null as total, (select pg_catalog.count(*) from pgrst_source)::text as page, ` +
    `${bodyOut} as body, ${inserted} as inserted, ${location} as location, pg_catalog.octet_length(_b.b)::text as size ` +
    `from (${wantBody ? `select ${body} as b from (${lvlSql}) _s` : `select ''::text as b`}) _b`
  return { text, values: b.params.values }
}

/** PATCH/DELETE's WHERE, with `limit` (and `order`) through the rows' ctid as PostgREST does. */
function limitedWhere(b: Builder, o: WriteOptions, src: Source, target: string, where: (alias: string) => string[]): string {
  const root = o.query.levels.get('')
  const w = where('pgrst_t')
  if (root?.limit === undefined) return w.length ? ` where ${w.join(' and ')}` : ''
  const inner = where('pgrst_l')
  const order = root.order?.length ? ` order by ${root.order.map((t) => b.orderTerm(src, 'pgrst_l', t, new Map())).join(', ')}` : ''
  const sub = `select pgrst_l.ctid from ${target} as pgrst_l${inner.length ? ` where ${inner.join(' and ')}` : ''}${order} limit ${b.params.add(String(root.limit))}::int8` +
    (root.offset ? ` offset ${b.params.add(String(root.offset))}::int8` : '')
  return ` where ${ident('pgrst_t')}.ctid = any(array(${sub}))`
}

export interface RpcOptions extends BuildOptions {
  fn: RestFunction
  /** Arguments as a JSON object text (or the whole body for a single unnamed json parameter). */
  args: string
  argNames: string[]
  media: MediaType | 'none'
  stripNulls: boolean
  count: boolean
  range: { offset: number; limit: number | undefined } | undefined
}

/** A function call: `POST /rpc/fn` or `GET /rpc/fn`. */
export function buildRpc(o: RpcOptions): Statement {
  const b = new Builder(o)
  const f = o.fn
  const fn = `${ident(f.schema)}.${ident(f.name)}`
  let call: string
  let from = ''
  if (f.singleJsonArg) {
    call = `${fn}(${b.params.add(o.args)}::json)`
  } else if (o.argNames.length === 0) {
    call = `${fn}()`
  } else {
    const used = f.args.filter((a) => o.argNames.includes(a.name))
    from = `pg_catalog.json_to_record(${b.params.add(o.args)}::json) as _a(${used.map((a) => `${ident(a.name)} ${a.type}`).join(', ')})`
    call = `${fn}(${used.map((a) => `${a.variadic ? 'variadic ' : ''}${ident(a.name)} => _a.${ident(a.name)}`).join(', ')})`
  }
  if (f.returnKind === 'void') {
    return { text: `select null as total, '1' as page, (select '' from (select ${call}${from ? ` from ${from}` : ''}) _v) as body, null as inserted, null as location, '0' as size`, values: b.params.values }
  }
  if (f.returnKind === 'scalar' && !f.returnsSet) {
    const body = o.media === 'none' ? `''` : `coalesce(pg_catalog.to_json(_s.v)::text, 'null')`
    return { text: capRead(b, `select null as total, '1' as page, ${body} as body from (select ${call} as v${from ? ` from ${from}` : ''}) _s`, o.maxBodyBytes), values: b.params.values }
  }
  // A set or composite result: a relation, with select=, filters, order and paging (and embeds when it is a table's row type).
  const table = [...o.cache.tables.values()].find((t) => t.oid === f.returnRelid)
  const columns = f.returnKind === 'scalar'
    ? [{ name: f.name, type: f.returnType, typname: f.returnType, nullable: true, default: null, generated: false, position: 1 }]
    : table ? table.columnList : f.columns
  const src: Source = { table, name: f.name, columns: new Map(columns.map((c) => [c.name, c])), columnList: columns }
  const callFrom = `${from ? `${from} cross join lateral ` : ''}${call} as ${ident('pgrst_t')}${f.returnKind === 'scalar' ? `(${ident(f.name)})` : ''}`
  applyRange(o.query, o.range)
  const lvl = b.level(src, callFrom, 'pgrst_t', o.query.select, '', [], true, true)
  b.checkLevels()
  let total = 'null'
  if (o.count) {
    const countLevel = b.level(src, callFrom, 'pgrst_t', o.query.select, '', [], true, false)
    total = `(select pg_catalog.count(*) from (${countLevel.sql}) _c)::text`
  }
  let body = bodySql(o.media, lvl.outputs, o.stripNulls)
  // A scalar set answers an array of values (not of objects), a single composite one object.
  if (f.returnKind === 'scalar' && (o.media === 'json' || o.media === 'object')) {
    const only = lvl.outputs[0] ?? f.name
    body = o.media === 'object' ? `coalesce((pg_catalog.json_agg(_s.${ident(only)}) -> 0)::text, 'null')` : `coalesce(pg_catalog.json_agg(_s.${ident(only)})::text, '[]')`
  } else if (!f.returnsSet && o.media === 'json') {
    body = `coalesce((pg_catalog.json_agg(_s) -> 0)::text, 'null')`
  }
  return { text: capRead(b, `select ${total} as total, pg_catalog.count(_s.*)::text as page, ${body} as body from (${lvl.sql}) _s`, o.maxBodyBytes), values: b.params.values }
}
