/**
 * More of the Data API over raw HTTP and the real clients: CSV, PUT, the OpenAPI root, schema profiles,
 * max rows, the coalesced schema reload, and the same policies giving the same rows over `/sql`, the wire
 * port and `/rest/v1` for a set of identities.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { neon, neonConfig } from '@neondatabase/serverless'
import pg from 'pg'
import { alice, bob, startRest, type RestStack } from './harness.js'
import { SchemaCaches } from '../../src/gateway/rest/schema-cache.js'

let s: RestStack
let aliceToken: string
before(async () => {
  s = await startRest({ allowAnonymous: true, schemas: ['public', 'api'], maxRows: 3 })
  await s.owner.query(`
    create table items (id int primary key, label text, note text);
    insert into items select i, 'item ' || i, case when i = 2 then 'has, comma "and quote"' end from generate_series(1, 5) i;
    create schema api;
    grant usage on schema api to authenticated;
    create table api.widgets (id int primary key, name text);
    insert into api.widgets values (1, 'sprocket');
    grant select on api.widgets to authenticated, anonymous; -- anonymous: the table, but not the schema
  `)
  await s.owner.query(`notify pgrst, 'reload schema'`)
  aliceToken = await s.token(alice)
  neonConfig.fetchEndpoint = s.dev.sqlEndpoint
})
after(() => s?.close())

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${s.restUrl}${path}`, { headers: { authorization: `Bearer ${aliceToken}`, ...headers } })

test('CSV: a header line, then one line per row, quoted where needed', async () => {
  const r = await get('/items?select=id,note&id=lte.2&order=id', { accept: 'text/csv' })
  assert.equal(r.status, 200)
  assert.match(r.headers.get('content-type')!, /^text\/csv/)
  assert.equal(await r.text(), 'id,note\n1,\n2,"has, comma ""and quote"""')
  const csv = await s.client(aliceToken).from('items').select('id').eq('id', 3).csv()
  assert.equal(csv.data, 'id\n3')
})

test('max rows bounds a read; Content-Range tells the page', async () => {
  const r = await get('/items?order=id', { prefer: 'count=exact' })
  assert.equal((await r.json() as unknown[]).length, 3)
  assert.equal(r.headers.get('content-range'), '0-2/5')
  assert.equal(r.status, 206)
  const range = await get('/items?order=id&select=id', { range: '1-2' })
  assert.deepEqual(await range.json(), [{ id: 2 }, { id: 3 }])
  const past = await get('/items?offset=10', { prefer: 'count=exact' })
  assert.equal(past.status, 416)
  assert.equal(((await past.json()) as { code: string }).code, 'PGRST103')
})

test('PUT: the PK filter must match the body; it upserts one row', async () => {
  const put = (path: string, body: unknown, prefer = 'return=representation') => fetch(`${s.restUrl}${path}`, {
    method: 'PUT', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', prefer }, body: JSON.stringify(body),
  })
  const created = await put('/items?id=eq.9', { id: 9, label: 'nine', note: null })
  assert.equal(created.status, 201)
  assert.deepEqual(await created.json(), [{ id: 9, label: 'nine', note: null }])
  const replaced = await put('/items?id=eq.9', { id: 9, label: 'NINE', note: 'x' })
  assert.equal(replaced.status, 200)
  assert.equal((await put('/items?id=eq.9', { id: 9, label: 'y' }, 'return=minimal')).status, 204)
  const mismatch = await put('/items?id=eq.9', { id: 8, label: 'x', note: null })
  assert.deepEqual([mismatch.status, ((await mismatch.json()) as { code: string }).code], [400, 'PGRST115'])
  const notPk = await put('/items?label=eq.x', { id: 8, label: 'x', note: null })
  assert.deepEqual([notPk.status, ((await notPk.json()) as { code: string }).code], [405, 'PGRST105'])
})

test('the OpenAPI root describes what the role may see', async () => {
  const r = await get('/')
  assert.equal(r.status, 200)
  const doc = await r.json() as { swagger: string; paths: Record<string, unknown>; definitions: Record<string, { properties: Record<string, unknown> }> }
  assert.equal(doc.swagger, '2.0')
  assert.ok('/users' in doc.paths && '/items' in doc.paths)
  assert.ok('email' in doc.definitions.users!.properties)
  // Anonymous may select api.widgets but has no USAGE on schema api: nothing is described there.
  const anon = await fetch(`${s.restUrl}/`, { headers: { 'accept-profile': 'api' } })
  assert.equal(anon.status, 200)
  assert.deepEqual(Object.keys((await anon.json() as { paths: object }).paths), ['/'])
})

test('Accept-Profile / Content-Profile switch schema; an unexposed one is PGRST106', async () => {
  const r = await s.client(aliceToken).schema('api').from('widgets').select('name')
  assert.deepEqual(r.data, [{ name: 'sprocket' }])
  const plain = await get('/widgets')
  assert.equal(plain.status, 404)
  const bad = await get('/widgets', { 'accept-profile': 'pgauthorize' })
  assert.equal(bad.status, 406)
  assert.equal(((await bad.json()) as { code: string }).code, 'PGRST106')
})

test('a flood of reloads is coalesced: one in flight, one pending', async () => {
  let runs = 0
  const caches = new SchemaCaches(() => async (fn) => fn(async (sql, values) => {
    runs++
    await new Promise((r) => setTimeout(r, 20))
    return (await s.owner.query(sql, values)).rows
  }), ['public'])
  await caches.get('neondb', 'authenticated')
  const before = caches.reloads
  await Promise.all(Array.from({ length: 200 }, () => caches.invalidate('neondb')))
  assert.ok(runs > 0)
  assert.equal(caches.reloads - before, 2)
})

test('the same policies give the same rows over /sql, the wire port and /rest/v1', async () => {
  for (const user of [alice, bob]) {
    const token = await s.token(user)
    const viaSql = await neon(s.dev.authenticatedUrl, { authToken: token })`select id, name from users order by id`
    const u = new URL(s.dev.authenticatedUrl)
    const wire = new pg.Client({ host: u.hostname, port: Number(u.port), user: 'authenticated', database: 'neondb', password: token })
    await wire.connect()
    const viaWire = (await wire.query('select id, name from users order by id')).rows
    await wire.end()
    const viaRest = (await s.client(token).from('users').select('id, name').order('id')).data
    assert.deepEqual(viaRest, viaWire, user.name)
    assert.deepEqual(viaRest, viaSql, user.name)
    assert.equal(viaRest!.length, 1)
  }
  // And anonymous: no rows anywhere.
  assert.deepEqual((await s.client().from('users').select('id')).data, [])
})

test('more of the grammar: embed or/limit, to-one order, hints, ambiguity, fts, stripped nulls', async () => {
  await s.owner.query(`
    create table people (id int primary key, name text not null, bio text);
    create table posts (id int primary key, author int references people(id), editor int references people(id), title text not null, body tsvector);
    insert into people values (1, 'ann', null), (2, 'ben', 'writes');
    insert into posts values (1, 1, 2, 'first', to_tsvector('english', 'cats and dogs')), (2, 1, 1, 'second', to_tsvector('english', 'birds')), (3, 2, 1, 'third', null);
  `)
  await s.owner.query(`notify pgrst, 'reload schema'`)
  const db = s.client(aliceToken)
  let ok = false
  for (let i = 0; i < 100 && !ok; i++) {
    ok = (await db.from('posts').select('id')).error === null
    if (!ok) await new Promise((r) => setTimeout(r, 50))
  }
  const ambiguous = await db.from('posts').select('title, people(name)')
  assert.equal(ambiguous.status, 300)
  assert.equal(ambiguous.error?.code, 'PGRST201')
  const hinted = await db.from('posts').select('title, author:people!author(name), editor:people!posts_editor_fkey(name)').eq('id', 1)
  assert.deepEqual(hinted.data, [{ title: 'first', author: { name: 'ann' }, editor: { name: 'ben' } }])
  const embedOr = await db.from('people').select('name, posts!author(title)').eq('id', 1).or('title.eq.second,title.eq.none', { referencedTable: 'posts' }).limit(1, { referencedTable: 'posts' })
  assert.deepEqual(embedOr.data, [{ name: 'ann', posts: [{ title: 'second' }] }])
  const byAuthor = await get('/posts?select=id,author:people!author(name)&order=author(name).desc,id')
  assert.deepEqual(await byAuthor.json(), [{ id: 3, author: { name: 'ben' } }, { id: 1, author: { name: 'ann' } }, { id: 2, author: { name: 'ann' } }])
  assert.deepEqual((await db.from('posts').select('id').textSearch('body', 'cat & dog', { config: 'english' })).data, [{ id: 1 }])
  assert.deepEqual((await db.from('posts').select('id').textSearch('title', 'second', { type: 'plain' })).data, [{ id: 2 }])
  const stripped = await get('/people?select=id,bio&order=id', { accept: 'application/vnd.pgrst.array+json;nulls=stripped' })
  assert.deepEqual(await stripped.json(), [{ id: 1 }, { id: 2, bio: 'writes' }])
})

test('writes: missing=default, Location, limited delete, max-affected', async () => {
  await s.owner.query(`create table logs (id serial primary key, msg text not null, level text not null default 'info'); grant all on sequence logs_id_seq to authenticated`)
  await s.owner.query(`notify pgrst, 'reload schema'`)
  const db = s.client(aliceToken)
  for (let i = 0; i < 100 && (await db.from('logs').select('id')).error !== null; i++) await new Promise((r) => setTimeout(r, 50))
  const ins = await db.from('logs').insert([{ msg: 'a' }, { msg: 'b', level: 'warn' }], { defaultToNull: false }).select('msg, level')
  assert.deepEqual(ins.data, [{ msg: 'a', level: 'info' }, { msg: 'b', level: 'warn' }])
  const loc = await fetch(`${s.restUrl}/logs`, { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', prefer: 'return=headers-only' }, body: JSON.stringify({ msg: 'c' }) })
  assert.equal(loc.status, 201)
  assert.equal(loc.headers.get('location'), '/logs?id=eq.3')
  const del = await fetch(`${s.restUrl}/logs?order=id.desc&limit=1`, { method: 'DELETE', headers: { authorization: `Bearer ${aliceToken}`, prefer: 'return=representation' } })
  assert.deepEqual(await del.json(), [{ id: 3, msg: 'c', level: 'info' }])
  const capped = await fetch(`${s.restUrl}/logs`, { method: 'PATCH', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', prefer: 'handling=strict, max-affected=1' }, body: JSON.stringify({ level: 'x' }) })
  assert.equal(capped.status, 400)
  assert.equal(((await capped.json()) as { code: string }).code, 'PGRST124')
  assert.deepEqual((await s.owner.query(`select count(*)::int as n from logs where level = 'x'`)).rows[0].n, 0)
})

test('rpc returning a table\'s rows embeds like the table', async () => {
  await s.owner.query(`create function ann_posts() returns setof posts language sql stable as $$ select * from posts where author = 1 $$`)
  await s.owner.query(`notify pgrst, 'reload schema'`)
  const db = s.client(aliceToken)
  let r = await db.rpc('ann_posts').select('title, editor:people!editor(name)').order('id')
  for (let i = 0; i < 100 && r.error?.code === 'PGRST202'; i++) {
    await new Promise((res) => setTimeout(res, 50))
    r = await db.rpc('ann_posts').select('title, editor:people!editor(name)').order('id')
  }
  assert.deepEqual(r.data, [{ title: 'first', editor: { name: 'ben' } }, { title: 'second', editor: { name: 'ann' } }])
})

test('dev\'s printed @supabase/postgrest-js snippet returns Alice\'s row', async () => {
  const { execFile } = await import('node:child_process')
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', s.dev.restSnippet!], { cwd: process.cwd(), env: { ...process.env, TOKEN: aliceToken } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)))
  })
  assert.deepEqual(JSON.parse(out), [{ name: 'Alice', tenants: { name: 'Neon' } }])
})
