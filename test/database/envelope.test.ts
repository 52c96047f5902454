/**
 * The v3 envelope (sql/0006_sealing_keys.sql, src/database/session.ts): claims round-trip exactly, every
 * alteration of a sealed envelope fails closed with SQLSTATE 28000, an envelope is refused in any role or
 * database other than the one it was sealed for, retired keys stop working after their grace, and the
 * formats of older versions (whose key is gone) are refused.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import pg from 'pg'
import { envelopeExpiry, installClaimsParamSql, rotateSessionKey } from '../../src/database/session.js'
import type { DatabaseContext } from '../../src/database/context.js'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { createDemoDatabase, roleClient, sqlstate } from '../helpers/roles.js'

let db: TestDatabase
let ctx: DatabaseContext
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]

before(async () => {
  ;({ db, ctx } = await createDemoDatabase())
})
after(() => db?.close())

const now = () => Math.floor(Date.now() / 1000)
const hmac = (key: Buffer, input: string) => createHmac('sha256', key).update(input, 'utf8').digest()

/** A v3 envelope over any fields, with any key: what a forger (or a test) can build. */
function v3(key: Buffer, exp: number | string, json: string, o: { gen?: number; role?: string; db?: string } = {}): string {
  const body = `v3\t${o.gen ?? ctx.sessionKey.generation}\t${exp}\t${o.role ?? 'authenticated'}\ttest\t${o.db ?? ctx.database}\t${json}\t`
  return body + hmac(key, body).toString('hex')
}

/** What `auth.session()` answers for `envelope` on a fresh restricted-role session: claims, or the SQLSTATE. */
async function read(envelope: string, sql = 'select auth.session() as s'): Promise<unknown> {
  const c = await roleClient(ctx)
  try {
    await c.query(installClaimsParamSql(false), [envelope])
    return (await c.query(sql)).rows[0].s
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  } finally {
    await c.end()
  }
}

test('the gateway seals v3: version, key generation, expiry, role, provider, database, raw JSON, hex MAC', () => {
  const claims = { sub: 'a.b', tenant_id: 't1' }
  const env = ctx.seal(claims, 'authenticated', 'test', { expiresAt: 2_000_000_000 })
  const [v, gen, exp, role, provider, database, json, mac, ...rest] = env.split('\t')
  assert.deepEqual([v, gen, exp, role, provider, database, rest], ['v3', String(ctx.sessionKey.generation), '2000000000', 'authenticated', 'test', ctx.database, []])
  assert.equal(json, JSON.stringify(claims))
  assert.match(mac!, /^[0-9a-f]{64}$/)
  assert.equal(mac, hmac(ctx.sessionKey.key, env.slice(0, -64)).toString('hex'))
  assert.equal(envelopeExpiry(env), 2_000_000_000)
  // A name with a control character could shift the fields: refused before sealing.
  assert.throws(() => ctx.seal(claims, 'authen\tticated', 'test'), /control character/)
})

test('claims round-trip exactly: dots, quotes, backslashes, control characters, unicode, emoji, nesting', async () => {
  const claims = {
    sub: 'user.with.dots@example.com',
    tenant_id: 't.42',
    quote: 'she said "hi" and \'bye\'',
    backslash: 'C:\\path\\to\\x \\u0041 not an escape',
    control: 'tab\there\nnewline\r\u0001\u001f end',
    unicode: 'Zoë, Łódź, 東京, עברית, \u2028\u2029',
    emoji: '🔐👩‍👩‍👧 ✓',
    'key.with.dots': { 'nested "key"': ['a', 1, 2.5, -0.125, true, false, null, { deep: { deeper: '🙂' } }] },
    '': 'empty key',
    big: 12345678901234,
    role: 'authenticated',
    permissions: ['read:a.b', 'write:c'],
  }
  assert.deepEqual(await read(ctx.seal(claims, 'authenticated', 'test')), claims)
  assert.equal(await read(ctx.seal(claims, 'authenticated', 'test'), 'select auth.user_id() as s'), claims.sub)
  // The per-row form (one call per row) answers the same on every row.
  const n = await read(ctx.seal(claims, 'authenticated', 'test'),
    `select count(*)::int as s from generate_series(1, 500)
      where auth.session()->>'tenant_id' = 't.42' and auth.session()->>'emoji' = '${claims.emoji}'`)
  assert.equal(n, 500)
})

test('no identity is JSON null; an empty or reset setting too', async () => {
  assert.equal(await read(''), null)
  const c = await roleClient(ctx)
  try {
    assert.equal((await c.query('select auth.session() as s')).rows[0].s, null)
    assert.equal((await c.query('select auth.user_id() as s')).rows[0].s, null)
  } finally {
    await c.end()
  }
})

test('forgery (v3): every alteration of a sealed envelope is refused with 28000', async () => {
  const exp = now() + 600
  const real = ctx.seal(demoClaims(alice), 'authenticated', 'test', { expiresAt: exp })
  const f = real.split('\t') as [string, string, string, string, string, string, string, string]
  const [, gen, , , , database, json, mac] = f
  const head = (o: Partial<Record<'v' | 'gen' | 'exp' | 'role' | 'provider' | 'db' | 'json', string>>) =>
    [o.v ?? 'v3', o.gen ?? gen, o.exp ?? String(exp), o.role ?? 'authenticated', o.provider ?? 'test', o.db ?? database, o.json ?? json].join('\t')
  const bobJson = JSON.stringify(demoClaims(bob))
  const sameLength = json.replace(alice.sub, bob.sub.padEnd(alice.sub.length, 'x').slice(0, alice.sub.length))
  assert.equal(sameLength.length, json.length)
  const cases: [string, string][] = [
    ['claims swapped for another user', `${head({ json: bobJson })}\t${mac}`],
    ['claims altered, same length', `${head({ json: sameLength })}\t${mac}`],
    ['one claim byte changed', `${head({ json: json.replace('"', "'") })}\t${mac}`],
    ['expiry pushed out', `${head({ exp: String(exp + 86_400) })}\t${mac}`],
    ['expiry with a leading zero', `${head({ exp: '0' + exp })}\t${mac}`],
    ['role changed', `${head({ role: 'anonymous' })}\t${mac}`],
    ['provider changed', `${head({ provider: 'other' })}\t${mac}`],
    ['database changed', `${head({ db: 'postgres' })}\t${mac}`],
    ['generation changed', `${head({ gen: String(Number(gen) + 1) })}\t${mac}`],
    ['version tag changed to v2', `${head({ v: 'v2' })}\t${mac}`],
    ['version tag in capitals', `${head({ v: 'V3' })}\t${mac}`],
    ['MAC truncated by one digit', real.slice(0, -1)],
    ['MAC truncated to half', real.slice(0, -32)],
    ['MAC removed', real.slice(0, -64)],
    ['MAC and separator removed', real.slice(0, -65)],
    ['MAC extended by one digit', `${real}0`],
    ['MAC in capitals (same value)', `${real.slice(0, -64)}${mac.toUpperCase()}`],
    ['MAC not hex', `${real.slice(0, -64)}${'z'.repeat(64)}`],
    ['MAC of non-ASCII characters', `${real.slice(0, -64)}${'é'.repeat(32)}`],
    ['MAC with odd bytes', `${real.slice(0, -64)}${'\u0001\u007f\uffff'.repeat(21)}x`],
    ['MAC base64url instead of hex', `${real.slice(0, -64)}${Buffer.from(mac, 'hex').toString('base64url')}`],
    ['MAC all zeros', `${real.slice(0, -64)}${'0'.repeat(64)}`],
    ['MAC sealed with another key', v3(randomBytes(32), exp, bobJson)],
    ['the TAB before the MAC removed', `${real.slice(0, -65)}${mac}`],
    ['the TAB before the MAC doubled', `${real.slice(0, -64)}\t${mac}`],
    ['an extra field injected', `${head({ json: bobJson })}\t${json}\t${mac}`],
    ['a TAB injected into the claims', `${head({ json: json.slice(0, 5) + '\t' + json.slice(5) })}\t${mac}`],
    ['trailing newline', `${real}\n`],
    ['leading space', ` ${real}`],
    ['odd bytes in the claims', `${head({ json: json.replace('}', ',"x":"\u0001\u007f\ufffd"}') })}\t${mac}`],
    ['just the version tag', 'v3\t'],
    ['a short v3 envelope', `v3\t${gen}\t${exp}\t{}\t${mac.slice(0, 20)}`],
    ['a generation that does not fit', `${head({ gen: '99999999999' })}\t${mac}`],
    ['plain JSON', bobJson],
    ['garbage', 'x'.repeat(200)],
  ]
  for (const [name, forged] of cases) {
    assert.notEqual(forged, real, name)
    assert.equal(await read(forged), '28000', name)
  }
})

test('forgery (v2): an expired envelope, though genuinely sealed, is refused as expired', async () => {
  const c = await roleClient(ctx)
  try {
    await c.query(installClaimsParamSql(false), [ctx.seal(demoClaims(alice), 'authenticated', 'test', { expiresAt: now() - 1 })])
    const err = (await c.query('select auth.session()').then(() => null, (e: unknown) => e)) as { code?: string; message?: string } | null
    assert.equal(err?.code, '28000')
    assert.match(String(err?.message), /expired/)
  } finally {
    await c.end()
  }
})

test('an embedded NUL cannot even be installed, and leaves no identity', async () => {
  const real = ctx.seal(demoClaims(bob), 'authenticated', 'test')
  const c = await roleClient(ctx)
  try {
    const code = await sqlstate(() => c.query(installClaimsParamSql(false), [`${real.slice(0, 10)}\u0000${real.slice(10)}`]))
    assert.notEqual(code, 'no error')
    assert.equal((await c.query('select auth.session() as s')).rows[0].s, null)
  } finally {
    await c.end()
  }
})

test('envelopes of the formats before 0006 (v1, v2) are refused, even with a MAC by the current key', async () => {
  const key = ctx.sessionKey.key
  const exp = now() + 600
  const json = JSON.stringify(demoClaims(alice))
  const payload = Buffer.from(json).toString('base64url')
  const v2Body = `v2\t${exp}\t${json}\t`
  for (const [name, old] of [
    ['v1', `v1.${exp}.${payload}.${hmac(key, `v1.${exp}.${payload}`).toString('base64url')}`],
    ['v2', v2Body + hmac(key, v2Body).toString('hex')],
  ] as const) {
    assert.equal(await read(old), '28000', name)
  }
})

test('an envelope is bound to its context: another login role or another database refuses it', async () => {
  const key = ctx.sessionKey.key
  const exp = now() + 600
  const json = JSON.stringify(demoClaims(alice))
  // Genuinely sealed, but for anonymous (e.g. by a provider that may only run as anonymous): replayed in an
  // authenticated session, refused; in an anonymous session, accepted.
  const forAnonymous = v3(key, exp, json, { role: 'anonymous' })
  const c = await roleClient(ctx)
  try {
    await c.query(installClaimsParamSql(false), [forAnonymous])
    const err = (await c.query('select auth.user_id()').then(() => null, (e: unknown) => e)) as { code?: string; message?: string } | null
    assert.equal(err?.code, '28000')
    assert.match(String(err?.message), /another role/)
  } finally {
    await c.end()
  }
  const anon = await roleClient(ctx, 'anonymous')
  try {
    await anon.query(installClaimsParamSql(false), [forAnonymous])
    assert.equal((await anon.query('select auth.user_id() as s')).rows[0].s, alice.sub)
  } finally {
    await anon.end()
  }
  // Sealed for another database (with this key, as if the key were shared): refused.
  const other = v3(key, exp, json, { db: ctx.database + '_other' })
  assert.equal(await read(other, 'select auth.user_id() as s'), '28000')
  // SET ROLE changes current_user, not the login role: an authenticated envelope set by an owner session that
  // switched to authenticated is refused (the owner's tools log in as the role itself, as the gateway does).
  const owner = new pg.Client(db.url)
  await owner.connect()
  try {
    await owner.query('begin')
    await owner.query('set local role authenticated')
    await owner.query(installClaimsParamSql(true), [v3(key, exp, json)])
    assert.equal(await sqlstate(() => owner.query('select auth.session()')), '28000')
  } finally {
    await owner.query('rollback').catch(() => {})
    await owner.end()
  }
})

test('rotation: a retired key works until its grace ends, then never; an unknown generation never', async () => {
  const owner = new pg.Client(db.url)
  await owner.connect()
  try {
    const before = ctx.sessionKey
    const sealedBefore = ctx.seal(demoClaims(alice), 'authenticated', 'test')
    const next = await rotateSessionKey(owner, 3600)
    assert.equal(next, before.generation + 1)
    assert.equal(await ctx.reloadKey(), true)
    assert.equal(ctx.sessionKey.generation, next)
    // Within the grace: both the old envelope and a new one work.
    assert.equal(await read(sealedBefore, 'select auth.user_id() as s'), alice.sub)
    assert.equal(await read(ctx.seal(demoClaims(bob), 'authenticated', 'test'), 'select auth.user_id() as s'), bob.sub)
    // The grace cut short: the old key is retired at once.
    await rotateSessionKey(owner, 0)
    await ctx.reloadKey()
    assert.equal(await read(sealedBefore, 'select auth.user_id() as s'), '28000')
    assert.equal(await read(v3(before.key, now() + 600, JSON.stringify(demoClaims(bob)), { gen: 424242 })), '28000')
    assert.equal(await read(ctx.seal(demoClaims(bob), 'authenticated', 'test'), 'select auth.user_id() as s'), bob.sub)
    await assert.rejects(() => rotateSessionKey(owner, -1), /grace period/)
  } finally {
    await owner.end()
  }
})

test('auth.jwt_session_init installs a v3 envelope, bound to the login role, that auth.session() accepts', async () => {
  const c = await roleClient(ctx)
  try {
    const claims = { ...demoClaims(bob), note: 'a.b "c" 🙂' }
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(ctx.sessionKey.key)
    await c.query('select auth.jwt_session_init($1)', [token])
    const env = (await c.query(`select current_setting('pg_authorize.session') as e`)).rows[0].e as string
    assert.ok(env.startsWith(`v3\t${ctx.sessionKey.generation}\t`), env.slice(0, 10))
    assert.equal(env.split('\t')[3], 'authenticated')
    const s = (await c.query('select auth.session() as s')).rows[0].s as Record<string, unknown>
    assert.equal(s.note, claims.note)
    assert.equal(s.sub, bob.sub)
  } finally {
    await c.end()
  }
})

test('the check cannot be named by the restricted roles; only reached through auth.session()', async () => {
  const c = await roleClient(ctx)
  try {
    for (const q of [`select pgauthorize.session_v3('')`, `select * from pgauthorize.sealing_key`, `select pgauthorize.rotate_sealing_key('0')`]) {
      assert.equal(await sqlstate(() => c.query(q)), '42501', q)
    }
  } finally {
    await c.end()
  }
})

test('session settings a client controls change nothing: search_path with shadowing types, string and bytea styles', async () => {
  const owner = new pg.Client(db.url)
  await owner.connect()
  // Objects a client on Postgres 14 (CREATE on public) could make: a bytea = that is always true, and
  // crypto and text functions that answer what a forger would like. Made by the owner here, then dropped.
  await owner.query(`create function public.always(bytea, bytea) returns boolean language sql immutable as 'select true'`)
  await owner.query(`create operator public.= (leftarg = bytea, rightarg = bytea, function = public.always)`)
  await owner.query(`create function public.sha256(bytea) returns bytea language sql immutable as $$select '\\x00'::bytea$$`)
  await owner.query(`create function public.split_part(text, text, int) returns text language sql immutable as $$select '9999999999'$$`)
  await owner.query(`create function public.to_timestamp(bigint) returns timestamptz language sql immutable
    as $$select 'infinity'::timestamptz$$`)
  try {
    // On a fresh session (so the check is compiled and planned under them): the gateway installs the
    // envelope, then the client shadows every type the check names (temporary types come first on the
    // search path) and changes every setting that could change how the check reads.
    const fresh = async (envelope: string): Promise<unknown> => {
      const c = await roleClient(ctx)
      try {
        await c.query(installClaimsParamSql(false), [envelope])
        for (const t of ['text', 'bytea', 'int8', 'jsonb', 'timestamptz']) await c.query(`create type pg_temp.${t} as (x int)`)
        await c.query(`set search_path = pg_temp, public, pg_catalog; set standard_conforming_strings = off;
          set bytea_output = 'escape'; set client_encoding = 'LATIN1'; set timezone = 'Pacific/Kiritimati'`)
        const r = await c.query(`select auth.session()->>'sub' as sub,
          pg_catalog.encode(pg_catalog.convert_to(auth.session()->>'name', 'UTF8'), 'hex') as name`)
        return r.rows[0]
      } catch (err) {
        return (err as { code?: string }).code ?? String(err)
      } finally {
        await c.end()
      }
    }
    const genuine = ctx.seal({ ...demoClaims(alice), name: 'Zoë.' }, 'authenticated', 'test')
    assert.deepEqual(await fresh(genuine), { sub: alice.sub, name: Buffer.from('Zoë.').toString('hex') })
    const forged = v3(randomBytes(32), 9999999999, JSON.stringify({ ...demoClaims(bob), name: 'x' }))
    assert.equal(await fresh(forged), '28000')
    const expired = ctx.seal(demoClaims(alice), 'authenticated', 'test', { expiresAt: now() - 1 })
    assert.equal(await fresh(expired), '28000')
  } finally {
    await owner.query('drop operator public.= (bytea, bytea)')
    await owner.query(`drop function public.always(bytea, bytea), public.sha256(bytea),
      public.split_part(text, text, int), public.to_timestamp(bigint)`)
    await owner.end()
  }
})

test('a missing key fails closed: no envelope validates', async () => {
  const owner = new pg.Client(db.url)
  await owner.connect()
  try {
    await owner.query('begin')
    await owner.query('delete from pgauthorize.sealing_key')
    await owner.query(installClaimsParamSql(true), [ctx.seal(demoClaims(alice), 'postgres', 'test')])
    assert.equal(await sqlstate(() => owner.query('select auth.session()')), '28000')
  } finally {
    await owner.query('rollback').catch(() => {})
    await owner.end()
  }
})

test('in a parallel worker the check answers the same: claims for a valid envelope, 28000 for a forged one', async () => {
  const inWorker = async (envelope: string): Promise<unknown> => {
    const c = await roleClient(ctx)
    try {
      // Run the whole query in a parallel worker (the setting's name before Postgres 16).
      const major = Number((await c.query(`select current_setting('server_version_num')::int / 10000 as v`)).rows[0].v)
      await c.query(major >= 16 ? 'set debug_parallel_query = on' : 'set force_parallel_mode = on')
      await c.query(installClaimsParamSql(false), [envelope])
      const r = await c.query(`explain (costs off) select auth.session()->>'sub'`)
      assert.match(r.rows.map((x) => x['QUERY PLAN']).join('\n'), /Gather/)
      return (await c.query(`select auth.session()->>'sub' as s`)).rows[0].s
    } catch (err) {
      return (err as { code?: string }).code ?? String(err)
    } finally {
      await c.end()
    }
  }
  assert.equal(await inWorker(ctx.seal(demoClaims(alice), 'authenticated', 'test')), alice.sub)
  assert.equal(await inWorker(v3(randomBytes(32), now() + 600, JSON.stringify(demoClaims(bob)))), '28000')
})
