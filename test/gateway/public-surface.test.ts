/**
 * The public surface, as a user imports it: `pg-authorize/gateway` resolved through package.json's
 * "exports" (the built dist/, which `npm test` builds first), started in-process and queried with the
 * real Neon client, over `/sql` and through `gateway.fetch` (the Web-standard handler for embedding).
 * Internals are not exported.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { neon, neonConfig } from '@neondatabase/serverless'
import { startGateway, type Gateway } from 'pg-authorize/gateway'
import * as root from 'pg-authorize'
import type { TestDatabase } from '../helpers/postgres.js'
import { createAppDatabase, type AppDatabase } from '../helpers/app-database.js'

let appDb: AppDatabase
let db: TestDatabase
let gw: Gateway
before(async () => {
  appDb = await createAppDatabase(`create table notes (id int primary key, owner text not null);
      insert into notes values (1, 'alice'), (2, 'bob');
      grant select on notes to authenticated;
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id()))`)
  db = appDb.db
  gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
})
after(async () => {
  await gw?.close()
  await db?.close()
})

const token = (sub: string) => appDb.token(sub, '10m')

test("import { startGateway } from 'pg-authorize/gateway': the Neon client sees its own rows only", async () => {
  neonConfig.fetchEndpoint = `${gw.url}/sql`
  const url = `postgresql://authenticated@db.localtest.me/${db.database}`
  const asAlice = neon(url, { authToken: await token('alice') })
  assert.deepEqual(await asAlice`select id, owner from notes`, [{ id: 1, owner: 'alice' }])
  const asBob = neon(url, { authToken: await token('bob') })
  assert.deepEqual(await asBob`select id from notes`, [{ id: 2 }])
})

test('gateway.fetch is the HTTP port as a Web handler: the same /sql, /health and 404 without a socket', async () => {
  const res = await gw.fetch(new Request('http://gateway.test/sql', {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${await token('bob')}`,
      'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${db.database}`,
    },
    body: JSON.stringify({ query: 'select owner from notes', params: [] }),
  }))
  assert.equal(res.status, 200)
  assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ owner: 'bob' }])
  assert.equal((await gw.fetch(new Request('http://gateway.test/health'))).status, 200)
  assert.equal((await gw.fetch(new Request('http://gateway.test/nope'))).status, 404)
})

test('the root export holds the parts, not the plumbing', () => {
  for (const name of ['startGateway', 'Authenticator', 'PgAuthorizeError', 'generateSigningKey', 'signToken', 'createSqlHttpHandler', 'createWireGateway']) {
    assert.ok(name in root, `${name} is exported`)
  }
  for (const name of ['createSqlCore', 'webRequest', 'createNodeSqlListener', 'createConsoleHandler', 'Pipeline']) {
    assert.ok(!(name in root), `${name} is internal`)
  }
})
