/**
 * examples/custom-jwt can't rot: its committed drizzle-kit migration matches its schema, applies to a fresh
 * database after `setup`, and the app's own routes and query functions return each caller's rows only,
 * with tokens the app signs and a JWKS the app serves, registered as a provider, through the real gateway.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api'
import type { Hono } from 'hono'
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { addProvider } from '../../src/database/providers.js'
import { startGateway, type Gateway } from '../../src/gateway/gateway.js'
import * as schema from '../../examples/custom-jwt/src/db/schema.js'
import { createApp } from '../../examples/custom-jwt/src/app.js'
import { generateKeys, loadKeys } from '../../examples/custom-jwt/src/keys.js'
import { MIGRATIONS_FOLDER, migrateAndSeed } from '../../examples/custom-jwt/src/seed.js'
import { DEMO } from '../../examples/custom-jwt/src/users.js'
import {
  addTodo, completeTodo, createDb, listTenants, listTodos, listUsers, renameMe, useGateway,
} from '../../examples/custom-jwt/src/queries.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { eventually } from '../helpers/wait.js'
import { tempDir } from '../helpers/fs.js'

const { alice, bob } = DEMO
let db: TestDatabase
let gw: Gateway
let server: ServerType
let appUrl: string
let keysDir: string | undefined
let app: Hono
const authUrl = 'postgresql://authenticated@db.localtest.me/' // completed with the database name

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  await migrateAndSeed(db.url)
  // The app's own keys, generated as the guide does, and its JWKS route registered as the provider.
  keysDir = path.join(await tempDir('pga-example-'), 'keys')
  const keys = await generateKeys(keysDir)
  assert.deepEqual(await loadKeys(keysDir), keys)
  app = createApp({ databaseAuthenticatedUrl: authUrl + db.database, ...keys })
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const owner = new pg.Client(db.url)
  await owner.connect()
  await addProvider(owner, { name: 'example-app', jwksUrl: `${appUrl}/.well-known/jwks.json`, roles: ['authenticated'] })
  await owner.end()
  gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: false })
  useGateway(`${gw.url}/sql`)
})
after(async () => {
  await gw?.close()
  await new Promise((r) => (server ? server.close(r) : r(undefined)))
  await db?.close()
  if (keysDir) await rm(path.dirname(keysDir), { recursive: true, force: true })
})

const token = async (user: 'alice' | 'bob') => {
  const res = await fetch(`${appUrl}/token?user=${user}`)
  assert.equal(res.status, 200)
  return res.text()
}
const api = (route: string, jwt: string, init: RequestInit = {}) =>
  fetch(`${appUrl}${route}`, { ...init, headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' } })

test('the committed migration is what drizzle-kit generates from the schema today', async () => {
  const journal = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8'))
  const last = journal.entries.at(-1)
  const snapshot = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, `meta/${String(last.idx).padStart(4, '0')}_snapshot.json`), 'utf8'))
  const current = generateDrizzleJson(schema, snapshot.id)
  assert.deepEqual(await generateMigration(snapshot, current), [], 'run `npx drizzle-kit generate` in examples/custom-jwt')
  const sql = await readFile(path.join(MIGRATIONS_FOLDER, `${last.tag}.sql`), 'utf8')
  assert.match(sql, /CREATE POLICY "crud-authenticated-policy-select" ON "users" AS PERMISSIVE FOR SELECT TO "authenticated" USING \(\(select auth\.user_id\(\) = "users"\."id"::text\)\)/)
  assert.match(sql, /USING \(\(select auth\.user_id\(\) = "todos"\."user_id"\)\)/)
  assert.doesNotMatch(sql, /CREATE ROLE/)
})

test('the migration applied: RLS on, the policies crudPolicy makes, idempotent re-run', async () => {
  await migrateAndSeed(db.url)
  const c = new pg.Client(db.url)
  await c.connect()
  try {
    const rls = await c.query(`select relname, relrowsecurity from pg_class where relname in ('tenants', 'users', 'todos') order by relname`)
    assert.deepEqual(rls.rows, [
      { relname: 'tenants', relrowsecurity: true },
      { relname: 'todos', relrowsecurity: true },
      { relname: 'users', relrowsecurity: true },
    ])
    const policies = await c.query(`select tablename, count(*)::int as n from pg_policies where roles = '{authenticated}' group by 1 order by 1`)
    assert.deepEqual(policies.rows, [{ tablename: 'tenants', n: 4 }, { tablename: 'todos', n: 4 }, { tablename: 'users', n: 4 }])
    assert.deepEqual((await c.query('select count(*)::int as n from users')).rows, [{ n: 2 }])
  } finally {
    await c.end()
  }
})

test('the app: token and JWKS routes, and API routes that return the caller\'s rows only', async () => {
  const jwks = await (await fetch(`${appUrl}/.well-known/jwks.json`)).json()
  assert.equal(jwks.keys.length, 1)
  assert.equal(jwks.keys[0].d, undefined, 'no private part published')
  assert.equal(jwks.keys[0].kid, 'my-key-id')

  const [a, b] = [await token('alice'), await token('bob')]
  // The provider is picked up live; wait for the gateway to accept the app's tokens.
  assert.ok(await eventually(async () => (await api('/api/users', a)).status === 200))
  for (const [jwt, user] of [[a, alice], [b, bob]] as const) {
    const users = await (await api('/api/users', jwt)).json()
    assert.deepEqual(users.map((u: { id: string; name: string }) => [u.id, u.name]), [[user.sub, user.name]])
    assert.deepEqual(await (await api('/api/tenants', jwt)).json(), [{ id: user.tenantId, name: user.tenantName }])
  }
  const created = await api('/api/todos', a, { method: 'POST', body: JSON.stringify({ task: 'write the guide' }) })
  assert.equal(created.status, 201)
  assert.equal((await created.json()).userId, alice.sub)
  assert.deepEqual((await (await api('/api/todos', a)).json()).map((t: { task: string }) => t.task), ['write the guide'])
  assert.deepEqual(await (await api('/api/todos', b)).json(), [])

  const forged = await api('/api/users', `${a.slice(0, -4)}AAAA`)
  assert.equal(forged.status, 401)
  assert.equal((await forged.json()).code, '28000')
  assert.equal((await api('/api/users', '')).status, 401)
})

test('the query functions: authToken (string and function) and $withAuth, writes confined by RLS', async () => {
  const [a, b] = [await token('alice'), await token('bob')]
  const url = authUrl + db.database
  assert.deepEqual((await listTenants(url, a)).map((t) => t.id), [alice.tenantId])
  assert.deepEqual((await listTenants(url, async () => b)).map((t) => t.id), [bob.tenantId])

  const shared = createDb(url)
  assert.deepEqual((await listUsers(shared, a)).map((u) => u.id), [alice.sub])
  assert.deepEqual((await listUsers(shared, () => b)).map((u) => u.id), [bob.sub])
  const [u] = await listUsers(shared, a)
  assert.ok(u!.createdAt instanceof Date)

  // Bob renames "everyone": RLS limits the update to his own row.
  assert.deepEqual(await renameMe(shared, b, 'Robert'), [{ id: bob.sub, name: 'Robert' }])
  assert.deepEqual((await listUsers(shared, a)).map((x) => x.name), ['Alice'])

  const todo = await addTodo(shared, b, 'ship it')
  assert.equal(todo.userId, bob.sub)
  assert.deepEqual(await completeTodo(shared, a, todo.id), [], 'Alice cannot complete Bob\'s todo')
  assert.deepEqual(await completeTodo(shared, b, todo.id), [{ id: todo.id }])
  assert.deepEqual((await listTodos(shared, b)).map((t) => [t.task, t.isComplete]), [['ship it', true]])
  // A client built with a token keeps it; $withAuth overrides it per query.
  const asAlice = createDb(url, a)
  assert.deepEqual((await listTodos(asAlice, b)).map((t) => t.task), ['ship it'])
})
