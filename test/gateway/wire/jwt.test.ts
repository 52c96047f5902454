/**
 * Real JWTs through the wire gateway on the demo: a Verifier, `setup`'s restricted roles logging in with
 * their stored passwords, and sealed claims. psql and pg see exactly the rows the token's claims allow;
 * forged, expired and wrongly signed tokens, and roles the provider does not allow, get FATAL 28P01 and
 * open nothing upstream; the database side's forgery attempts fail when sent through psql.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import pg from 'pg'
import type { DatabaseContext } from '../../../src/database/context.js'
import { envelopeExpiry } from '../../../src/database/session.js'
import { DEMO_USERS, demoClaims } from '../../../src/dev/demo.js'
import { createWireGateway, type WireGateway } from '../../../src/gateway/wire/index.js'
import { Verifier } from '../../../src/verify/index.js'
import type { TestDatabase } from '../../helpers/postgres.js'
import { createDemoDatabase } from '../../helpers/roles.js'
import { needs, PSQL } from '../../helpers/requires.js'

let db: TestDatabase
let ctx: DatabaseContext
let verifier: Verifier
let gateway: WireGateway
let port: number
let key: CryptoKey
let otherKey: CryptoKey
let admin: pg.Client
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]

before(async () => {
  ;({ db, ctx } = await createDemoDatabase())
  const pair = await generateKeyPair('ES256')
  key = pair.privateKey
  otherKey = (await generateKeyPair('ES256')).privateKey
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  verifier = new Verifier({ providers: [{ name: 'app', jwks: { keys: [jwk] }, roles: ['authenticated'] }] })
  gateway = createWireGateway({
    // The composition `serve` does: verify for the role, seal the verified claims, log in as the role.
    async authenticate(req) {
      const verified = await verifier.verify(req.password, { role: req.user })
      const envelope = ctx.seal({ ...verified.claims }, 'authenticated', 'test')
      return {
        identity: { role: req.user, database: req.database, envelope, expiresAt: envelopeExpiry(envelope) },
        upstream: { config: ctx.roleConnectionConfig(req.user) },
      }
    },
  })
  port = (await gateway.listen(0, '127.0.0.1')).port
  admin = new pg.Client(db.adminUrl)
  await admin.connect()
})

after(async () => {
  await gateway?.close()
  verifier?.close()
  await admin?.end()
  await db?.close()
})

function token(claims: Record<string, unknown>, opts: { exp?: number; signWith?: CryptoKey } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuedAt(now - 10)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(opts.signWith ?? key)
}

async function upstreamConnections(): Promise<number> {
  const r = await admin.query<{ n: number }>(
    // Restricted-role backends only: the owner pool's own connection is not a client session.
    `select count(*)::int as n from pg_stat_activity where datname = $1 and backend_type = 'client backend'
        and usename in ('authenticated', 'anonymous')`,
    [db.database],
  )
  return r.rows[0]!.n
}

function psql(role: string, jwt: string, sql: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const url = `postgresql://${role}@127.0.0.1:${port}/${db.database}`
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', url, ...sql.flatMap((s) => ['-c', s])],
      { env: { ...process.env, PGPASSWORD: jwt, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
    )
  })
}

test('psql with a JWT as password sees exactly the rows its claims allow, as the restricted role', { skip: needs(PSQL) }, async () => {
  for (const user of [alice, bob]) {
    const r = await psql('authenticated', await token(demoClaims(user)), [
      'select current_user, session_user, auth.user_id()',
      'select name from users order by id',
      'select name from tenants order by id',
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), [
      `authenticated|authenticated|${user.sub}`,
      user.name,
      user.tenantName,
    ])
  }
})

test('pg: the claims survive a transaction rollback and hold for prepared statements', async () => {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'authenticated',
    database: db.database,
    password: await token(demoClaims(alice)),
  })
  await c.connect()
  try {
    await c.query('begin')
    await c.query(`update users set name = 'Mallory' where true`)
    await c.query('rollback')
    const p = await c.query({ name: 'names', text: 'select name from users where name <> $1', values: [''] })
    assert.deepEqual(p.rows, [{ name: 'Alice' }])
  } finally {
    await c.end()
  }
})

test('forged, expired and foreign-signed JWTs, and roles the provider does not allow: FATAL 28P01, nothing upstream', async () => {
  const now = Math.floor(Date.now() / 1000)
  const good = await token(demoClaims(alice))
  const [h, , s] = good.split('.')
  const forgedPayload = Buffer.from(JSON.stringify({ ...demoClaims(bob), exp: now + 600 })).toString('base64url')
  const cases: Array<[string, string, string]> = [
    ['authenticated', `${h}.${forgedPayload}.${s}`, 'altered payload'],
    ['authenticated', await token(demoClaims(alice), { exp: now - 3600 }), 'expired'],
    ['authenticated', await token(demoClaims(alice), { signWith: otherKey }), 'signed by another key'],
    ['authenticated', 'not a jwt', 'garbage'],
    ['anonymous', good, 'role not allowed by the provider'],
  ]
  for (const [role, jwt, what] of cases) {
    const c = new pg.Client({ host: '127.0.0.1', port, user: role, database: db.database, password: jwt })
    c.on('error', () => {})
    const err = (await c.connect().then(
      () => assert.fail(`${what}: connect should fail`),
      (e: unknown) => e,
    )) as { code: string; severity: string; message: string }
    assert.equal(err.code, '28P01', what)
    assert.equal(err.severity, 'FATAL', what)
    assert.ok(!err.message.includes(jwt), what)
    assert.equal(await upstreamConnections(), 0, what)
  }
})

test("the database side's forgery attempts fail through psql", { skip: needs(PSQL) }, async () => {
  const jwt = await token(demoClaims(alice))
  // Installing Bob's claims unsealed, or replaying a sealed envelope with the MAC altered: refused.
  const bobPayload = Buffer.from(JSON.stringify(demoClaims(bob))).toString('base64url')
  const attempts = [
    `select set_config('pg_authorize.session', 'v1.9999999999.${bobPayload}.AAAA', false); select name from users`,
    `set request.jwt.claims = '{"sub":"${bob.sub}"}'; select name from users where id::text = '${bob.sub}'`,
    'reset role; select name from users',
    'set role postgres',
    'select key from pgauthorize.sealing_key',
    'select password from pgauthorize.role_credentials',
  ]
  for (const sql of attempts) {
    const r = await psql('authenticated', jwt, [sql])
    const rows = r.stdout.trim()
    // Either an error, or nothing of Bob's: never another user's rows, never the owner's rights.
    assert.ok(r.status !== 0 || !rows.includes('Bob'), `${sql}: ${rows}`)
    assert.doesNotMatch(rows, /Bob/, sql)
  }
  // The unsealed envelope and the secret tables are outright errors.
  for (const sql of [attempts[0]!, attempts[3]!, attempts[4]!, attempts[5]!]) {
    const r = await psql('authenticated', jwt, [sql])
    assert.notEqual(r.status, 0, sql)
    assert.match(r.stderr, /ERROR/, sql)
  }
})
