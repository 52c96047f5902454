/**
 * The guide's journey end to end: `dev`'s demo through the real gateway with the real
 * `@neondatabase/serverless` and drizzle-orm `neon-http`, real JWTs verified against the served JWKS.
 * Users see only their rows; every bad identity ends in a `NeonDbError` with SQLSTATE 28000.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { NeonDbError } from '@neondatabase/serverless'
import { drizzle } from 'drizzle-orm/neon-http'
import { sql as dsql } from 'drizzle-orm'
import { pgTable, text, uuid } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { generateSigningKey } from '../../src/keys/generate.js'
import { addProvider, removeProvider } from '../../src/database/providers.js'
import { signToken } from '../../src/tokens/sign.js'
import { alice, bob, rejection, startE2E, type E2E } from './harness.js'
import { eventually } from '../helpers/wait.js'

const users = pgTable('users', { id: uuid('id').primaryKey(), tenantId: uuid('tenant_id').notNull(), name: text('name').notNull() })
const tenants = pgTable('tenants', { id: uuid('id').primaryKey(), name: text('name').notNull() })

let e: E2E
before(async () => {
  e = await startE2E()
})
after(() => e?.close())

test('the demo isolates users: each token sees its own user and tenant, drizzle and the plain client alike', async () => {
  for (const user of [alice, bob]) {
    const sql = e.sql(await e.token(user))
    assert.deepEqual(await sql`select id, name from users`, [{ id: user.sub, name: user.name }])
    assert.deepEqual(await sql`select id, name from tenants`, [{ id: user.tenantId, name: user.tenantName }])
    assert.deepEqual(await sql`select auth.user_id() as sub, current_user as role`, [{ sub: user.sub, role: 'authenticated' }])
  }
  // The owner sees both: the rows are there, RLS hides them.
  assert.equal((await e.owner.query('select count(*)::int as n from users')).rows[0].n, 2)
})

test('both ways of passing the token: $withAuth per query, and authToken as an async function', async () => {
  const [aliceToken, bobToken] = [await e.token(alice), await e.token(bob)]
  let calls = 0
  const db = drizzle(e.sql(async () => (calls++, aliceToken)))
  assert.deepEqual(await db.select({ id: users.id, name: users.name }).from(users), [{ id: alice.sub, name: 'Alice' }])
  assert.ok(calls >= 1, 'the async authToken function was called')

  const asBob = db.$withAuth(bobToken)
  assert.deepEqual(await asBob.select({ id: users.id }).from(users), [{ id: bob.sub }])
  assert.deepEqual(await asBob.select({ name: tenants.name }).from(tenants), [{ name: 'Other Company' }])
  // $withAuth also takes a function, and the base instance keeps its own token.
  assert.deepEqual(await db.$withAuth(async () => bobToken).execute(dsql`select auth.user_id() as sub`).then((r) => r.rows), [{ sub: bob.sub }])
  assert.deepEqual(await db.select({ id: users.id }).from(users), [{ id: alice.sub }])

  // A write through RLS: Bob may rename himself, not Alice.
  await asBob.update(users).set({ name: 'Bob B.' }).where(dsql`true`)
  const names = await e.owner.query('select name from users order by name')
  assert.deepEqual(names.rows.map((r) => r.name), ['Alice', 'Bob B.'])
  await e.owner.query(`update users set name = 'Bob' where id = $1`, [bob.sub])
})

/** The NeonDbError a query with this token (or none) ends in; asserts the class and SQLSTATE 28000. */
async function refused(authToken: string | undefined, url?: string): Promise<string> {
  const err = await rejection(e.sql(authToken, url)`select id from users`)
  assert.ok(err instanceof NeonDbError, `expected NeonDbError, got ${err?.constructor?.name}: ${err?.message}`)
  assert.equal(err.code, '28000', err.message)
  // The message says what failed, and never echoes the token.
  if (authToken) assert.ok(!err.message.includes(authToken.split('.')[2]!), 'the token is not echoed')
  return err.message
}

test('a forged, expired, unknown-kid or missing token each end in a NeonDbError with code 28000', async () => {
  const good = await e.token(alice)
  const [h, p, s] = good.split('.') as [string, string, string]
  // Alter the signature in its middle (the last character may carry only padding bits).
  const i = Math.floor(s.length / 2)
  const alteredSig = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`
  assert.match(await refused(alteredSig), /signature/i)
  // Bob's claims under Alice's signature.
  const bobPayload = (await e.token(bob)).split('.')[1]
  await refused(`${h}.${bobPayload}.${s}`)
  // Expired an hour ago (well past the 30 s leeway).
  assert.match(await refused(await e.token(alice, { now: Date.now() - 2 * 3600_000, expiresIn: '1h' })), /expired/i)
  // A well-formed token from a key the provider does not publish.
  const stranger = await generateSigningKey({ alg: 'RS256', kid: 'not-in-the-jwks' })
  await refused(await signToken({ privateJwk: stranger.privateJwk, sub: alice.sub, claims: { tenant_id: alice.tenantId } }))
  // A stranger's key reusing the published kid fails on the signature.
  await refused(await signToken({ privateJwk: { ...stranger.privateJwk, kid: e.privateJwk.kid }, sub: alice.sub }))
  assert.match(await refused(undefined), /missing authentication credentials/)
  await refused('not-a-jwt')
})

test('a connection string naming the owner or an unknown role is refused, even with a valid token', async () => {
  const token = await e.token(alice)
  assert.match(await refused(token, 'postgresql://postgres@db.localtest.me/neondb'), /not a restricted role/)
  await refused(token, 'postgresql://pg_read_all_data@db.localtest.me/neondb')
})

test('a token for a role its provider does not allow is refused; the same token works for an allowed role', async () => {
  const partner = await generateSigningKey({ alg: 'ES256', kid: 'partner-key' })
  await addProvider(e.owner, { name: 'partner', jwks: { keys: [partner.publicJwk] }, roles: ['anonymous'] })
  try {
    const token = await signToken({ privateJwk: partner.privateJwk, sub: 'partner-user' })
    const anonUrl = 'postgresql://anonymous@db.localtest.me/neondb'
    // The gateway picks the new provider up live; wait until it accepts the token for `anonymous`.
    assert.ok(await eventually(async () => (await e.sql(token, anonUrl)`select 1 as one`)[0]?.one === 1), 'provider picked up')
    assert.deepEqual(await e.sql(token, anonUrl)`select auth.user_id() as sub, current_user as role`, [{ sub: 'partner-user', role: 'anonymous' }])
    await refused(token)
    // And `local`'s tokens still work for authenticated.
    assert.equal((await e.sql(await e.token(alice))`select id from users`).length, 1)
  } finally {
    await removeProvider(e.owner, 'partner')
  }
})

test('the wire protocol through startGateway: pg with the JWT as password sees only its rows', async () => {
  for (const user of [alice, bob]) {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: e.dev.gateway.pgPort!,
      user: 'authenticated',
      database: 'neondb',
      password: await e.token(user),
    })
    await c.connect()
    try {
      const r = await c.query('select id, tenant_id from users')
      assert.deepEqual(r.rows, [{ id: user.sub, tenant_id: user.tenantId }])
    } finally {
      await c.end()
    }
  }
  const bad = new pg.Client({ host: '127.0.0.1', port: e.dev.gateway.pgPort!, user: 'authenticated', database: 'neondb', password: 'x.y.z' })
  const err = await rejection(bad.connect())
  // Over the wire a bad JWT is a bad password: invalid_authorization_specification's class 28.
  assert.ok(['28000', '28P01'].includes(String(err.code)), String(err.code))
  await bad.end().catch(() => {})
})
