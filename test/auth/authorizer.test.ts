/**
 * createAuthorizer (issue 19): the gateway's guarantees in-process. A Hono app uses it with node-postgres
 * and with drizzle-orm/node-postgres: Alice sees her row and Bob his; forged and expired tokens are
 * refused; an SQL injection cannot make auth.user_id() anyone else; nothing crosses callbacks on a reused
 * connection; interactive transactions nest; and the cost is counted in round trips against a bare
 * node-postgres transaction as the same role.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { Hono } from 'hono'
import { drizzle } from 'drizzle-orm/node-postgres'
import { pgTable, text } from 'drizzle-orm/pg-core'
import { sql as dsql } from 'drizzle-orm'
import postgres from 'postgres'
import { createAuthorizer, type Authorizer } from '../../src/auth/authorizer.js'
import { authorizePostgresJs } from '../../src/auth/postgres-js.js'
import { generateSigningKey, type SigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { authorize, type AuthorizedEnv } from '../../examples/embed/hono.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { createAppDatabase, type AppDatabase } from '../helpers/app-database.js'

let appDb: AppDatabase
let db: TestDatabase
let key: SigningKey
let authz: Authorizer
const notes = pgTable('notes', { owner: text('owner').notNull(), body: text('body').notNull() })

before(async () => {
  appDb = await createAppDatabase(`create table notes (owner text not null default auth.user_id(), body text not null);
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id())) with check (owner = (select auth.user_id()));
      grant select, insert, update, delete on notes to authenticated;
      insert into notes values ('alice', 'alice''s note'), ('bob', 'bob''s note');`)
  db = appDb.db
  key = appDb.key
  // One connection per role: every call after the first reuses the previous caller's connection.
  authz = await createAuthorizer({ databaseUrl: db.url, poolSize: 1 })
})
after(async () => {
  await authz?.close()
  await db?.close()
})

const token = (sub: string, expiresIn = '1h') => appDb.token(sub, expiresIn)

/** The app a user of pg-authorize would write: the middleware, then plain handlers (one injectable). */
function app(a: Authorizer) {
  const h = new Hono<AuthorizedEnv>()
  h.onError((_err, c) => c.json({ message: 'internal error' }, 500))
  h.use('*', authorize(a, { allowAnonymous: true }))
  h.get('/pg/notes', async (c) => c.json((await c.var.db.query('select body from notes order by body')).rows.map((r) => r.body)))
  h.get('/drizzle/notes', async (c) => c.json((await drizzle(c.var.db).select({ body: notes.body }).from(notes)).map((r) => r.body)))
  // Deliberately vulnerable: the query string is pasted into SQL text.
  h.get('/pg/search', async (c) => {
    const q = c.req.query('q') ?? ''
    await c.var.db.query(`select body from notes where body like '%${q}%'`)
    const r = await c.var.db.query('select auth.user_id() as me, (select array_agg(body order by body) from notes) as seen')
    return c.json(r.rows[0])
  })
  h.get('/drizzle/search', async (c) => {
    const q = c.req.query('q') ?? ''
    const d = drizzle(c.var.db)
    await d.execute(dsql.raw(`select body from notes where body like '%${q}%'`))
    const r = await d.execute(dsql`select auth.user_id() as me, (select array_agg(body order by body) from notes) as seen`)
    return c.json(r.rows[0])
  })
  return h
}

const get = (h: Hono<AuthorizedEnv>, path: string, tok?: string) =>
  h.request(path, tok === undefined ? {} : { headers: { authorization: `Bearer ${tok}` } })

test('a Hono app on createAuthorizer: Alice sees her row and Bob his, with pg and with drizzle', async () => {
  const h = app(authz)
  for (const client of ['pg', 'drizzle']) {
    const alice = await get(h, `/${client}/notes`, await token('alice'))
    assert.equal(alice.status, 200, client)
    assert.deepEqual(await alice.json(), ["alice's note"], client)
    const bob = await get(h, `/${client}/notes`, await token('bob'))
    assert.deepEqual(await bob.json(), ["bob's note"], client)
    const nobody = await get(h, `/${client}/notes`)
    assert.deepEqual(await nobody.json(), [], `${client}: anonymous, no policy for it`)
  }
})

test('the Hono middleware rolls the request back when its handler throws', async () => {
  const h = app(authz)
  h.post('/pg/notes', async (c) => {
    await c.var.db.query(`insert into notes (body) values ('half done')`)
    throw new Error('the handler failed after writing')
  })
  const alice = await token('alice')
  const res = await h.request('/pg/notes', { method: 'POST', headers: { authorization: `Bearer ${alice}` } })
  assert.equal(res.status, 500)
  assert.deepEqual(await (await get(h, '/pg/notes', alice)).json(), ["alice's note"])
})

test('forged, expired and malformed tokens are refused before any SQL runs', async () => {
  const h = app(authz)
  const good = await token('alice')
  const [head, body] = good.split('.')
  const forgedBody = Buffer.from(JSON.stringify({ sub: 'bob', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')
  const otherKey = await generateSigningKey({ alg: 'ES256' })
  const cases: Array<[string, string, string]> = [
    ['payload swapped', `${head}.${forgedBody}.${good.split('.')[2]}`, 'ERR_JWT_SIGNATURE_INVALID'],
    ['signed by another key', await signToken({ privateJwk: { ...otherKey.privateJwk, kid: key.privateJwk.kid }, sub: 'bob', expiresIn: '1h' }), 'ERR_JWT_SIGNATURE_INVALID'],
    ['expired', await signToken({ privateJwk: key.privateJwk, sub: 'alice', expiresIn: '1h', now: Date.now() - 7_200_000 }), 'ERR_JWT_EXPIRED'],
    ['not a JWT', `${head}.${body}`, 'ERR_TOKEN_MALFORMED'],
  ]
  for (const [what, tok, code] of cases) {
    const res = await get(h, '/pg/notes', tok)
    assert.equal(res.status, 401, what)
    assert.equal(((await res.json()) as { code: string }).code, code, what)
    await assert.rejects(authz.withToken(tok, async () => assert.fail('the callback ran')), { code }, what)
  }
})

test('an SQL injection in the callback cannot make auth.user_id() anyone else, and leaves nothing behind', async () => {
  const h = app(authz)
  const alice = await token('alice')
  // Another user's claims, as plain settings and as a (forged) envelope, session-wide and transaction-local.
  const injections = [
    `' and pg_catalog.set_config('request.jwt.claims', '{"sub":"bob"}', false) is not null and body like '`,
    `'; select pg_catalog.set_config('request.jwt.claims', '{"sub":"bob","role":"authenticated"}', true); select '`,
    `' and pg_catalog.set_config('pg_authorize.session', 'v3	1	9999999999	authenticated	app	${db.database}	{"sub":"bob"}	${'0'.repeat(64)}', true) is not null and body like '`,
    `'; set pg_authorize.claims = '{"sub":"bob"}'; set request.jwt.claim.sub = 'bob'; select '`,
    `'; select pg_catalog.set_config('pg_authorize.session', '', false); select '`,
    `'; reset pg_authorize.session; select '`,
  ]
  for (const client of ['pg', 'drizzle']) {
    for (const q of injections) {
      const res = await get(h, `/${client}/search?q=${encodeURIComponent(q)}`, alice)
      if (res.status === 200) {
        const row = (await res.json()) as { me: string | null; seen: string[] | null }
        assert.notEqual(row.me, 'bob', `${client}: ${q}`)
        assert.ok(!row.seen?.includes("bob's note"), `${client}: ${q} saw Bob's row`)
      } else {
        // A forged envelope makes auth.session() raise (28000): the request fails, it never runs as Bob.
        assert.equal(res.status, 500, `${client}: ${q}`)
      }
      // The next request takes the same connection: it is Bob, and only Bob.
      const bob = await get(h, `/${client}/search?q=`, await token('bob'))
      assert.deepEqual(await bob.json(), { me: 'bob', seen: ["bob's note"] }, `${client}: after ${q}`)
    }
  }
})

test('nothing crosses callbacks on a reused connection: settings, a copied envelope, temp tables, locks, LISTEN', async () => {
  const alice = await token('alice')
  const pid = await authz.withToken(alice, async (c) => {
    await c.query(`select pg_catalog.set_config('pg_authorize.session', pg_catalog.current_setting('pg_authorize.session'), false)`)
    await c.query(`set app.tenant = 'alice-co'`)
    await c.query(`create temp table leftover (x int)`)
    await c.query(`select pg_advisory_lock(42)`)
    await c.query(`listen alice_channel`)
    return (await c.query('select pg_backend_pid() as p')).rows[0].p as number
  })
  const bob = await authz.withToken(await token('bob'), async (c) => {
    // RESET inside the transaction falls back to the session value: Alice's copied envelope, if it survived.
    await c.query('reset pg_authorize.session')
    const r = await c.query(`select pg_backend_pid() as p, auth.user_id() as me, pg_catalog.current_setting('app.tenant', true) as tenant,
        pg_catalog.to_regclass('pg_temp.leftover') as t,
        (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks,
        (select count(*)::int from pg_listening_channels()) as listening`)
    return r.rows[0]
  })
  assert.equal(bob.p, pid, 'the same connection')
  assert.deepEqual({ ...bob, p: undefined }, { p: undefined, me: null, tenant: '', t: null, locks: 0, listening: 0 })
})

test('the callback is one transaction; BEGIN/COMMIT/ROLLBACK inside it nest as savepoints (pg and drizzle)', async () => {
  const alice = await token('alice')
  const count = async () => authz.withToken(alice, async (c) => (await c.query('select count(*)::int as n from notes')).rows[0].n as number)
  const before = await count()
  // A throw rolls everything back.
  await assert.rejects(authz.withToken(alice, async (c) => {
    await c.query(`insert into notes (body) values ('gone')`)
    throw new Error('boom')
  }), /boom/)
  assert.equal(await count(), before)
  // Hand-written interactive transactions: the rolled-back one vanishes, the committed one stays.
  await authz.withToken(alice, async (c) => {
    await c.query('BEGIN')
    await c.query(`insert into notes (body) values ('rolled back')`)
    await c.query('ROLLBACK')
    await c.query('begin')
    await c.query(`insert into notes (body) values ('kept')`)
    await c.query('commit')
    // Still inside the call's transaction, still Alice.
    assert.equal((await c.query('select auth.user_id() as u')).rows[0].u, 'alice')
  })
  // drizzle's db.transaction(), with a nested one rolled back.
  await authz.withToken(alice, async (c) => {
    const d = drizzle(c)
    await d.transaction(async (tx) => {
      await tx.insert(notes).values({ owner: 'alice', body: 'drizzle kept' })
      await tx.transaction(async (inner) => {
        await inner.insert(notes).values({ owner: 'alice', body: 'drizzle inner' })
        inner.rollback()
      }).catch(() => {})
    })
  })
  const bodies = await authz.withToken(alice, async (c) => (await c.query('select body from notes order by body')).rows.map((r) => r.body))
  assert.deepEqual(bodies, ["alice's note", 'drizzle kept', 'kept'])
  // A nested BEGIN cannot change the mode; a COMMIT hidden in a string really ends it, and the call says so.
  await assert.rejects(authz.withToken(alice, (c) => c.query('begin isolation level serializable')), { code: 'ERR_TRANSACTION_CONTROL' })
  await assert.rejects(authz.withToken(alice, async (c) => {
    await c.query('select 1; commit')
    assert.equal((await c.query('select auth.user_id() as u')).rows[0].u, null, 'no identity after the transaction ended')
  }), { code: 'ERR_TRANSACTION_CONTROL' })
  // The call's own mode.
  const mode = await authz.withToken(alice, async (c) => (await c.query(`select current_setting('transaction_isolation') as i, current_setting('transaction_read_only') as r`)).rows[0], { isolationLevel: 'serializable', readOnly: true })
  assert.deepEqual(mode, { i: 'serializable', r: 'on' })
})

test('the client handed to a callback is dead once it returns, and cannot be released by the callback', async () => {
  let kept: pg.ClientBase | undefined
  await authz.withToken(await token('alice'), async (c) => {
    kept = c
    assert.throws(() => (c as pg.PoolClient).release(), { code: 'ERR_TRANSACTION_CONTROL' })
  })
  await assert.rejects(kept!.query('select auth.user_id()'), { code: 'ERR_TRANSACTION_CONTROL' })
})

test('withClaims for trusted code and anonymous for no identity', async () => {
  assert.equal(await authz.withClaims({ sub: 'bob' }, async (c) => (await c.query('select auth.user_id() as u')).rows[0].u), 'bob')
  const anon = await authz.anonymous(async (c) => (await c.query(`select auth.session() as s, session_user as r`)).rows[0])
  assert.deepEqual(anon, { s: null, r: 'anonymous' })
  await assert.rejects(authz.withClaims({ sub: 'x' }, async () => 1, { role: 'postgres' }), { code: 'ERR_ROLE_NOT_ALLOWED' })
})

test('cost: a one-query call takes no more round trips than a bare node-postgres transaction as the same role', async () => {
  const alice = await token('alice')
  // Round trips = ReadyForQuery messages on the connection (one per Sync or simple query).
  let counted = 0
  let counting = false
  await authz.withToken(alice, async (c) => {
    ;(c as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', () => { if (counting) counted++ })
  })
  const ours = async (dirty: boolean) => {
    if (dirty) await authz.withToken(alice, (c) => c.query(`set app.x = 'dirty'`))
    counted = 0
    counting = true
    await authz.withToken(alice, (c) => c.query('select body from notes'))
    counting = false
    return counted
  }
  const bare = new pg.Client(await authz.authenticator.connectionConfig(authz.database, 'authenticated'))
  await bare.connect()
  let bareCount = 0
  ;(bare as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', () => bareCount++)
  await bare.query('begin')
  await bare.query('select body from notes')
  await bare.query('commit')
  await bare.end()
  assert.equal(bareCount, 3)
  // Including the reset of a connection the previous call left dirty: it rides in the same round trip.
  assert.equal(await ours(true), bareCount)
  assert.equal(await ours(false), bareCount)
})

test('postgres.js: its own pool logged in as the role, claims installed first in sql.begin', async () => {
  const pgjs = authorizePostgresJs(authz, postgres)
  try {
    const mine = async (sub: string) => pgjs.withToken(await token(sub), async (sql) => (await sql`select body, auth.user_id() as me, session_user as r from notes where body like '%''s note'`))
    assert.deepEqual([...await mine('alice')], [{ body: "alice's note", me: 'alice', r: 'authenticated' }])
    assert.deepEqual([...await mine('bob')].map((r) => r.body), ["bob's note"])
    // A session-level copy of Alice's envelope does not survive into the next call on the pooled connection.
    await pgjs.withToken(await token('alice'), (sql) => sql.unsafe(`select pg_catalog.set_config('pg_authorize.session', pg_catalog.current_setting('pg_authorize.session'), false)`))
    const anon = await pgjs.anonymous(async (sql) => (await sql`select auth.session() as s, session_user as r`)[0])
    assert.deepEqual({ ...anon }, { s: null, r: 'anonymous' })
    assert.equal(await pgjs.withClaims({ sub: 'carol' }, async (sql) => (await sql`select auth.user_id() as u`)[0]!.u), 'carol')
    const [h, , sig] = (await token('alice')).split('.')
    const swapped = `${h}.${Buffer.from(JSON.stringify({ sub: 'bob', exp: 9_999_999_999 })).toString('base64url')}.${sig}`
    await assert.rejects(pgjs.withToken(swapped, async () => assert.fail('ran')), { code: 'ERR_JWT_SIGNATURE_INVALID' })
  } finally {
    await pgjs.end()
  }
})
