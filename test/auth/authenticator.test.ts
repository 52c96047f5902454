/**
 * Authenticator.authenticate, the one place a JWT becomes an identity: the sealed envelope of an HTTP request is
 * reused for the same verified token while it has at least half its life left, never across databases or
 * transports, and a reused envelope is as good as a fresh one in Postgres.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { installClaimsParamSql } from '../../src/database/session.js'
import { Authenticator } from '../../src/auth/authenticator.js'
import { generateSigningKey, type SigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

let db: TestDatabase
let key: SigningKey
const opened: Authenticator[] = []

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  key = await generateSigningKey({ alg: 'ES256' })
  await withOwner(db.url, (c) => addProvider(c, { name: 'app', jwks: { keys: [key.publicJwk as Record<string, unknown>] } }))
})
after(async () => {
  for (const d of opened) await d.close().catch(() => {})
  await db?.close()
})

/** The authenticator's clock: tests move it instead of sleeping. */
let clock = Date.now()

function databases(httpClaimsTtlSeconds?: number): Authenticator {
  const d = new Authenticator({ ownerUrl: db.url, now: () => clock, ...(httpClaimsTtlSeconds ? { httpClaimsTtlSeconds } : {}) })
  opened.push(d)
  return d
}

const token = (sub: string) => signToken({ privateJwk: key.privateJwk, sub, expiresIn: '1h' })
const database = () => new URL(db.url).pathname.slice(1)

test('an HTTP request reuses the envelope of the same verified token; other tokens and transports get their own', async () => {
  const d = databases()
  const alice = await token('alice')
  const req = { token: alice, role: 'authenticated', database: database(), transport: 'http' as const }
  const first = await d.authenticate(req)
  // A fresh seal a second later would carry a later expiry: equal envelopes mean it was reused.
  clock += 1_100
  const second = await d.authenticate(req)
  assert.ok(first.envelope)
  assert.equal(second.envelope, first.envelope, 'sealed once')
  assert.equal(second.expiresAt, first.expiresAt)
  const bob = await d.authenticate({ ...req, token: await token('bob') })
  assert.notEqual(bob.envelope, first.envelope)
  const wire = await d.authenticate({ ...req, transport: 'tcp' })
  assert.ok(wire.expiresAt! > first.expiresAt!, 'a wire session gets its own, longer-lived envelope')

  // The reused envelope works in Postgres exactly as a fresh one: it is Alice, and nobody else.
  const c = new pg.Client(await d.connectionConfig(database(), 'authenticated'))
  await c.connect()
  try {
    await c.query('begin')
    await c.query(installClaimsParamSql(true), [second.envelope])
    assert.equal((await c.query('select auth.user_id() as u')).rows[0].u, 'alice')
    await c.query('rollback')
  } finally {
    await c.end()
  }
})

test('an envelope past half its life is sealed again', async () => {
  const d = databases(2)
  const req = { token: await token('alice'), role: 'authenticated', database: database(), transport: 'http' as const }
  const first = await d.authenticate(req)
  // Envelope expiry is whole seconds, now + 2: after 1.1 s less than half of it is left.
  clock += 1_100
  const later = await d.authenticate(req)
  assert.notEqual(later.envelope, first.envelope)
  assert.ok(later.expiresAt! > first.expiresAt!)
})
