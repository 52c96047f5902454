import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { generateSigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { statementsFromLines } from '../../src/testing/run-as.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'
import { demoDatabase, ownerQuery, snapshotTables } from './helpers.js'

let db: TestDatabase
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]
const aliceClaims = JSON.stringify(demoClaims(alice))

before(async () => {
  db = await demoDatabase()
})
after(() => db?.close())

const as = (args: string[], input?: string) => runCli(['as', '--database-url', db.url, ...args], input === undefined ? {} : { input })

test("as Alice: only Alice's rows, in an aligned table, and the transaction is rolled back", async () => {
  const r = await as(['--claims', aliceClaims, '-c', 'select id, name from users order by id; select name from tenants'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`^ id\\s+\\| name\\n-+\\+-+\\n ${alice.sub} \\| Alice\\n\\(1 row\\)$`, 'm'))
  assert.match(r.stdout, /^ name\n-+\n Neon\n\(1 row\)$/m)
  assert.ok(!r.stdout.includes(bob.sub) && !r.stdout.includes('Other Company'), r.stdout)
  assert.match(r.stdout, /-- rolled back \(nothing was changed; pass --commit to keep writes\)/)
})

test('as Bob sees Bob; no identity and the anonymous role see nothing', async () => {
  const b = await as(['--claims', JSON.stringify(demoClaims(bob)), '--json', '-c', 'select id from users'])
  assert.equal(b.code, 0, b.stderr)
  const [script] = JSON.parse(b.stdout)
  assert.deepEqual(script.results[0].rows, [{ id: bob.sub }])
  assert.equal(script.ending, 'rolled back')
  for (const args of [['--claims', 'null'], ['--anonymous']]) {
    const r = await as([...args, '--json', '-c', 'select count(*)::int as n, current_user as who from users'])
    assert.equal(r.code, 0, r.stderr)
    const rows = JSON.parse(r.stdout)[0].results[0].rows
    assert.equal(rows[0].n, 0)
    assert.equal(rows[0].who, args[0] === '--anonymous' ? 'anonymous' : 'authenticated')
  }
})

test('a denied write prints the error with its SQLSTATE and exits 1', async () => {
  const r = await as(['--claims', aliceClaims, '-c', `insert into tenants (id, name) values ('${bob.tenantId}', 'x')`])
  assert.equal(r.code, 1)
  assert.match(r.stdout, /ERROR: {2}42501: new row violates row-level security policy for table "tenants"/)
})

test('writes are rolled back by default and kept with --commit', async () => {
  const before = await snapshotTables(db.url)
  const r = await as(['--claims', aliceClaims, '-c', `update users set name = 'Alice B.' where id = '${alice.sub}'; update users set name = 'pwned'`])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^UPDATE 1\nUPDATE 1\n/m) // the second touches only Alice's row too
  assert.equal(await snapshotTables(db.url), before)
  const c = await as(['--claims', aliceClaims, '--commit', '-c', `update users set name = 'Alice C.' where id = '${alice.sub}'`])
  assert.match(c.stdout, /-- committed/)
  const rows = await ownerQuery<{ id: string; name: string }>(db.url, 'select id, name from users order by name')
  assert.deepEqual(rows.map((x) => x.name).sort(), ['Alice C.', 'Bob'])
  await ownerQuery(db.url, `update users set name = 'Alice' where id = $1`, [alice.sub])
})

test('SQL that ends the transaction itself is reported, not claimed rolled back', async () => {
  const r = await as(['--claims', aliceClaims, '-c', 'select 1; commit; select 2'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /warning: the SQL ended the transaction itself/)
  assert.doesNotMatch(r.stdout, /-- rolled back/)
})

test('-f FILE, and statements on stdin each run in a transaction of their own', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pga-as-'))
  try {
    const file = path.join(dir, 'q.sql')
    await writeFile(file, 'select name from users;\n')
    const f = await as(['--claims', aliceClaims, '-f', file])
    assert.match(f.stdout, /^ Alice$/m)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const stdin = [
    '-- a comment',
    `update users set name = 'X'`,
    `  where id = '${alice.sub}';`,
    'select name from users;',
    "select auth.user_id() as me;",
  ].join('\n')
  const r = await as(['--claims', aliceClaims], stdin)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.match(/-- rolled back/g)?.length, 3)
  // the update was rolled back before the next statement ran
  assert.match(r.stdout, /UPDATE 1\n-- rolled back[^\n]*\n name\n-+\n Alice\n/)
  assert.match(r.stdout, new RegExp(` me\\n-+\\n ${alice.sub}\\n`))
})

test('statementsFromLines splits on lines ending in ;, skips blank and comment lines between statements', () => {
  assert.deepEqual([...statementsFromLines(['', '-- c', 'select 1', 'from x;', 'select 2;', 'select 3'])], ['select 1\nfrom x;', 'select 2;', 'select 3'])
})

test('--token: verified against the stored providers, then its claims are used; a forged token is refused', async () => {
  const key = await generateSigningKey({ alg: 'ES256' })
  await withOwner(db.url, (c) => addProvider(c, { name: 'test', jwks: { keys: [key.publicJwk as Record<string, unknown>] }, algorithms: ['ES256'] }))
  const token = await signToken({ privateJwk: key.privateJwk, sub: alice.sub, claims: { tenant_id: alice.tenantId } })
  const r = await as(['--token', token, '-c', 'select id from users'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`^ ${alice.sub}$`, 'm'))
  assert.ok(!r.stdout.includes(bob.sub))
  const [h, p, s] = token.split('.') as [string, string, string]
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: bob.sub })).toString('base64url')
  const forged = `${h}.${forgedPayload}.${s}`
  const bad = await as(['--token', forged, '-c', 'select id from users'])
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /ERR_JWT_SIGNATURE_INVALID/)
  assert.ok(!bad.stderr.includes(forgedPayload) && !bad.stdout.includes(bob.sub))
})

test('refuses roles that are not restricted, and bad arguments', async () => {
  const r = await as(['--claims', aliceClaims, '--role', 'postgres', '-c', 'select 1'])
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /ERR_ROLE_NOT_ALLOWED/)
  const both = await as(['--claims', aliceClaims, '--anonymous', '-c', 'select 1'])
  assert.equal(both.code, 2)
  const badJson = await as(['--claims', '{nope', '-c', 'select 1'])
  assert.match(badJson.stderr, /ERR_INVALID_CLAIMS/)
})
