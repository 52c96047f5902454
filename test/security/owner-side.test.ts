/**
 * The owner side of the gateway, attacked from the client side (issue 14, items 2, 4 and 5):
 *
 * - a key rotation reaches running gateways without a restart: HTTP seals with the new key at once, and live
 *   wire sessions (TCP and WebSocket) are resealed at their next idle moment, so they keep working after the
 *   old key retires, even one that was inside a transaction when the rotation happened;
 * - a flood of NOTIFYs, from a signed-in user, on the gateway's channels, opens no owner connection and costs
 *   at most a couple of reloads;
 * - a request that names a database the gateway does not serve, or carries no well-formed token, never
 *   makes the gateway log in as the owner, and every unserved database gets one uniform answer.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { setup } from '../../src/database/setup.js'
import { alice, DATABASE, startStack, until, type Stack } from './stack.js'

let s: Stack
let aliceToken: string
before(async () => {
  // `secdb2` is served too, but pg-authorize is never set up in it.
  s = await startStack({ poolSize: 2, gateway: { databases: { databases: ['secdb2'] } } })
  await s.owner.query('create database secdb2')
  aliceToken = await s.token(s.claimsOf(alice))
})
after(() => s?.close())

const generationOf = (envelope: unknown) => Number(String(envelope).split('\t')[1])
const events = (kind: string) => s.gatewayEvents.filter((e) => e.kind === kind).length

test('a key rotation reaches HTTP at once and reseals live wire sessions, also one that was in a transaction', async () => {
  const tcp = await s.session('tcp', aliceToken)
  const ws = await s.session('ws', aliceToken)
  const inTx = await s.session('tcp', aliceToken)
  try {
    const before = await s.owner.query<{ g: number }>('select generation as g from pgauthorize.sealing_key where retire_at is null')
    const old = before.rows[0]!.g
    for (const session of [tcp, ws, inTx]) {
      const r = await session.query(`select current_setting('pg_authorize.session') as e, auth.user_id() as sub`)
      assert.ok(r.ok, JSON.stringify(r))
      assert.equal(generationOf(r.rows[0]!.e), old)
    }
    assert.ok((await inTx.query('begin')).ok)
    const resealed = events('session-resealed')

    // The operator's command: `pg-authorize setup --rotate-secret --grace 60`.
    const result = await setup(s.ownerUrl, { rotateSecret: true, rotateGraceSeconds: 60 })
    assert.equal(result.keyGeneration, old + 1)

    // The idle sessions are resealed without sending anything; the one in a transaction is not touched yet
    // (its envelope still works: the old key has 60 s of grace).
    await until(() => events('session-resealed') >= resealed + 2, 'two idle sessions resealed')
    const mid = await inTx.query(`select current_setting('pg_authorize.session') as e, auth.user_id() as sub`)
    assert.ok(mid.ok, JSON.stringify(mid))
    assert.equal(generationOf(mid.rows[0]!.e), old, 'nothing is injected inside a transaction')
    assert.equal(mid.rows[0]!.sub, alice.sub)
    assert.ok((await inTx.query('commit')).ok)
    await until(() => events('session-resealed') >= resealed + 3, 'the session resealed once its transaction ended')

    // Now retire the old key at once: every session still works, on the new key; so does HTTP.
    await s.owner.query(`update pgauthorize.sealing_key set retire_at = now() where generation = $1`, [old])
    for (const [name, session] of [['tcp', tcp], ['ws', ws], ['tcp after a transaction', inTx]] as const) {
      const r = await session.query(`select current_setting('pg_authorize.session') as e, auth.user_id() as sub, (select count(*)::int from users) as n`)
      assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`)
      assert.equal(generationOf(r.rows[0]!.e), old + 1, name)
      assert.equal(r.rows[0]!.sub, alice.sub, name)
      assert.equal(r.rows[0]!.n, 1, `${name}: Alice sees her own row only`)
    }
    const http = await s.run('http', aliceToken, `select current_setting('pg_authorize.session', true) as e, auth.user_id() as sub`)
    assert.ok(http.ok, JSON.stringify(http))
    assert.equal(generationOf(http.rows[0]!.e), old + 1)
    assert.equal(events('reseal-failed'), 0)
  } finally {
    await Promise.all([tcp.close(), ws.close(), inTx.close()])
  }
})

test('a NOTIFY flood from a signed-in user opens no owner connection and costs at most two reloads a burst', async () => {
  const logins = s.ownerLogins()
  const reloadsBefore = await reloads()
  for (const channel of ['pg_authorize_providers', 'pg_authorize_keys', 'anything_else']) {
    const r = await s.run('http', aliceToken, `select count(pg_notify($1, g::text)) as n from generate_series(1, 200) g`, [channel])
    assert.ok(r.ok, JSON.stringify(r))
  }
  // Give the gateway time to act on all 600 notifications (it would open connections within milliseconds).
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(s.ownerLogins() - logins, 0, 'owner logins caused by the flood')
  const reloads2 = await reloads()
  assert.ok(reloads2 - reloadsBefore <= 6, `reloads for 3 bursts: ${reloads2 - reloadsBefore}`)
  // The owner connections the gateway holds stay bounded: the watch, plus the small owner pool.
  const held = await s.owner.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where usename = 'postgres' and datname = $1 and pid <> pg_backend_pid()`,
    [DATABASE],
  )
  assert.ok(held.rows[0]!.n <= 3, `owner connections held: ${held.rows[0]!.n}`)
})

/** Reloads the default database's watch has run, read through the gateway's own stats. */
async function reloads(): Promise<number> {
  return (await s.gateway.databases.open()).watch.reloads
}

test('requests naming an unserved database, or with no well-formed token, never log in as the owner; one uniform answer', async () => {
  const logins = s.ownerLogins()
  const answers = new Set<string>()
  for (const database of ['postgres', 'template1', 'no_such_database', 'secdb_other']) {
    for (const token of [undefined, 'garbage', aliceToken]) {
      const res = await fetch(`${s.gateway.url}/sql`, {
        method: 'POST',
        headers: {
          'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${database}`,
          'Content-Type': 'application/json',
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query: 'select 1', params: [] }),
      })
      const body = (await res.json()) as { code?: string; message?: string }
      if (token === aliceToken) answers.add(`${res.status} ${body.code} ${body.message}`)
      else assert.ok(res.status >= 400, `${database} without a valid token: ${res.status}`)
    }
    const wire = await s.run('tcp', aliceToken, 'select 1', [], undefined).catch((e: unknown) => ({ ok: false, code: String(e) }))
    assert.ok(wire.ok, 'the served database still works')
  }
  // Over the wire too: the startup names the database.
  const pg = (await import('pg')).default
  for (const database of ['postgres', 'no_such_database']) {
    const c = new pg.Client({ host: '127.0.0.1', port: s.gateway.pgPort, user: 'authenticated', database, password: aliceToken })
    c.on('error', () => {})
    const err = (await c.connect().then(() => null, (e: unknown) => e)) as { code?: string; message?: string } | null
    assert.ok(err, `${database}: connect should fail`)
    answers.add(`wire ${err.code} ${err.message}`)
    await c.end().catch(() => {})
  }
  assert.equal(answers.size, 2, `one answer per transport, whatever the database: ${[...answers].join(' | ')}`)
  for (const a of answers) assert.match(a, /3D000 this gateway does not serve the requested database/)
  assert.equal(s.ownerLogins() - logins, 0, 'owner logins caused by requests for unserved databases')
})

test('a served database is opened only for a well-formed token, and a failed open is remembered briefly', async () => {
  const logins = s.ownerLogins()
  const restricted = s.restrictedLogins()
  const http = (token: string | undefined) => s.http(token, { query: 'select 1', params: [] }, {
    'Neon-Connection-String': 'postgresql://authenticated@db.localtest.me/secdb2',
  })
  const pg = (await import('pg')).default
  const wire = async (token: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port: s.gateway.pgPort, user: 'authenticated', database: 'secdb2', password: token })
    c.on('error', () => {})
    const err = (await c.connect().then(() => null, (e: unknown) => e)) as { code?: string } | null
    await c.end().catch(() => {})
    return err?.code
  }
  for (const token of [undefined, 'garbage', 'a.b', '...', 'a.b.c.d']) {
    assert.equal((await http(token)).ok, false)
    if (token) assert.equal(await wire(token), '28P01')
  }
  assert.equal(s.ownerLogins() - logins, 0, 'owner logins for requests without a well-formed token')
  // A well-formed token makes the gateway look (once): pg-authorize is not set up there. The answer is then
  // remembered for a few seconds, so a flood of such requests costs one owner login, not one each.
  for (let i = 0; i < 10; i++) {
    const r = await http(aliceToken)
    assert.equal(r.ok, false)
    assert.equal(r.ok === false && r.code, '55000')
  }
  assert.equal(s.ownerLogins() - logins, 1, 'one owner login for ten requests')
  assert.equal(s.restrictedLogins() - restricted, 0)
})
