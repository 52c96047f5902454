/**
 * Claims cannot be forged from SQL (security property 2), and every attempt fails closed:
 * an error or no identity, never someone else's rows and never the owner's rights.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import pg from 'pg'
import { envelopeExpiry, sealClaims, installClaimsParamSql, RESET_SESSION_SQL } from '../../src/database/session.js'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import type { DatabaseContext } from '../../src/database/context.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { clientWithClaims, createDemoDatabase, roleClient, sqlstate } from '../helpers/roles.js'

let db: TestDatabase
let ctx: DatabaseContext
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]

before(async () => {
  ;({ db, ctx } = await createDemoDatabase())
})
after(() => db?.close())

/** Runs statements as `authenticated` with Alice's identity installed; returns the client. */
async function asAlice(): Promise<pg.Client> {
  return clientWithClaims(ctx, demoClaims(alice))
}

async function usersSeen(c: pg.Client): Promise<string[] | string> {
  try {
    return (await c.query<{ id: string }>('select id from users order by id')).rows.map((r) => r.id)
  } catch (err) {
    return (err as { code: string }).code
  }
}

/** Signs an HS256 JWT the way auth.jwt_session_init expects, with any key. */
function hs256(key: Buffer, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url')
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url')
  const s = createHmac('sha256', key).update(`${h}.${p}`).digest('base64url')
  return `${h}.${p}.${s}`
}
const future = () => Math.floor(Date.now() / 1000) + 600

for (const [name, statement] of [
  ['SET of the claims setting to plain JSON', `set pg_authorize.session = '{"sub":"${bob.sub}"}'`],
  ['set_config of the claims setting to plain JSON', `select set_config('pg_authorize.session', '{"sub":"${bob.sub}"}', false)`],
  ['set_config of a PostgREST-style request.jwt.claims', `select set_config('request.jwt.claims', '{"sub":"${bob.sub}"}', false)`],
  ['SET of a pg_session_jwt setting', `set pg_session_jwt.jwt = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.'`],
] as const) {
  test(`forgery: ${name} gives no one else's rows`, async () => {
    const c = await asAlice()
    try {
      await c.query(statement)
      const seen = await usersSeen(c)
      // Either the forged setting is rejected outright, or it is ignored; never Bob's row.
      assert.ok(seen === '28000' || (Array.isArray(seen) && !seen.includes(bob.sub)), `saw ${JSON.stringify(seen)}`)
    } finally {
      await c.end()
    }
  })
}

test('forgery: a valid envelope with its claims swapped for another user is rejected', async () => {
  const real = ctx.seal(demoClaims(alice), 'authenticated', 'test')
  const [v, exp, , mac] = real.split('\t')
  const c = await roleClient(ctx)
  try {
    await c.query(`select set_config('pg_authorize.session', $1, false)`, [`${v}\t${exp}\t${JSON.stringify(demoClaims(bob))}\t${mac}`])
    assert.equal(await usersSeen(c), '28000')
  } finally {
    await c.end()
  }
})

test('forgery: an envelope with its expiry pushed out is rejected', async () => {
  const real = ctx.seal(demoClaims(alice), 'authenticated', 'test', { expiresAt: Math.floor(Date.now() / 1000) - 5 })
  const [v, , payload, mac] = real.split('\t')
  const c = await roleClient(ctx)
  try {
    await c.query(`select set_config('pg_authorize.session', $1, false)`, [`${v}\t${future()}\t${payload}\t${mac}`])
    assert.equal(await usersSeen(c), '28000')
  } finally {
    await c.end()
  }
})

test('forgery: an envelope sealed with another key is rejected', async () => {
  const other = sealClaims({ key: randomBytes(32), generation: ctx.sessionKey.generation }, demoClaims(bob), { role: 'authenticated', database: ctx.database, provider: 'test' })
  const c = await roleClient(ctx)
  try {
    await c.query(`select set_config('pg_authorize.session', $1, false)`, [other])
    assert.equal(await usersSeen(c), '28000')
  } finally {
    await c.end()
  }
})

test('auth.jwt_session_init accepts a token signed with the database key', async () => {
  const c = await roleClient(ctx)
  try {
    const token = await new SignJWT(demoClaims(bob)).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(ctx.sessionKey.key)
    await c.query('select auth.jwt_session_init($1)', [token])
    assert.deepEqual(await usersSeen(c), [bob.sub])
  } finally {
    await c.end()
  }
})

for (const [name, token] of [
  ['signed by another key', () => hs256(randomBytes(32), { alg: 'HS256' }, { ...demoClaims(bob), exp: future() })],
  ['with alg changed to none', () => {
    const t = hs256(ctx.sessionKey.key, { alg: 'HS256' }, { ...demoClaims(bob), exp: future() }).split('.')
    return `${Buffer.from('{"alg":"none"}').toString('base64url')}.${t[1]}.${t[2]}`
  }],
  ['with alg HS512 (signed correctly under that header)', () => hs256(ctx.sessionKey.key, { alg: 'HS512' }, { ...demoClaims(bob), exp: future() })],
  ['with alg none and no signature', () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...demoClaims(bob), exp: future() })).toString('base64url')}.`],
  ['with claims modified after signing', () => {
    const t = hs256(ctx.sessionKey.key, { alg: 'HS256' }, { ...demoClaims(alice), exp: future() }).split('.')
    return `${t[0]}.${Buffer.from(JSON.stringify({ ...demoClaims(bob), exp: future() })).toString('base64url')}.${t[2]}`
  }],
  ['that has expired', () => hs256(ctx.sessionKey.key, { alg: 'HS256' }, { ...demoClaims(bob), exp: Math.floor(Date.now() / 1000) - 10 })],
  ['without exp', () => hs256(ctx.sessionKey.key, { alg: 'HS256' }, demoClaims(bob))],
] as const) {
  test(`forgery: auth.jwt_session_init with a token ${name} raises and installs nothing`, async () => {
    const c = await roleClient(ctx)
    try {
      assert.equal(await sqlstate(() => c.query('select auth.jwt_session_init($1)', [token()])), '28000')
      assert.deepEqual(await usersSeen(c), [])
      const s = await c.query('select auth.session() as s')
      assert.equal(s.rows[0].s, null)
    } finally {
      await c.end()
    }
  })
}

test('forgery: the private schema cannot be read or used', async () => {
  const c = await asAlice()
  try {
    for (const q of [
      'select * from pgauthorize.sealing_key',
      'select * from pgauthorize.role_credentials',
      'select * from pgauthorize.providers',
      `select pgauthorize.reject_session('x')`,
      `insert into pgauthorize.providers (name, jwks_url, algorithms, roles) values ('evil', 'http://evil', '{RS256}', '{authenticated}')`,
    ]) {
      assert.equal(await sqlstate(() => c.query(q)), '42501', q)
    }
  } finally {
    await c.end()
  }
})

test('forgery: RESET ROLE, SET ROLE to the owner and SET SESSION AUTHORIZATION give no privilege', async () => {
  const c = await asAlice()
  try {
    await c.query('reset role')
    assert.equal((await c.query('select current_user as u')).rows[0].u, 'authenticated')
    assert.deepEqual(await usersSeen(c), [alice.sub])
    assert.equal(await sqlstate(() => c.query('set role postgres')), '42501')
    assert.equal(await sqlstate(() => c.query('set session authorization postgres')), '42501')
    assert.equal(await sqlstate(() => c.query('set role none; select 1')), 'no error')
    assert.deepEqual(await usersSeen(c), [alice.sub])
    assert.equal(await sqlstate(() => c.query('alter table users disable row level security')), '42501')
    assert.equal(await sqlstate(() => c.query('create role evil superuser')), '42501')
  } finally {
    await c.end()
  }
})

test('forgery: shadowing auth or crypto functions through the search path changes nothing', async () => {
  const c = await roleClient(ctx)
  try {
    // No CREATE on public (Postgres 15+ default) or auth.
    assert.equal(await sqlstate(() => c.query(`create function public.sha256(bytea) returns bytea language sql as 'select $1'`)), '42501')
    assert.equal(await sqlstate(() => c.query(`create function auth.session() returns jsonb language sql as $$select '{}'::jsonb$$`)), '42501')
    // Temporary functions are allowed, but only ever found when called qualified with pg_temp.
    await c.query(`create function pg_temp.sha256(bytea) returns bytea language sql as 'select ''\\x00''::bytea'`)
    await c.query(`create function pg_temp.split_part(text, text, int) returns text language sql as $$select 'v1'$$`)
    await c.query(`create function pg_temp.session() returns jsonb language sql as $$select '{"sub":"${bob.sub}"}'::jsonb$$`)
    await c.query(`create temp table secret (id int, key bytea, ipad bytea, opad bytea)`)
    await c.query('set search_path = pg_temp, public, pg_catalog')
    const forged = `v1.${future()}.${Buffer.from(JSON.stringify(demoClaims(bob))).toString('base64url')}.AAAA`
    await c.query(`select set_config('pg_authorize.session', $1, false)`, [forged])
    assert.equal(await usersSeen(c), '28000')
  } finally {
    await c.end()
  }
})

test('forgery: a batch that sets claims before a query sees nothing (single round trip, multiple statements)', async () => {
  const c = await roleClient(ctx)
  try {
    const forged = `v1.${future()}.${Buffer.from(JSON.stringify(demoClaims(bob))).toString('base64url')}.${'A'.repeat(43)}`
    const code = await sqlstate(() => c.query(`select set_config('pg_authorize.session', '${forged}', true); select id from users`))
    assert.equal(code, '28000')
  } finally {
    await c.end()
  }
})

for (const reset of ['DISCARD ALL', 'RESET ALL', 'RESET pg_authorize.session']) {
  test(`${reset} followed by a query sees no identity, not someone else's`, async () => {
    const c = await asAlice()
    try {
      assert.deepEqual(await usersSeen(c), [alice.sub])
      await c.query(reset)
      assert.deepEqual(await usersSeen(c), [])
      assert.equal((await c.query('select auth.session() as s')).rows[0].s, null)
    } finally {
      await c.end()
    }
  })
}

test('the gateway reset sequence clears identity and session state', async () => {
  const c = await asAlice()
  try {
    await c.query(`create temp table t (x int); prepare p as select 1; set statement_timeout = 1234; listen chan; select pg_advisory_lock(42)`)
    await c.query(RESET_SESSION_SQL)
    assert.deepEqual(await usersSeen(c), [])
    const r = await c.query(`select to_regclass('pg_temp.t') as t, (select count(*)::int from pg_prepared_statements) as p,
      current_setting('statement_timeout') as st, (select count(*)::int from pg_listening_channels()) as l,
      (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks`)
    assert.deepEqual(r.rows[0], { t: null, p: 0, st: '30s', l: 0, locks: 0 }, 'back to the limit setup stored, not the client\'s 1234')
  } finally {
    await c.end()
  }
})

test('expiry is checked on every read: claims sealed to expire in one second stop working', async () => {
  const c = await roleClient(ctx)
  try {
    const exp = Math.floor(Date.now() / 1000) + 2
    await c.query(installClaimsParamSql(false), [ctx.seal(demoClaims(alice), 'authenticated', 'test', { expiresAt: exp })])
    assert.deepEqual(await usersSeen(c), [alice.sub])
    await new Promise((r) => setTimeout(r, (exp + 1) * 1000 - Date.now()))
    assert.equal(await usersSeen(c), '28000')
    const err = await c.query('select auth.user_id()').catch((e: Error) => e.message)
    assert.match(String(err), /expired/)
  } finally {
    await c.end()
  }
})

test('an envelope never outlives the token: the claims exp caps it', async () => {
  const exp = Math.floor(Date.now() / 1000) + 30
  const env = ctx.seal({ ...demoClaims(alice), exp }, 'authenticated', 'test', { maxTtlSeconds: 3600 })
  assert.equal(envelopeExpiry(env), exp)
  assert.equal(env.split('\t')[2], String(exp))
})

test('the restricted roles cannot log in without the stored password, and have no dangerous attributes', async () => {
  const cfg = ctx.roleConnectionConfig('authenticated')
  const u = new URL(String(cfg.connectionString))
  u.password = 'wrong'
  const c = new pg.Client({ connectionString: u.toString() })
  assert.equal(await sqlstate(() => c.connect()), '28P01')
  await c.end().catch(() => {})
  const owner = new pg.Client(db.url)
  await owner.connect()
  const r = await owner.query(`select rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit, rolreplication
    from pg_roles where rolname in ('authenticated', 'anonymous') order by rolname`)
  await owner.end()
  for (const row of r.rows) {
    assert.deepEqual(
      { ...row, rolname: undefined },
      { rolname: undefined, rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false, rolinherit: false, rolreplication: false },
    )
  }
})
