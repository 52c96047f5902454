/**
 * The v2 envelope (sql/0005_session_v2.sql, src/database/session.ts): claims round-trip exactly, every
 * alteration of a sealed envelope fails closed with SQLSTATE 28000, v1 envelopes from older gateways are
 * still accepted, and a MAC of one version never validates the other.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import pg from 'pg'
import { envelopeExpiry, installClaimsParamSql, sealClaims, type Claims } from '../../src/database/session.js'
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

/** A v2 envelope over any body, with any key: what a forger (or a test) can build. */
function v2(key: Buffer, exp: number | string, json: string): string {
  const body = `v2\t${exp}\t${json}\t`
  return body + hmac(key, body).toString('hex')
}

/** A v1 envelope, as gateways before migration 0005 sealed them. */
function v1(key: Buffer, exp: number, claims: Claims): string {
  const input = `v1.${exp}.${Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')}`
  return `${input}.${hmac(key, input).toString('base64url')}`
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

test('the gateway seals v2: version tag, expiry, raw JSON and a hex MAC, TAB-separated', () => {
  const claims = { sub: 'a.b', tenant_id: 't1' }
  const env = sealClaims(ctx.sessionKey, claims, { expiresAt: 2_000_000_000 })
  const [v, exp, json, mac, ...rest] = env.split('\t')
  assert.deepEqual([v, exp, rest], ['v2', '2000000000', []])
  assert.equal(json, JSON.stringify(claims))
  assert.match(mac!, /^[0-9a-f]{64}$/)
  assert.equal(mac, hmac(ctx.sessionKey.key, env.slice(0, -64)).toString('hex'))
  assert.equal(envelopeExpiry(env), 2_000_000_000)
  assert.equal(envelopeExpiry(v1(ctx.sessionKey.key, 1_900_000_000, claims)), 1_900_000_000)
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
  assert.deepEqual(await read(sealClaims(ctx.sessionKey, claims)), claims)
  assert.equal(await read(sealClaims(ctx.sessionKey, claims), 'select auth.user_id() as s'), claims.sub)
  // The per-row form (one call per row) answers the same on every row.
  const n = await read(sealClaims(ctx.sessionKey, claims),
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

test('forgery (v2): every alteration of a sealed envelope is refused with 28000', async () => {
  const exp = now() + 600
  const real = sealClaims(ctx.sessionKey, demoClaims(alice), { expiresAt: exp })
  const [, , json, mac] = real.split('\t') as [string, string, string, string]
  const bobJson = JSON.stringify(demoClaims(bob))
  const sameLength = json.replace(alice.sub, bob.sub.padEnd(alice.sub.length, 'x').slice(0, alice.sub.length))
  assert.equal(sameLength.length, json.length)
  const cases: [string, string][] = [
    ['claims swapped for another user', `v2\t${exp}\t${bobJson}\t${mac}`],
    ['claims altered, same length', `v2\t${exp}\t${sameLength}\t${mac}`],
    ['one claim byte changed', `v2\t${exp}\t${json.replace('"', "'")}\t${mac}`],
    ['expiry pushed out', `v2\t${exp + 86_400}\t${json}\t${mac}`],
    ['expiry with a leading zero', `v2\t0${exp}\t${json}\t${mac}`],
    ['version tag changed to v3', `v3\t${exp}\t${json}\t${mac}`],
    ['version tag in capitals', `V2\t${exp}\t${json}\t${mac}`],
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
    ['MAC sealed with another key', v2(randomBytes(32), exp, bobJson)],
    ['the TAB before the MAC removed', `${real.slice(0, -65)}${mac}`],
    ['the TAB before the MAC doubled', `${real.slice(0, -64)}\t${mac}`],
    ['an extra field injected', `v2\t${exp}\t${bobJson}\t${json}\t${mac}`],
    ['a TAB injected into the claims', `v2\t${exp}\t${json.slice(0, 5)}\t${json.slice(5)}\t${mac}`],
    ['trailing newline', `${real}\n`],
    ['leading space', ` ${real}`],
    ['odd bytes in the claims', `v2\t${exp}\t${json.replace('}', ',"x":"\u0001\u007f\ufffd"}')}\t${mac}`],
    ['just the version tag', 'v2\t'],
    ['a short v2 envelope', `v2\t${exp}\t{}\t${mac.slice(0, 20)}`],
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
    await c.query(installClaimsParamSql(false), [sealClaims(ctx.sessionKey, demoClaims(alice), { expiresAt: now() - 1 })])
    const err = (await c.query('select auth.session()').then(() => null, (e: unknown) => e)) as { code?: string; message?: string } | null
    assert.equal(err?.code, '28000')
    assert.match(String(err?.message), /expired/)
  } finally {
    await c.end()
  }
})

test('an embedded NUL cannot even be installed, and leaves no identity', async () => {
  const real = sealClaims(ctx.sessionKey, demoClaims(bob))
  const c = await roleClient(ctx)
  try {
    const code = await sqlstate(() => c.query(installClaimsParamSql(false), [`${real.slice(0, 10)}\u0000${real.slice(10)}`]))
    assert.notEqual(code, 'no error')
    assert.equal((await c.query('select auth.session() as s')).rows[0].s, null)
  } finally {
    await c.end()
  }
})

test('v1 envelopes from older gateways are still accepted, and still checked', async () => {
  const key = ctx.sessionKey.key
  const exp = now() + 600
  const claims = { ...demoClaims(alice), note: 'v1 still works' }
  assert.deepEqual(await read(v1(key, exp, claims)), claims)
  const real = v1(key, exp, claims)
  const [v, e, payload, mac] = real.split('.') as [string, string, string, string]
  const bobPayload = Buffer.from(JSON.stringify(demoClaims(bob))).toString('base64url')
  for (const forged of [
    `${v}.${e}.${bobPayload}.${mac}`,
    `${v}.${exp + 86_400}.${payload}.${mac}`,
    `v1.${exp}.${payload}.${mac.slice(0, -1)}`,
    v1(randomBytes(32), exp, demoClaims(bob)),
    v1(key, now() - 1, claims),
    `v9.${e}.${payload}.${hmac(key, `v9.${e}.${payload}`).toString('base64url')}`,
  ]) {
    assert.equal(await read(forged), '28000', forged.slice(0, 30))
  }
})

test('v1/v2 confusion: a MAC of one version never validates an envelope of the other', async () => {
  const key = ctx.sessionKey.key
  const exp = now() + 600
  const json = JSON.stringify(demoClaims(bob))
  const payload = Buffer.from(json).toString('base64url')
  // A genuine v1 envelope's MAC (covering 'v1.<exp>.<payload>'), carried in a v2 envelope, raw or as hex.
  const v1Mac = hmac(key, `v1.${exp}.${payload}`)
  // A genuine v2 envelope's MAC (covering 'v2 TAB <exp> TAB <json> TAB'), carried in a v1 envelope.
  const v2Mac = hmac(key, `v2\t${exp}\t${json}\t`)
  for (const [name, forged] of [
    ['v1 MAC in a v2 envelope (hex)', `v2\t${exp}\t${json}\t${v1Mac.toString('hex')}`],
    ['v1 MAC in a v2 envelope with the v1 payload', `v2\t${exp}\t${payload}\t${v1Mac.toString('hex')}`],
    ['a v1 envelope relabelled v2', `v2.${exp}.${payload}.${v1Mac.toString('base64url')}`],
    ['v2 MAC in a v1 envelope (base64url)', `v1.${exp}.${payload}.${v2Mac.toString('base64url')}`],
    ['a v2 envelope relabelled v1', `v1\t${exp}\t${json}\t${v2Mac.toString('hex')}`],
    ['a v2 envelope with dots for TABs', `v2.${exp}.${json}.${v2Mac.toString('hex')}`],
  ] as const) {
    assert.equal(await read(forged), '28000', name)
  }
  // The genuine ones, for contrast: each is accepted in its own format.
  assert.deepEqual(await read(`v2\t${exp}\t${json}\t${v2Mac.toString('hex')}`), demoClaims(bob))
  assert.deepEqual(await read(`v1.${exp}.${payload}.${v1Mac.toString('base64url')}`), demoClaims(bob))
})

test('auth.jwt_session_init installs a v2 envelope that auth.session() accepts', async () => {
  const c = await roleClient(ctx)
  try {
    const claims = { ...demoClaims(bob), note: 'a.b "c" 🙂' }
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(ctx.sessionKey.key)
    await c.query('select auth.jwt_session_init($1)', [token])
    const env = (await c.query(`select current_setting('pg_authorize.session') as e`)).rows[0].e as string
    assert.ok(env.startsWith('v2\t'), env.slice(0, 10))
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
    for (const q of [`select pgauthorize.session_v2('')`, `select pgauthorize.session_v1('')`]) {
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
    const genuine = sealClaims(ctx.sessionKey, { ...demoClaims(alice), name: 'Zoë.' })
    assert.deepEqual(await fresh(genuine), { sub: alice.sub, name: Buffer.from('Zoë.').toString('hex') })
    const forged = `v2\t9999999999\t${JSON.stringify({ ...demoClaims(bob), name: 'x' })}\t${'0'.repeat(64)}`
    assert.equal(await fresh(forged), '28000')
    const expired = sealClaims(ctx.sessionKey, demoClaims(alice), { expiresAt: now() - 1 })
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
    await owner.query('delete from pgauthorize.secret')
    await owner.query('set local role authenticated')
    await owner.query(installClaimsParamSql(true), [sealClaims(ctx.sessionKey, demoClaims(alice))])
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
  assert.equal(await inWorker(sealClaims(ctx.sessionKey, demoClaims(alice))), alice.sub)
  assert.equal(await inWorker(`v2\t${now() + 600}\t${JSON.stringify(demoClaims(bob))}\t${'0'.repeat(64)}`), '28000')
})
