import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { cellLabel, OPERATIONS, parseClaimSets, policyMatrix, type PolicyMatrix } from '../../src/testing/matrix.js'
import { isPgAuthorizeError } from '../../src/errors.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { runCli } from '../helpers/cli.js'
import { demoDatabase, ownerQuery, snapshotTables } from './helpers.js'

let db: TestDatabase
const [alice, bob] = DEMO_USERS as [(typeof DEMO_USERS)[0], (typeof DEMO_USERS)[0]]
const claimSets = { alice: demoClaims(alice), bob: demoClaims(bob), nobody: null, noid: { claims: null } }

before(async () => {
  db = await demoDatabase()
  // Beside the demo: notes readable by their owner, no INSERT/UPDATE policy, DELETE not granted.
  await ownerQuery(db.url, `
    create table public.notes (id int primary key, owner text not null, body text);
    alter table public.notes enable row level security;
    create policy notes_read on public.notes for select to authenticated using (owner = (select auth.user_id()));
    revoke delete on public.notes from authenticated, anonymous;
    insert into public.notes values (1, '${alice.sub}', 'a'), (2, '${bob.sub}', 'b'), (3, '${bob.sub}', 'c');`)
})
after(() => db?.close())

/** `table identity` -> the four cell labels. */
function labels(m: PolicyMatrix): Record<string, string[]> {
  return Object.fromEntries(m.entries.map((e) => [`${e.table} ${e.identity}`, OPERATIONS.map((op) => cellLabel(op, e.cells[op]))]))
}

test('the matrix of the demo matches its policies, and probing changed nothing', async () => {
  const before = await snapshotTables(db.url)
  const m = await policyMatrix(db.url, parseClaimSets(claimSets))
  assert.equal(await snapshotTables(db.url), before)
  assert.deepEqual(m.tables, ['public.notes', 'public.tenants', 'public.users'])
  assert.deepEqual(labels(m), {
    // Each user sees, updates and deletes exactly their own row; of the two existing rows, a copy of their
    // own passes WITH CHECK and the other tenant's is refused. Deleting one's tenant is allowed by the
    // policy, but the foreign key from users refuses it at the end of the statement.
    'public.tenants alice': ['yes (1)', 'yes (1/2)', 'yes (1)', 'yes (1), then 23503'],
    'public.users alice': ['yes (1)', 'yes (1/2)', 'yes (1)', 'yes (1)'],
    'public.tenants bob': ['yes (1)', 'yes (1/2)', 'yes (1)', 'yes (1), then 23503'],
    'public.users bob': ['yes (1)', 'yes (1/2)', 'yes (1)', 'yes (1)'],
    // No token: the anonymous role holds the grants but no policy names it.
    'public.tenants nobody': ['no (0)', 'no (0/2)', 'no (0)', 'no (0)'],
    'public.users nobody': ['no (0)', 'no (0/2)', 'no (0)', 'no (0)'],
    // authenticated without claims: the policies compare with NULL and match nothing.
    'public.tenants noid': ['no (0)', 'no (0/2)', 'no (0)', 'no (0)'],
    'public.users noid': ['no (0)', 'no (0/2)', 'no (0)', 'no (0)'],
    // notes: SELECT policy only; INSERT and UPDATE granted but no policy; DELETE revoked.
    'public.notes alice': ['yes (1)', 'no (0/3)', 'no (0)', 'no grant'],
    'public.notes bob': ['yes (2)', 'no (0/3)', 'no (0)', 'no grant'],
    'public.notes nobody': ['no (0)', 'no (0/3)', 'no (0)', 'no grant'],
    'public.notes noid': ['no (0)', 'no (0/3)', 'no (0)', 'no grant'],
  })
  const cell = m.entries.find((e) => e.table === 'public.tenants' && e.identity === 'alice')!.cells.DELETE
  assert.equal(cell.error?.sqlstate, '23503')
})

test('the CLI prints the matrix as a table, JSON or Markdown, and changes nothing', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pga-matrix-'))
  try {
    const file = path.join(dir, 'claims.json')
    await writeFile(file, JSON.stringify({ alice: demoClaims(alice), nobody: null }))
    const before = await snapshotTables(db.url)
    const table = await runCli(['matrix', '--database-url', db.url, '--claims', file])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^ public\.users +\| alice +\| authenticated \| yes \(1\) +\| yes \(1\/2\) \| yes \(1\) +\| yes \(1\)/m)
    assert.match(table.stdout, /rolled back; nothing was changed/)
    const md = await runCli(['matrix', '--database-url', db.url, '--claims', file, '--format', 'markdown'])
    assert.match(md.stdout, /^\| table \| identity \| role \| SELECT \| INSERT \| UPDATE \| DELETE \|\n\|---\|/m)
    assert.match(md.stdout, /^\| public\.notes \| nobody \| anonymous \| no \(0\) \| no \(0\/3\) \| no \(0\) \| no grant \|$/m)
    const json = await runCli(['matrix', '--database-url', db.url, '--claims', file, '--format', 'json'])
    const m = JSON.parse(json.stdout) as PolicyMatrix
    assert.equal(m.entries.find((e) => e.table === 'public.notes' && e.identity === 'alice')!.cells.SELECT.rows, 1)
    assert.equal(await snapshotTables(db.url), before)
    const bad = await runCli(['matrix', '--database-url', db.url, '--claims', file, '--format', 'html'])
    assert.equal(bad.code, 2)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('claim sets: null is the anonymous role, {role, claims} names a role, other objects are claims', () => {
  assert.deepEqual(parseClaimSets({ a: { sub: 'x', role: 'authenticated' }, n: null, g: { role: 'anonymous', claims: { sub: 'y' } }, w: { claims: null } }), [
    { name: 'a', role: 'authenticated', claims: { sub: 'x', role: 'authenticated' } },
    { name: 'n', role: 'anonymous', claims: null },
    { name: 'g', role: 'anonymous', claims: { sub: 'y' } },
    { name: 'w', role: 'authenticated', claims: null },
  ])
  for (const bad of [[], 'x', {}, { a: 1 }, { a: { claims: 3 } }]) {
    assert.throws(() => parseClaimSets(bad), (e: unknown) => isPgAuthorizeError(e) && e.code === 'ERR_INVALID_CLAIMS')
  }
})
