/**
 * Claims cannot be forged through `/sql` (security properties 1 to 4): the database side's forgery
 * catalogue (test/database/forgery.test.ts), sent by a client holding a real token for Alice through the
 * real Neon client, as single queries and as batches whose first statements try to change who the next
 * ones run as. Every attempt fails closed: an error, or Alice's own rows at most, never Bob's and never the
 * owner's rights.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import type { NeonQueryFunction } from '@neondatabase/serverless'
import { demoClaims } from '../../src/dev/demo.js'
import { alice, bob, mapLimit, rejection, startE2E, type E2E } from './harness.js'

let e: E2E
let sql: NeonQueryFunction<false, false>
before(async () => {
  e = await startE2E()
  sql = e.sql(await e.token(alice))
})
after(() => e?.close())

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const future = () => Math.floor(Date.now() / 1000) + 600
const hs256 = (key: Buffer, header: object, payload: object) => {
  const signing = `${b64(header)}.${b64(payload)}`
  return `${signing}.${createHmac('sha256', key).update(signing).digest('base64url')}`
}

/**
 * Runs `forge` then `select id from users` in one batch (one transaction, one connection) as Alice.
 * Returns the SQLSTATE it failed with, or the ids it saw.
 */
async function batchSees(forge: string[]): Promise<string | string[]> {
  try {
    const results = await sql.transaction((q) => [...forge.map((f) => q.query(f)), q`select id from users order by id`])
    return (results.at(-1) as { id: string }[]).map((r) => r.id)
  } catch (err) {
    return String((err as { code?: string }).code)
  }
}

function assertFailsClosed(seen: string | string[], what: string) {
  if (typeof seen === 'string') {
    assert.ok(['28000', '42501', '22023', '55P02', '0A000', '25001'].includes(seen), `${what}: unexpected error ${seen}`)
  } else {
    assert.ok(!seen.includes(bob.sub), `${what}: saw Bob's row`)
    assert.ok(seen.every((id) => id === alice.sub), `${what}: saw ${JSON.stringify(seen)}`)
  }
}

test('a batch whose first query sets claims for the second gets an error or Alice\'s rows, never Bob\'s', async () => {
  const bobJson = JSON.stringify(demoClaims(bob)).replace(/'/g, "''")
  const plainForged = `v1.${future()}.${b64(demoClaims(bob))}.${'A'.repeat(43)}`
  // What each attempt must end in: a forged envelope is refused (28000), clearing it leaves no identity
  // (no rows), and settings pg-authorize never reads change nothing (Alice's own row).
  const attempts: [string, string | string[]][] = [
    [`select set_config('pg_authorize.session', '${bobJson}', true)`, '28000'],
    [`select set_config('pg_authorize.session', '${bobJson}', false)`, '28000'],
    [`select set_config('pg_authorize.session', '${plainForged}', true)`, '28000'],
    [`set local pg_authorize.session = '${plainForged}'`, '28000'],
    [`select set_config('request.jwt.claims', '${bobJson}', true)`, [alice.sub]],
    [`select set_config('request.jwt.claim.sub', '${bob.sub}', true)`, [alice.sub]],
    [`set pg_session_jwt.jwt = '${b64({ alg: 'none' })}.${b64({ sub: bob.sub })}.'`, [alice.sub]],
    [`select set_config('pg_authorize.session', '', true)`, []],
    [`reset pg_authorize.session`, []],
    [`reset all`, []],
  ]
  for (const [forge, expected] of attempts) assert.deepEqual(await batchSees([forge]), expected, forge)
  // The same as separate single queries: nothing carries over to the next request.
  for (const [forge] of attempts) {
    await sql.query(forge).catch(() => {})
    assert.deepEqual((await sql`select id from users`).map((r) => r.id), [alice.sub], forge)
  }
})

test('Alice\'s own sealed claims, read back and tampered with (payload swapped, expiry pushed out), are rejected', async () => {
  const [{ env }] = (await sql`select current_setting('pg_authorize.session', true) as env`) as [{ env: string | null }]
  assert.ok(env, 'the envelope is visible to its own request (it is not a secret; its key is)')
  const [v, gen, exp, role, provider, database, json, mac] = env.split('\t') as [string, string, string, string, string, string, string, string]
  assert.equal(v, 'v3')
  assert.equal(role, 'authenticated')
  assert.deepEqual(JSON.parse(json).sub, alice.sub)
  const swapped = [v, gen, exp, role, provider, database, JSON.stringify({ ...demoClaims(bob), exp: Number(exp) }), mac].join('\t')
  const extended = [v, gen, Number(exp) + 86_400, role, provider, database, json, mac].join('\t')
  const asAnonymous = [v, gen, exp, 'anonymous', provider, database, json, mac].join('\t')
  const otherKey = [v, gen, exp, role, provider, database, JSON.stringify(demoClaims(bob)), createHmac('sha256', randomBytes(32)).update('x').digest('hex')].join('\t')
  for (const forged of [swapped, extended, asAnonymous, otherKey]) {
    const seen = await batchSees([`select set_config('pg_authorize.session', '${forged}', true)`])
    assert.equal(seen, '28000', forged.slice(0, 20))
  }
  // Replaying the genuine envelope later in the same batch is harmless: it is Alice's own.
  assert.deepEqual(await batchSees([`select set_config('pg_authorize.session', '${env}', true)`]), [alice.sub])
})

test('auth.jwt_session_init with forged tokens raises, and the batch sees nothing of Bob\'s', async () => {
  const bobClaims = { ...demoClaims(bob), exp: future() }
  for (const [name, token] of [
    ['signed by another key', hs256(randomBytes(32), { alg: 'HS256' }, bobClaims)],
    ['alg none', `${b64({ alg: 'none' })}.${b64(bobClaims)}.`],
    ['a provider token (RS256, not the database key)', await e.token(bob)],
  ] as const) {
    const seen = await batchSees([`select auth.jwt_session_init('${token}')`])
    assert.equal(seen, '28000', name)
    const single = await rejection(sql`select auth.jwt_session_init(${token})`)
    assert.equal(single.code, '28000', name)
  }
})

test('the private schema cannot be read or written through /sql', async () => {
  for (const q of [
    'select * from pgauthorize.sealing_key',
    'select * from pgauthorize.role_credentials',
    'select * from pgauthorize.providers',
    `insert into pgauthorize.providers (name, jwks_url, algorithms, roles) values ('evil', 'http://evil', '{RS256}', '{authenticated}')`,
  ]) {
    const err = await rejection(sql.query(q))
    assert.equal(err.code, '42501', q)
  }
})

test('RESET ROLE, SET ROLE postgres and friends give no privilege: the SQL runs logged in as authenticated', async () => {
  const [who] = await sql.transaction((q) => [
    q`select current_user as cu, session_user as su, (select rolsuper from pg_roles where rolname = current_user) as sup`,
  ])
  assert.deepEqual(who, [{ cu: 'authenticated', su: 'authenticated', sup: false }])
  const [, afterReset, rows] = await sql.transaction((q) => [q`reset role`, q`select current_user as cu`, q`select id from users`])
  assert.deepEqual(afterReset, [{ cu: 'authenticated' }])
  assert.deepEqual(rows, [{ id: alice.sub }])
  for (const q of [
    'set role postgres',
    'set session authorization postgres',
    'alter table users disable row level security',
    'alter table users no force row level security',
    'drop policy "crud-authenticated-policy-select" on users',
    'create role evil superuser',
    'grant postgres to authenticated',
    `create function public.sha256(bytea) returns bytea language sql as 'select $1'`,
    `create function auth.session() returns jsonb language sql as $$select '{}'::jsonb$$`,
  ]) {
    assertFailsClosed(await batchSees([q]), q)
    const err = await rejection(sql.query(q))
    assert.equal(err.code, '42501', q)
  }
})

test('shadowing through pg_temp and search_path in a batch does not forge claims', async () => {
  const forged = `v1.${future()}.${b64(demoClaims(bob))}.AAAA`
  const seen = await batchSees([
    `create function pg_temp.session() returns jsonb language sql as $$select '{"sub":"${bob.sub}"}'::jsonb$$`,
    `create function pg_temp.split_part(text, text, int) returns text language sql as $$select 'v1'$$`,
    `create temp table secret (id int, key bytea, ipad bytea, opad bytea)`,
    `set local search_path = pg_temp, public, pg_catalog`,
    `select set_config('pg_authorize.session', '${forged}', true)`,
  ])
  assert.equal(seen, '28000')
})

test('session state set by one request never reaches another (pooled connections are reset)', async () => {
  // Alice leaves junk in session-level settings on whichever connection she gets, many times over.
  const aliceQueries = Array.from({ length: 40 }, (_, i) => i)
  const bobSql = e.sql(await e.token(bob))
  const results = await mapLimit(aliceQueries, 20, async (i) => {
    if (i % 2 === 0) {
      await sql.query(`select set_config('pg_authorize.session', 'v1.${future()}.${b64(demoClaims(alice))}.x', false), set_config('app.note', 'alice-was-here', false)`)
      return undefined
    }
    const [row] = await bobSql`select auth.user_id() as sub, current_setting('app.note', true) as note, (select array_agg(id) from users) as ids`
    return row
  })
  const seen = results.filter((r): r is NonNullable<typeof r> => r !== undefined)
  assert.equal(seen.length, 20)
  // RESET ALL leaves a placeholder setting defined but empty: '' on a reused connection, null on a fresh one.
  for (const row of seen) assert.deepEqual({ ...row, note: row.note || null }, { sub: bob.sub, note: null, ids: [bob.sub] })
})
