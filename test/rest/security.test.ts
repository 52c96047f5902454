/**
 * The Data API's safety: an injection corpus through every part of a request that names something or
 * carries a value (select=, filter columns and values, logic trees, order=, limit/offset, Prefer, Range,
 * on_conflict=, columns=, the profile headers), and oversize requests.
 *
 * Two checks per payload: end to end, a canary function that records every call is never called (and no
 * payload answers 500); and at the builder, the SQL text of every statement that gets built holds none of
 * the payload's marker (the marker names nothing in the schema cache, so it can only reach SQL as a bind
 * parameter).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { alice, startRest, type RestStack } from './harness.js'
import { buildRead, buildWrite } from '../../src/gateway/rest/build-sql.js'
import { parsePrefer, parseRange } from '../../src/gateway/rest/headers.js'
import { parseQuery } from '../../src/gateway/rest/parse-query.js'
import { loadSchemaCache, type SchemaCache } from '../../src/gateway/rest/schema-cache.js'

let s: RestStack
let token: string
let cache: SchemaCache
before(async () => {
  s = await startRest({ allowAnonymous: false })
  await s.owner.query(`
    create table things (id int primary key, name text, meta jsonb, owner text default auth.user_id());
    alter table things enable row level security;
    create policy own on things to authenticated using (owner = (select auth.user_id())) with check (owner = (select auth.user_id()));
    insert into things values (1, 'one', '{"a": 1}', '${alice.sub}');
    create table canary (hit text);
    create function pwned() returns int language sql security definer as $$ insert into canary values ('hit') returning 1 $$;
    grant execute on function pwned() to public;
  `)
  token = await s.token(alice)
  cache = await loadSchemaCache(async (sql, values) => (await s.owner.query(sql, values)).rows, ['public'])
})
after(() => s?.close())

const MARK = 'pwned'

/** Query strings (raw, as a client could send them), each trying to get `pwned()` executed. */
const QUERIES = [
  // select=
  'select=id,pwned()', 'select=id);select pwned();--', 'select="id""); select pwned(); --"', 'select=id::int);select pwned();--',
  'select=x:pwned()', 'select=id,canary(pwned())', 'select=...pwned(x)', "select=meta->>'a'||pwned()", 'select=meta->pwned()',
  'select=id::text;select pwned()', 'select=id::pwned', 'select="pwned"', 'select=*,pwned!inner(*)',
  // filter columns
  'pwned()=eq.1', '"id"";select pwned()--"=eq.1', "meta->>'a');select pwned();--=eq.1", 'id;select pwned()=eq.1',
  // filter values
  // (this one is valid SQL if a value were ever written into the text: it would call pwned() per row)
  "name=eq.x' or pwned()=1 or \"name\"='y", 'id=eq.1;select pwned()', "name=eq.1' or pwned()=1--", "name=in.(a,\"b')); select pwned();--\")", "name=fts(english'); select pwned();--).x",
  'name=fts(pwned).x', 'id=is.null;select pwned()', 'id=is.pwned()', 'name=like.*pwned()*', 'id=eq(any).{1,pwned()}',
  'name=ilike(all).{%,pwned}', 'meta=cs.{"a":"pwned()"}',
  // logic trees
  'or=(id.eq.1,pwned().eq.1)', 'or=(id.eq.1);select pwned()', 'and=(name.eq.x,or(id.eq.1,name.eq.pwned()))', 'not.or=(id.eq.1))) or (select pwned()',
  // order, limit, offset
  'order=pwned()', 'order=id;select pwned()', 'order=id.desc,(select pwned())', 'order=id.desc nulls first;select pwned()', 'order=pwned(id).asc',
  'limit=1;select pwned()', 'offset=1 union select pwned()', 'limit=-1', 'canary.limit=1',
]

/** Headers, each with a payload. */
const HEADERS: Record<string, string>[] = [
  { prefer: 'count=exact; select pwned()' }, { prefer: "count=exact'; select pwned() --" }, { prefer: 'return=representation,resolution=merge-duplicates;select pwned()' },
  { prefer: 'tx=pwned()' }, { range: '0-1;select pwned()' }, { range: '0-99999999999999999999' }, { range: 'pwned()-1' },
  { 'accept-profile': 'public; select pwned()' }, { 'accept-profile': 'pwned' }, { accept: 'application/vnd.pgrst.plan+text; for="pwned()"' },
]

/** Write parameters: on_conflict= and columns= and body keys. */
const WRITES: { query: string; body: unknown }[] = [
  { query: 'on_conflict=id) do update set name = pwned()::text --', body: { id: 2, name: 'x' } },
  { query: 'on_conflict=pwned', body: { id: 2, name: 'x' } },
  { query: 'columns=id,"name"") values (pwned()) --"', body: { id: 2, name: 'x' } },
  { query: 'columns=pwned', body: { id: 2 } },
  { query: '', body: { id: 2, 'name) values ((select pwned()))--': 'x' } },
  { query: '', body: { id: "2); select pwned(); --", name: 'x' } },
  { query: 'select=id,pwned()', body: { id: 3, name: 'x' } },
]

async function canaryHits(): Promise<number> {
  return (await s.owner.query('select count(*)::int as n from canary')).rows[0].n as number
}

test('the injection corpus: nothing executes, nothing answers 500', async () => {
  const statuses: string[] = []
  const send = async (method: string, query: string, headers: Record<string, string>, body?: unknown) => {
    const res = await fetch(`${s.restUrl}/things?${query}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    assert.ok(res.status < 500, `${method} ${query} ${JSON.stringify(headers)} answered ${res.status}: ${text}`)
    if (res.status >= 400) {
      const err = JSON.parse(text) as Record<string, unknown>
      assert.deepEqual(Object.keys(err).sort(), ['code', 'details', 'hint', 'message'], text)
    }
    statuses.push(`${res.status}`)
  }
  for (const q of QUERIES) {
    await send('GET', q, {})
    await send('GET', encodeURI(q), {})
    await send('PATCH', q, { prefer: 'return=representation' }, { name: 'patched' })
    await send('DELETE', q + '&id=eq.999', {})
  }
  for (const h of HEADERS) await send('GET', '', h)
  for (const w of WRITES) {
    await send('POST', w.query, { prefer: 'return=representation,resolution=merge-duplicates' }, w.body)
    await send('POST', w.query, {}, w.body)
  }
  assert.equal(await canaryHits(), 0)
  // The corpus did reach the database for some payloads (values are data): the check is not vacuous.
  assert.ok(statuses.includes('200'))
})

test('at the builder: no statement\'s SQL text holds a payload\'s marker', () => {
  let built = 0
  for (const q of QUERIES) {
    let statement
    try {
      statement = buildRead({ cache, schema: 'public', query: parseQuery(new URLSearchParams(q)), maxRows: 1000, table: 'things', media: 'json', stripNulls: false, count: true, range: undefined })
    } catch (err) {
      assert.match((err as { code?: string }).code ?? '', /^ERR_REST_/, `${q}: ${String(err)}`)
      continue
    }
    built++
    assert.ok(!statement.text.toLowerCase().includes(MARK), `${q}\n${statement.text}`)
  }
  for (const h of HEADERS) {
    try {
      const range = parseRange(h.range ?? null)
      const prefer = parsePrefer(h.prefer ?? null)
      const statement = buildRead({ cache, schema: 'public', query: parseQuery(new URLSearchParams('')), maxRows: 1000, table: 'things', media: 'json', stripNulls: false, count: prefer.count !== undefined, range })
      built++
      assert.ok(!statement.text.toLowerCase().includes(MARK), JSON.stringify(h))
    } catch (err) {
      assert.match((err as { code?: string }).code ?? '', /^ERR_REST_/)
    }
  }
  for (const w of WRITES) {
    try {
      const query = parseQuery(new URLSearchParams(w.query))
      const statement = buildWrite({
        cache, schema: 'public', query, maxRows: 1000, table: 'things', kind: 'upsert', body: JSON.stringify([w.body]),
        columns: query.columns ?? Object.keys(w.body as object), prefer: parsePrefer('resolution=merge-duplicates,return=representation'),
        media: 'json', stripNulls: false, onConflict: query.onConflict,
      })
      built++
      assert.ok(!statement.text.toLowerCase().includes(MARK), `${w.query}\n${statement.text}`)
    } catch (err) {
      assert.match((err as { code?: string }).code ?? '', /^ERR_REST_/, `${w.query}: ${String(err)}`)
    }
  }
  assert.ok(built > 10, `only ${built} statements were built`)
})

test('oversize requests are refused before any SQL: URL, body, embedding depth, list sizes', async () => {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const longUrl = await fetch(`${s.restUrl}/things?name=eq.${'x'.repeat(10_000)}`, { headers: auth })
  assert.equal(longUrl.status, 413)
  const bigBody = await fetch(`${s.restUrl}/things`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 5, name: 'x'.repeat(2 * 1024 * 1024) }) })
  assert.equal(bigBody.status, 413)
  assert.equal((await s.owner.query('select count(*)::int as n from things where id = 5')).rows[0].n, 0)
  const deep = await fetch(`${s.restUrl}/things?select=${'a('.repeat(12)}id${')'.repeat(12)}`, { headers: auth })
  assert.equal(deep.status, 400)
  assert.equal(((await deep.json()) as { code: string }).code, 'PGRST100')
  const manyParams = await fetch(`${s.restUrl}/things?${Array.from({ length: 600 }, (_, i) => `id=neq.${i}`).join('&')}`, { headers: auth })
  assert.equal(manyParams.status, 400)
})

test('a response past the cap is kept in Postgres and refused (507); a write that would answer it is rolled back', async () => {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  await s.owner.query(`insert into things select i, repeat('x', 1024 * 1024), null, '${alice.sub}' from generate_series(100, 111) i`)
  const big = await fetch(`${s.restUrl}/things?id=gte.100`, { headers: auth })
  assert.equal(big.status, 507)
  assert.equal(((await big.json()) as { code: string }).code, '54000')
  const patch = await fetch(`${s.restUrl}/things?id=gte.100`, { method: 'PATCH', headers: { ...auth, prefer: 'return=representation' }, body: JSON.stringify({ meta: { touched: true } }) })
  assert.equal(patch.status, 507)
  assert.equal((await s.owner.query(`select count(*)::int as n from things where meta is not null and id >= 100`)).rows[0].n, 0)
  // Under the cap, the same request answers.
  const small = await fetch(`${s.restUrl}/things?id=eq.100&select=id`, { headers: auth })
  assert.deepEqual(await small.json(), [{ id: 100 }])
  await s.owner.query(`delete from things where id >= 100`)
})

/** Aliases are output names: the one kind of request text quoted into SQL (as an identifier, never looked up). */
const ALIASES = [
  'select=pwned:id',
  // (valid SQL if a quote in an alias were not doubled: `as "x", pwned() as "y"`)
  'select="x\\", pwned() as \\"y":id',
  'select="a\\" from things; select pwned(); --":id',
  'select=id,meta->>"x\\", pwned() as \\"y"',
]

test('aliases reach SQL only inside quoted identifiers, and execute nothing', async () => {
  for (const q of ALIASES) {
    const res = await fetch(`${s.restUrl}/things?${q}`, { headers: { authorization: `Bearer ${token}` } })
    assert.ok(res.status < 500, `${q}: ${res.status}`)
    let statement
    try {
      statement = buildRead({ cache, schema: 'public', query: parseQuery(new URLSearchParams(q)), maxRows: 1000, table: 'things', media: 'json', stripNulls: false, count: false, range: undefined })
    } catch (err) {
      assert.match((err as { code?: string }).code ?? '', /^ERR_REST_/)
      continue
    }
    const outsideIdentifiers = statement.text.replace(/"(?:[^"]|"")*"/g, '""')
    assert.ok(!outsideIdentifiers.toLowerCase().includes(MARK), `${q}\n${statement.text}`)
  }
  assert.equal(await canaryHits(), 0)
})

test('no token: 401 PGRST302 when anonymous access is off; a malformed one PGRST301', async () => {
  const none = await fetch(`${s.restUrl}/things`)
  assert.equal(none.status, 401)
  assert.equal(((await none.json()) as { code: string }).code, 'PGRST302')
  assert.equal(none.headers.get('www-authenticate'), 'Bearer')
  const bad = await fetch(`${s.restUrl}/things`, { headers: { authorization: 'Bearer abc' } })
  assert.equal(bad.status, 401)
  assert.equal(((await bad.json()) as { code: string }).code, 'PGRST301')
  // `apikey` alone is not a credential.
  const key = await fetch(`${s.restUrl}/things`, { headers: { apikey: token } })
  assert.equal(key.status, 401)
})

test('claims cannot be set from the request: a client-sent request.jwt.claims changes nothing', async () => {
  // PostgREST-style claims are a plain setting anyone can write; here they are not what the policies read.
  await s.owner.query(`create or replace function who_after() returns text language sql as $$ select set_config('request.jwt.claims', '{"sub":"x"}', true) || '|' || coalesce(auth.user_id(), 'null') $$`)
  await s.owner.query(`notify pgrst, 'reload schema'`)
  let body: unknown
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${s.restUrl}/rpc/who_after`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
    if (r.status === 200) {
      body = await r.json()
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(body, `{"sub":"x"}|${alice.sub}`)
})
