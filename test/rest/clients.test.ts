/**
 * The Data API driven by the real, unmodified `@supabase/postgrest-js` and `@neondatabase/postgrest-js`
 * against `dev`'s gateway (real Postgres, real JWTs verified against the JWKS, the guide's demo with its
 * crudPolicy policies): what each identity sees, writes refused by policy, embeds obeying the embedded
 * table's RLS, upsert / update / delete / rpc / count / range, and a schema change picked up after DDL.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { NeonPostgrestClient } from '@neondatabase/postgrest-js'
import { alice, bob, startRest, type RestStack } from './harness.js'
import { eventually } from '../helpers/wait.js'

let s: RestStack
let aliceToken: string
let bobToken: string
before(async () => {
  s = await startRest({ allowAnonymous: true })
  await s.owner.query(`
    create table projects (id int primary key, tenant_id uuid not null references tenants(id), name text not null, budget numeric, meta jsonb);
    alter table projects enable row level security;
    create policy by_tenant on projects to authenticated
      using (tenant_id::text = (select auth.session()->>'tenant_id')) with check (tenant_id::text = (select auth.session()->>'tenant_id'));
    create table tags (id int primary key, label text not null);
    create table project_tags (project_id int references projects(id), tag_id int references tags(id), primary key (project_id, tag_id));
    create table notices (id int primary key, body text not null);
    grant select on notices to anonymous;
    revoke all on projects from anonymous;
    grant select, insert, update, delete on projects, tags, project_tags, notices to authenticated;
    insert into projects values
      (1, '${alice.tenantId}', 'alpha', 100, '{"color": "red", "size": {"w": 1}}'),
      (2, '${alice.tenantId}', 'beta', null, '{"color": "blue"}'),
      (3, '${alice.tenantId}', 'gamma', 300, null),
      (10, '${bob.tenantId}', 'bobs', 5, null);
    insert into tags values (1, 'urgent'), (2, 'later');
    insert into project_tags values (1, 1), (1, 2), (10, 1);
    insert into notices values (1, 'hello everyone');
    create function whoami() returns text language sql stable as $$ select auth.user_id() $$;
    create function add(a int, b int default 1) returns int language sql immutable as $$ select a + b $$;
    create function my_projects(min_budget numeric default 0) returns setof projects language sql stable as $$ select * from projects where coalesce(budget, 0) >= min_budget $$;
    create function bump(project int) returns void language sql as $$ update projects set budget = coalesce(budget, 0) + 1 where id = project $$;
    create function current_role_name() returns text language sql stable as $$ select auth.role() $$;
    create function touch() returns int language plpgsql volatile as $$ begin update projects set budget = budget where false; return 1; end $$;
    create view touchy as select touch() as t;
    grant execute on all functions in schema public to authenticated;
    grant select on touchy to authenticated;
  `)
  aliceToken = await s.token(alice)
  bobToken = await s.token(bob)
})
after(() => s?.close())

test('Alice sees her row and her tenant, Bob his: the same request, different rows', async () => {
  const a = await s.client(aliceToken).from('users').select('name, tenants(name)')
  assert.equal(a.error, null)
  assert.deepEqual(a.data, [{ name: 'Alice', tenants: { name: 'Neon' } }])
  const b = await s.client(bobToken).from('users').select('name, tenants(name)')
  assert.deepEqual(b.data, [{ name: 'Bob', tenants: { name: 'Other Company' } }])
})

test('@neondatabase/postgrest-js works against /<database>/rest/v1', async () => {
  const url = s.restUrl.replace('/rest/v1', '/neondb/rest/v1')
  const db = new NeonPostgrestClient({ dataApiUrl: url, options: { global: { fetch, headers: { Authorization: `Bearer ${aliceToken}` } } } })
  const r = await db.from('users').select('name, email')
  assert.equal(r.error, null)
  assert.deepEqual(r.data, [{ name: 'Alice', email: alice.email }])
  // A database the gateway does not serve: refused, no rows.
  const other = new NeonPostgrestClient({ dataApiUrl: s.restUrl.replace('/rest/v1', '/postgres/rest/v1'), options: { global: { fetch, headers: { Authorization: `Bearer ${aliceToken}` } } } })
  const o = await other.from('users').select('name')
  assert.equal(o.data, null)
  assert.equal(o.error?.code, '3D000')
})

test('anonymous sees what anonymous may, and nothing of the RLS tables', async () => {
  const anon = s.client()
  assert.deepEqual((await anon.from('notices').select('body')).data, [{ body: 'hello everyone' }])
  // users has no policy for anonymous: no rows, whatever the filter.
  assert.deepEqual((await anon.from('users').select('name')).data, [])
  // projects grants anonymous nothing: the table is not in its schema cache at all.
  const p = await anon.from('projects').select('name')
  assert.equal(p.status, 404)
  assert.equal(p.error?.code, 'PGRST205')
})

test('forged, expired and wrong-key tokens are refused with 401 in PostgREST\'s shape', async () => {
  const [h, p] = aliceToken.split('.')
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: bob.sub })).toString('base64url')
  const expired = await s.token(alice, { now: Date.now() - 7200_000, expiresIn: '1h' })
  for (const token of [`${h}.${forgedPayload}.${aliceToken.split('.')[2]}`, expired, 'not-a-jwt']) {
    const r = await s.client(token).from('users').select('name')
    assert.equal(r.status, 401, token.slice(0, 10))
    assert.equal(r.data, null)
    assert.match(r.error!.code, /^PGRST30[13]$/)
    assert.equal(typeof r.error!.message, 'string')
  }
})

test('an embed obeys the embedded table\'s RLS (to-many, many-to-many, !inner)', async () => {
  // tags have no RLS; projects do: Bob's project never shows under a tag Alice reads.
  const t = await s.client(aliceToken).from('tags').select('label, projects(name)').order('id')
  assert.deepEqual(t.data, [{ label: 'urgent', projects: [{ name: 'alpha' }] }, { label: 'later', projects: [{ name: 'alpha' }] }])
  const tb = await s.client(bobToken).from('tags').select('label, projects!inner(name)').order('id')
  assert.deepEqual(tb.data, [{ label: 'urgent', projects: [{ name: 'bobs' }] }])
  const tenants = await s.client(aliceToken).from('tenants').select('name, projects(name)').order('name', { referencedTable: 'projects', ascending: false })
  assert.deepEqual(tenants.data, [{ name: 'Neon', projects: [{ name: 'gamma' }, { name: 'beta' }, { name: 'alpha' }] }])
})

test('select: aliases, casts, JSON paths, spread', async () => {
  const r = await s.client(aliceToken).from('projects').select('n:name, budget::text, color:meta->>color, w:meta->size->w, ...tenants(tenant:name)').eq('id', 1)
  assert.equal(r.error, null)
  assert.deepEqual(r.data, [{ n: 'alpha', budget: '100', color: 'red', w: 1, tenant: 'Neon' }])
})

test('filters, or/and/not, order with nulls, limit/offset, count and range', async () => {
  const db = s.client(aliceToken)
  const r = await db.from('projects').select('name', { count: 'exact' }).or('budget.gte.200,budget.is.null').order('name')
  assert.deepEqual(r.data, [{ name: 'beta' }, { name: 'gamma' }])
  assert.equal(r.count, 2)
  assert.deepEqual((await db.from('projects').select('id').in('name', ['alpha', 'gamma']).order('id')).data, [{ id: 1 }, { id: 3 }])
  assert.deepEqual((await db.from('projects').select('id').ilike('name', '%AM%')).data, [{ id: 3 }])
  assert.deepEqual((await db.from('projects').select('id').not('budget', 'is', null).order('id')).data, [{ id: 1 }, { id: 3 }])
  assert.deepEqual((await db.from('projects').select('id').order('budget', { ascending: false, nullsFirst: true })).data, [{ id: 2 }, { id: 3 }, { id: 1 }])
  assert.deepEqual((await db.from('projects').select('id').eq('meta->>color', 'blue')).data, [{ id: 2 }])
  const page = await db.from('projects').select('id', { count: 'exact' }).order('id').range(1, 1)
  assert.deepEqual(page.data, [{ id: 2 }])
  assert.equal(page.count, 3)
  assert.equal(page.status, 206)
  const head = await db.from('projects').select('*', { count: 'exact', head: true })
  assert.equal(head.count, 3)
  assert.equal(head.data, null)
})

test('singular object: one row, else 406 PGRST116; maybeSingle gives null', async () => {
  const db = s.client(aliceToken)
  const one = await db.from('projects').select('name').eq('id', 2).single()
  assert.deepEqual(one.data, { name: 'beta' })
  const none = await db.from('projects').select('name').eq('id', 10).single()
  assert.equal(none.status, 406)
  assert.equal(none.error?.code, 'PGRST116')
  assert.equal((await db.from('projects').select('name').eq('id', 10).maybeSingle()).data, null)
})

test('an insert into another tenant is refused (403, 42501); into her own it is returned', async () => {
  const db = s.client(aliceToken)
  const refused = await db.from('projects').insert({ id: 20, tenant_id: bob.tenantId, name: 'sneaky' })
  assert.equal(refused.status, 403)
  assert.equal(refused.error?.code, '42501')
  assert.equal((await s.owner.query('select count(*)::int as n from projects where id = 20')).rows[0].n, 0)
  const ok = await db.from('projects').insert({ id: 21, tenant_id: alice.tenantId, name: 'delta' }).select('id, name')
  assert.equal(ok.status, 201)
  assert.deepEqual(ok.data, [{ id: 21, name: 'delta' }])
  const minimal = await db.from('projects').insert([{ id: 22, tenant_id: alice.tenantId, name: 'e1' }, { id: 23, tenant_id: alice.tenantId, name: 'e2' }])
  assert.equal(minimal.status, 201)
  assert.equal(minimal.data, null)
})

test('upsert, update, delete (and policies hold for each)', async () => {
  const db = s.client(aliceToken)
  const up = await db.from('projects').upsert({ id: 21, tenant_id: alice.tenantId, name: 'delta2' }).select('name')
  assert.deepEqual(up.data, [{ name: 'delta2' }])
  assert.equal(up.status, 200)
  const ins = await db.from('projects').upsert({ id: 24, tenant_id: alice.tenantId, name: 'zeta' }, { onConflict: 'id' }).select('name')
  assert.equal(ins.status, 201)
  const ignored = await db.from('projects').upsert({ id: 24, tenant_id: alice.tenantId, name: 'nope' }, { ignoreDuplicates: true }).select('name')
  assert.deepEqual(ignored.data, [])
  const upd = await db.from('projects').update({ budget: 7 }).eq('id', 21).select('id, budget')
  assert.deepEqual(upd.data, [{ id: 21, budget: 7 }])
  // Bob's project matches no row Alice may update: nothing changes.
  const other = await db.from('projects').update({ name: 'hijacked' }).eq('id', 10).select('id')
  assert.deepEqual(other.data, [])
  assert.equal((await s.owner.query('select name from projects where id = 10')).rows[0].name, 'bobs')
  const del = await db.from('projects').delete().in('id', [22, 23, 10]).select('id')
  assert.deepEqual(del.data!.map((r) => r.id).sort(), [22, 23])
  assert.equal((await s.owner.query('select count(*)::int as n from projects where id = 10')).rows[0].n, 1)
})

test('Prefer: tx=rollback runs the write and keeps nothing', async () => {
  const r = await s.client(aliceToken).from('projects').insert({ id: 30, tenant_id: alice.tenantId, name: 'trial' }).select('name').rollback()
  assert.deepEqual(r.data, [{ name: 'trial' }])
  assert.equal((await s.owner.query('select count(*)::int as n from projects where id = 30')).rows[0].n, 0)
})

test('a GET runs read-only: a view whose function writes is refused (25006 → 405)', async () => {
  const r = await s.client(aliceToken).from('touchy').select('t')
  assert.equal(r.status, 405)
  assert.equal(r.error?.code, '25006')
})

test('rpc: scalar, setof with filters, GET read-only, void, and the claims reach the function', async () => {
  const db = s.client(aliceToken)
  assert.equal((await db.rpc('whoami')).data, alice.sub)
  assert.equal((await db.rpc('add', { a: 2, b: 3 })).data, 5)
  assert.equal((await db.rpc('add', { a: 2 }, { get: true })).data, 3)
  const set = await db.rpc('my_projects', { min_budget: 50 }).select('name').order('name')
  assert.deepEqual(set.data, [{ name: 'alpha' }, { name: 'gamma' }])
  const counted = await db.rpc('my_projects', {}, { count: 'exact' }).select('id').lt('id', 3)
  assert.equal(counted.count, 2)
  const v = await db.rpc('bump', { project: 1 })
  assert.equal(v.status, 204)
  assert.equal(v.error, null)
  // A write through GET runs read-only: refused (25006 → 405).
  const ro = await db.rpc('bump', { project: 1 }, { get: true })
  assert.equal(ro.status, 405)
  assert.equal(ro.error?.code, '25006')
  assert.equal((await db.rpc('current_role_name')).data, 'authenticated')
  const missing = await db.rpc('no_such_fn')
  assert.equal(missing.status, 404)
  assert.equal(missing.error?.code, 'PGRST202')
})

test('errors: unknown table, column and relationship are PGRST errors, never SQL', async () => {
  const db = s.client(aliceToken)
  const t = await db.from('nope').select()
  assert.deepEqual([t.status, t.error?.code], [404, 'PGRST205'])
  const c = await db.from('projects').select('nosuch')
  assert.deepEqual([c.status, c.error?.code], [400, '42703'])
  const rel = await db.from('projects').select('name, notices(body)')
  assert.deepEqual([rel.status, rel.error?.code], [400, 'PGRST200'])
  const w = await db.from('projects').insert({ id: 40, tenant_id: alice.tenantId, name: 'x', nosuch: 1 })
  assert.deepEqual([w.status, w.error?.code], [400, 'PGRST204'])
})

test('a schema change is picked up after the DDL event trigger\'s reload', async () => {
  const db = s.client(aliceToken)
  const before = await db.from('projects').select('priority')
  assert.equal(before.error?.code, '42703')
  await s.owner.query('alter table projects add column priority int default 5')
  assert.ok(await eventually(async () => (await db.from('projects').select('priority').eq('id', 1)).error === null), 'the new column shows up')
  assert.deepEqual((await db.from('projects').select('priority').eq('id', 1)).data, [{ priority: 5 }])
  // And by hand: NOTIFY pgrst, 'reload schema' (the event trigger does not fire for grants).
  await s.owner.query('create table later_table (id int primary key); grant select on later_table to authenticated')
  assert.ok(await eventually(async () => (await db.from('later_table').select()).error === null))
})
