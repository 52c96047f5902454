/**
 * Parses a Data API query string (PostgREST's URL grammar) into a plain tree: `select=`, filters and logic
 * trees, `order=`, `limit`/`offset` (root and per embed), `columns=`, `on_conflict=`.
 *
 * Nothing here knows the schema: names are kept as strings and resolved against the schema cache by the
 * SQL builder, which refuses any it does not know. Values stay strings; they only ever become bind
 * parameters. Sizes are bounded here (property 10): items per list, embedding depth, key and value length.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'

export type JsonStep = { arrow: '->' | '->>'; key: string; index: boolean }

/** A column, possibly followed by a JSON path (`data->a->>b`). */
export interface Field {
  name: string
  path: JsonStep[]
}

export type SelectItem =
  | { kind: 'star' }
  | { kind: 'column'; field: Field; alias: string | undefined; cast: string | undefined }
  | { kind: 'embed'; name: string; alias: string | undefined; hints: string[]; inner: boolean; spread: boolean; select: SelectItem[] }

export const OPERATORS = [
  'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'in', 'is', 'isdistinct',
  'fts', 'plfts', 'phfts', 'wfts', 'cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj',
] as const
export type Operator = (typeof OPERATORS)[number]
const OPERATOR_SET: ReadonlySet<string> = new Set(OPERATORS)
/** Operators that take the `(any)` / `(all)` modifiers. */
export const QUANTIFIABLE: ReadonlySet<string> = new Set(['eq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch'])
const FTS: ReadonlySet<string> = new Set(['fts', 'plfts', 'phfts', 'wfts'])
export const IS_VALUES: ReadonlySet<string> = new Set(['null', 'not_null', 'true', 'false', 'unknown'])

export interface Filter {
  kind: 'filter'
  field: Field
  negate: boolean
  op: Operator
  quantifier: 'any' | 'all' | undefined
  /** Text search configuration of `fts(english)`. */
  language: string | undefined
  /** The value; a list for `in`. */
  value: string | string[]
}

export interface Logic {
  kind: 'logic'
  op: 'and' | 'or'
  negate: boolean
  children: Condition[]
}

export type Condition = Filter | Logic

export interface OrderTerm {
  field: Field
  /** `order=rel(col)`: a column of a to-one embed. */
  relation: string | undefined
  direction: 'asc' | 'desc' | undefined
  nulls: 'first' | 'last' | undefined
}

/** What applies at one level of the tree: the root (`[]`) or an embed, by its path of names or aliases. */
export interface Level {
  conditions: Condition[]
  order: OrderTerm[] | undefined
  limit: number | undefined
  offset: number | undefined
}

export interface ParsedQuery {
  select: SelectItem[]
  /** By embed path joined with '.', '' for the root. */
  levels: Map<string, Level>
  columns: string[] | undefined
  onConflict: string[] | undefined
  /** Parameters that are not filters (candidates for RPC GET arguments), in order. */
  others: [string, string][]
  /** Every parameter, in order (RPC GET decides what is an argument once it knows the function). */
  raw: [string, string][]
}

export interface ParseLimits {
  /** Most items in one list (select, in, or, order, columns). Default 500. */
  maxItems: number
  /** Deepest embedding. Default 8. */
  maxDepth: number
  /** Longest name or value, characters. Default 4096. */
  maxToken: number
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxItems: 500, maxDepth: 8, maxToken: 4096 }

const RESERVED = new Set(['select', 'columns', 'on_conflict', 'order', 'limit', 'offset', 'or', 'and', 'not.or', 'not.and'])

function parseError(message: string, details?: string): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REST_PARSE', message, details === undefined ? {} : { detail: details })
}

/** A cursor over one parameter's text. */
class Cursor {
  i = 0
  readonly s: string
  readonly what: string
  constructor(s: string, what: string) {
    this.s = s
    this.what = what
  }
  get done(): boolean {
    return this.i >= this.s.length
  }
  peek(n = 1): string {
    return this.s.slice(this.i, this.i + n)
  }
  eat(t: string): boolean {
    if (this.s.startsWith(t, this.i)) {
      this.i += t.length
      return true
    }
    return false
  }
  expect(t: string): void {
    if (!this.eat(t)) throw this.fail(`"${t}"`)
  }
  fail(expected: string): PgAuthorizeError {
    const at = this.done ? 'end of input' : `"${this.s.slice(this.i, this.i + 12)}"`
    return parseError(`"failed to parse ${this.what} (${this.s.slice(0, 200)})" (line 1, column ${this.i + 1})`, `unexpected ${at} expecting ${expected}`)
  }
}

/** The rest of a `"quoted"` token after its opening quote: `\\x` escapes x; refused past `limits.maxToken`. */
function readQuoted(c: Cursor, limits: ParseLimits, tooLong: string): string {
  let out = ''
  for (;;) {
    if (c.done) throw c.fail('closing quote')
    const ch = c.s[c.i]!
    if (ch === '\\' && c.i + 1 < c.s.length) {
      out += c.s[c.i + 1]
      c.i += 2
    } else if (ch === '"') {
      c.i++
      return out
    } else {
      out += ch
      c.i++
    }
    if (out.length > limits.maxToken) throw parseError(tooLong)
  }
}

/** A field name: `"quoted"` (with `""`/`\"` escapes) or letters, digits, `_`, `$`, space and `-` (not `->`). */
function readName(c: Cursor, limits: ParseLimits): string {
  if (c.eat('"')) return readQuoted(c, limits, `a name in ${c.what} is longer than ${limits.maxToken} characters`)
  let out = ''
  while (!c.done) {
    const ch = c.s[c.i]!
    if (/[A-Za-z0-9_$ \u0080-\uffff]/.test(ch) || (ch === '-' && c.s[c.i + 1] !== '>')) {
      out += ch
      c.i++
    } else break
  }
  if (out.length > limits.maxToken) throw parseError(`a name in ${c.what} is longer than ${limits.maxToken} characters`)
  out = out.trim()
  if (out === '') throw c.fail('field name')
  return out
}

/** `->key`, `->>key`, `->0` steps after a name. */
function readJsonPath(c: Cursor, limits: ParseLimits): JsonStep[] {
  const path: JsonStep[] = []
  for (;;) {
    let arrow: '->' | '->>'
    if (c.eat('->>')) arrow = '->>'
    else if (c.eat('->')) arrow = '->'
    else return path
    let key = ''
    if (c.peek() === '"') key = readName(c, limits)
    else {
      while (!c.done && !/[(:.,>)]/.test(c.s[c.i]!) && !(c.s[c.i] === '-' && c.s[c.i + 1] === '>')) key += c.s[c.i++]
    }
    if (key === '') throw c.fail('JSON key')
    if (key.length > limits.maxToken) throw parseError(`a JSON key in ${c.what} is too long`)
    path.push({ arrow, key, index: /^-?\d+$/.test(key) })
    if (path.length > 32) throw parseError(`a JSON path in ${c.what} has more than 32 steps`)
  }
}

function readField(c: Cursor, limits: ParseLimits): Field {
  const name = readName(c, limits)
  return { name, path: readJsonPath(c, limits) }
}

/** Parses `select=`. */
export function parseSelect(text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): SelectItem[] {
  const c = new Cursor(text, 'select')
  const items = readItems(c, limits, 0)
  if (!c.done) throw c.fail('"," or end of input')
  return items
}

function readItems(c: Cursor, limits: ParseLimits, depth: number): SelectItem[] {
  if (depth > limits.maxDepth) throw parseError(`select embeds deeper than ${limits.maxDepth} levels`)
  const items: SelectItem[] = []
  if (c.done || c.peek() === ')') return items
  for (;;) {
    items.push(readItem(c, limits, depth))
    if (items.length > limits.maxItems) throw parseError(`select has more than ${limits.maxItems} items`)
    if (!c.eat(',')) return items
  }
}

function readItem(c: Cursor, limits: ParseLimits, depth: number): SelectItem {
  if (c.eat('*')) return { kind: 'star' }
  const spread = c.eat('...')
  let first = readName(c, limits)
  let alias: string | undefined
  // `alias:name`, but not `name::type`.
  if (c.peek() === ':' && c.peek(2) !== '::') {
    c.i++
    alias = checkAlias(first)
    first = readName(c, limits)
  }
  const hints: string[] = []
  let inner = false
  while (c.eat('!')) {
    const h = readName(c, limits)
    if (h === 'inner') inner = true
    else if (h === 'left') inner = false
    else hints.push(h)
  }
  if (c.peek() === '(') {
    c.i++
    const select = readItems(c, limits, depth + 1)
    c.expect(')')
    if (spread && alias !== undefined) throw parseError('a spread embed cannot have an alias')
    if (first === 'count' && hints.length === 0) throw notImplemented('aggregates (count()) are not supported')
    return { kind: 'embed', name: first, alias, hints, inner, spread, select }
  }
  if (spread || hints.length > 0) throw c.fail('"("')
  const path = readJsonPath(c, limits)
  let cast: string | undefined
  if (c.eat('::')) {
    cast = ''
    while (!c.done && /[A-Za-z0-9_[\]]/.test(c.s[c.i]!)) cast += c.s[c.i++]
    if (!CAST_TYPES.has(cast.toLowerCase().replace(/\[\]$/, ''))) throw c.fail(`a built-in type name (${[...CAST_TYPES].join(', ')})`)
  }
  if (c.peek() === '.') throw notImplemented('aggregate functions in select are not supported')
  return { kind: 'column', field: { name: first, path }, alias, cast: cast?.toLowerCase() }
}

/**
 * The types `col::type` may name. The only request text the SQL builder writes as SQL, so it is a fixed
 * list of built-in types (no user-defined type, whose cast functions could do anything), each one word.
 */
export const CAST_TYPES: ReadonlySet<string> = new Set([
  'text', 'varchar', 'char', 'name', 'int', 'int2', 'int4', 'int8', 'integer', 'smallint', 'bigint', 'numeric', 'decimal',
  'real', 'float4', 'float8', 'bool', 'boolean', 'json', 'jsonb', 'uuid', 'date', 'time', 'timetz', 'timestamp', 'timestamptz',
  'interval', 'bytea', 'inet', 'cidr', 'macaddr', 'money', 'oid', 'tsvector', 'tsquery', 'xml', 'bit', 'varbit',
  'int4range', 'int8range', 'numrange', 'daterange', 'tsrange', 'tstzrange',
])

/**
 * An alias becomes an output name, written as a quoted identifier (the one kind of request text the builder
 * quotes into SQL rather than looking up); Postgres would cut one past 63 bytes, so it is refused instead.
 */
function checkAlias(alias: string): string {
  if (Buffer.byteLength(alias) > 63) throw parseError(`the alias "${alias.slice(0, 20)}..." is longer than 63 bytes`)
  return alias
}

function notImplemented(message: string): PgAuthorizeError {
  return new PgAuthorizeError('ERR_REST_NOT_IMPLEMENTED', 'Feature not implemented', { detail: message })
}

/** `[not.]op[(any|all)][(lang)].value` of a top-level filter (the value runs to the end). */
export function parseFilterValue(field: Field, text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): Filter {
  const c = new Cursor(text, `filter (${text.slice(0, 40)})`)
  const f = readOperator(c, field)
  const rest = c.s.slice(c.i)
  f.value = f.op === 'in' ? parseList(rest, limits, c.what) : rest
  if (rest.length > limits.maxToken * 16) throw parseError('a filter value is too long')
  return f
}

function readOperator(c: Cursor, field: Field): Filter {
  const negate = c.eat('not.')
  let op = ''
  while (!c.done && /[a-z]/.test(c.s[c.i]!)) op += c.s[c.i++]
  if (!OPERATOR_SET.has(op)) throw c.fail('operator (eq, gt, ...)')
  let quantifier: Filter['quantifier']
  let language: string | undefined
  if (c.eat('(any)')) quantifier = 'any'
  else if (c.eat('(all)')) quantifier = 'all'
  else if (FTS.has(op) && c.eat('(')) {
    language = ''
    while (!c.done && c.s[c.i] !== ')') language += c.s[c.i++]
    c.expect(')')
    if (!/^[A-Za-z0-9_]+$/.test(language)) throw c.fail('text search configuration')
  }
  if (quantifier && !QUANTIFIABLE.has(op)) throw c.fail('"." (any/all apply to eq, gt, gte, lt, lte, like, ilike, match, imatch)')
  c.expect('.')
  return { kind: 'filter', field, negate, op: op as Operator, quantifier, language, value: '' }
}

/** `(a,b,"c,d")` of `in`: values split at commas outside quotes; `\` escapes. */
function parseList(text: string, limits: ParseLimits, what: string): string[] {
  const c = new Cursor(text, what)
  c.expect('(')
  const out: string[] = []
  if (c.eat(')')) {
    if (!c.done) throw c.fail('end of input')
    return out
  }
  for (;;) {
    out.push(readValue(c, limits, false))
    if (out.length > limits.maxItems * 20) throw parseError(`an in list has more than ${limits.maxItems * 20} values`)
    if (c.eat(')')) break
    c.expect(',')
  }
  if (!c.done) throw c.fail('end of input')
  return out
}

/** A value inside a list or logic tree: ends at `,` or `)` unless quoted; `{...}` and `(...)` kept whole in trees. */
function readValue(c: Cursor, limits: ParseLimits, tree: boolean): string {
  if (c.eat('"')) return readQuoted(c, limits, 'a value is too long')
  let out = ''
  let braces = 0
  while (!c.done) {
    const ch = c.s[c.i]!
    if (ch === '\\' && c.i + 1 < c.s.length) {
      out += c.s[c.i + 1]
      c.i += 2
      continue
    }
    if (tree && ch === '{') braces++
    if (tree && ch === '}') braces--
    if (braces <= 0 && (ch === ',' || ch === ')')) break
    out += ch
    c.i++
    if (out.length > limits.maxToken) throw parseError('a value is too long')
  }
  return out
}

/** `(a.eq.1,or(b.gt.2,not.c.is.null))` of `or=` / `and=`. */
export function parseLogic(op: 'and' | 'or', negate: boolean, text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): Logic {
  const c = new Cursor(text, `logic tree (${text.slice(0, 40)})`)
  const tree = readLogicBody(c, op, negate, limits, 0)
  if (!c.done) throw c.fail('end of input')
  return tree
}

function readLogicBody(c: Cursor, op: 'and' | 'or', negate: boolean, limits: ParseLimits, depth: number): Logic {
  if (depth > limits.maxDepth) throw parseError(`logic trees nest deeper than ${limits.maxDepth} levels`)
  c.expect('(')
  const children: Condition[] = []
  for (;;) {
    const start = c.i
    const neg = c.eat('not.')
    if (c.eat('and(') || c.eat('or(')) {
      const sub = c.s.slice(start + (neg ? 4 : 0), c.i - 1) as 'and' | 'or'
      c.i--
      children.push(readLogicBody(c, sub, neg, limits, depth + 1))
    } else {
      c.i = start
      const field = readField(c, limits)
      c.expect('.')
      const f = readOperator(c, field)
      if (f.op === 'in') {
        c.expect('(')
        const values: string[] = []
        if (!c.eat(')')) {
          for (;;) {
            values.push(readValue(c, limits, false))
            if (c.eat(')')) break
            c.expect(',')
          }
        }
        f.value = values
      } else {
        f.value = readValue(c, limits, true)
      }
      children.push(f)
    }
    if (children.length > limits.maxItems) throw parseError(`a logic tree has more than ${limits.maxItems} items`)
    if (c.eat(')')) break
    c.expect(',')
  }
  return { kind: 'logic', op, negate, children }
}

/** `order=a.desc.nullslast,b,rel(c).asc`. */
export function parseOrder(text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): OrderTerm[] {
  const c = new Cursor(text, 'order')
  const out: OrderTerm[] = []
  for (;;) {
    let field = readField(c, limits)
    let relation: string | undefined
    if (field.path.length === 0 && c.eat('(')) {
      relation = field.name
      field = readField(c, limits)
      c.expect(')')
    }
    const term: OrderTerm = { field, relation, direction: undefined, nulls: undefined }
    while (c.eat('.')) {
      if (c.eat('asc')) term.direction = 'asc'
      else if (c.eat('desc')) term.direction = 'desc'
      else if (c.eat('nullsfirst')) term.nulls = 'first'
      else if (c.eat('nullslast')) term.nulls = 'last'
      else throw c.fail('asc, desc, nullsfirst or nullslast')
    }
    out.push(term)
    if (out.length > limits.maxItems) throw parseError(`order has more than ${limits.maxItems} terms`)
    if (c.done) return out
    c.expect(',')
  }
}

/** `columns=a,"b c"` and `on_conflict=a,b`: a list of names. */
export function parseNameList(text: string, what: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): string[] {
  const c = new Cursor(text, what)
  const out: string[] = []
  for (;;) {
    out.push(readName(c, limits))
    if (out.length > limits.maxItems) throw parseError(`${what} has more than ${limits.maxItems} names`)
    if (c.done) return out
    c.expect(',')
  }
}

function nonNegative(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text)) {
    if (/^-\d+$/.test(text)) throw new PgAuthorizeError('ERR_REST_RANGE', 'Requested range not satisfiable', { detail: `${what} must be non-negative` })
    throw parseError(`"failed to parse ${what} parameter (${text.slice(0, 40)})"`, 'expecting a non-negative integer')
  }
  return Number(text)
}

/**
 * Parses every parameter of a query string (already form-decoded, as `URLSearchParams` gives them).
 */
export function parseQuery(params: Iterable<[string, string]>, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParsedQuery {
  const out: ParsedQuery = { select: [{ kind: 'star' }], levels: new Map(), columns: undefined, onConflict: undefined, others: [], raw: [] }
  const level = (path: string): Level => {
    let l = out.levels.get(path)
    if (!l) {
      l = { conditions: [], order: undefined, limit: undefined, offset: undefined }
      out.levels.set(path, l)
    }
    return l
  }
  let count = 0
  for (const [key, value] of params) {
    if (++count > limits.maxItems) throw parseError(`the query has more than ${limits.maxItems} parameters`)
    if (key.length > limits.maxToken) throw parseError('a query parameter name is too long')
    out.raw.push([key, value])
    if (key === 'select') {
      out.select = parseSelect(value, limits)
      continue
    }
    if (key === 'columns') {
      out.columns = parseNameList(value, 'columns', limits)
      continue
    }
    if (key === 'on_conflict') {
      out.onConflict = parseNameList(value, 'on_conflict', limits)
      continue
    }
    // `[embed.path.]order|limit|offset` and `[embed.path.][not.]or|and`
    if (!key.includes('->')) {
      const paging = /^(?:(.+)\.)?(order|limit|offset)$/.exec(key)
      if (paging) {
        const l = level(paging[1] ?? '')
        if (paging[2] === 'order') l.order = parseOrder(value, limits)
        else if (paging[2] === 'limit') l.limit = nonNegative(value, 'limit')
        else l.offset = nonNegative(value, 'offset')
        continue
      }
      const logic = /^(?:(.+?)\.)??(not\.)?(or|and)$/.exec(key)
      if (logic) {
        level(logic[1] ?? '').conditions.push(parseLogic(logic[3] as 'or' | 'and', logic[2] !== undefined, value, limits))
        continue
      }
    }
    if (RESERVED.has(key)) continue
    // `[embed.path.]col[->json]=[not.]op.value`; anything that is not op.value is kept for RPC GET.
    if (!/^(not\.)?[a-z]+(\((any|all|[A-Za-z0-9_]+)\))?\./.test(value) || !OPERATOR_SET.has(/^(?:not\.)?([a-z]+)/.exec(value)![1]!)) {
      out.others.push([key, value])
      continue
    }
    const arrow = key.indexOf('->')
    const head = arrow < 0 ? key : key.slice(0, arrow)
    const dot = head.lastIndexOf('.')
    const path = dot < 0 ? '' : head.slice(0, dot)
    const c = new Cursor(key.slice(dot + 1), 'filter column')
    const field = readField(c, limits)
    if (!c.done) throw c.fail('end of the column name')
    level(path).conditions.push(parseFilterValue(field, value, limits))
  }
  return out
}
