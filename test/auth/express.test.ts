/**
 * The Express example (examples/embed/express.ts) on createAuthorizer: each request's `req.authorized`
 * runs as its token's identity, forged tokens get 401, and the transaction commits before the answer.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import express from 'express'
import { createAuthorizer, type Authorizer } from '../../src/auth/authorizer.js'
import type { SigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { authorize, authorized, authorizeErrors } from '../../examples/embed/express.js'
import type { TestDatabase } from '../helpers/postgres.js'
import { createAppDatabase, type AppDatabase } from '../helpers/app-database.js'

let appDb: AppDatabase
let db: TestDatabase
let key: SigningKey
let authz: Authorizer
let server: Server
let base: string

before(async () => {
  appDb = await createAppDatabase(`create table notes (owner text not null default auth.user_id(), body text not null);
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id())) with check (owner = (select auth.user_id()));
      insert into notes values ('alice', 'a1'), ('bob', 'b1');`)
  db = appDb.db
  key = appDb.key
  authz = await createAuthorizer({ databaseUrl: db.url, poolSize: 1 })
  const app = express()
  app.use(express.json())
  app.use(authorize(authz))
  app.get('/notes', async (req, res) => {
    res.json(await authorized(req)(async (c) => (await c.query('select body from notes order by body')).rows.map((r) => r.body)))
  })
  app.post('/notes', async (req, res) => {
    await authorized(req)((c) => c.query('insert into notes (body) values ($1)', [req.body.body]))
    res.status(201).end()
  })
  app.use(authorizeErrors())
  server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(async () => {
  await new Promise((r) => server?.close(r))
  await authz?.close()
  await db?.close()
})

const token = (sub: string) => appDb.token(sub)
const get = async (tok?: string) => {
  const res = await fetch(`${base}/notes`, tok ? { headers: { authorization: `Bearer ${tok}` } } : {})
  return { status: res.status, body: await res.json() }
}

test('Express: Alice sees her rows and Bob his; a write commits before the answer', async () => {
  assert.deepEqual(await get(await token('alice')), { status: 200, body: ['a1'] })
  assert.deepEqual(await get(await token('bob')), { status: 200, body: ['b1'] })
  const bob = await token('bob')
  const post = await fetch(`${base}/notes`, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' }, body: JSON.stringify({ body: 'b2' }) })
  assert.equal(post.status, 201)
  assert.deepEqual(await get(bob), { status: 200, body: ['b1', 'b2'] })
})

test('Express: no token, a forged token and an expired one get 401', async () => {
  const good = await token('alice')
  const [h, , s] = good.split('.')
  const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'bob', exp: 9_999_999_999 })).toString('base64url')}.${s}`
  const expired = await signToken({ privateJwk: key.privateJwk, sub: 'alice', expiresIn: '1h', now: Date.now() - 7_200_000 })
  assert.deepEqual(await get(), { status: 401, body: { code: 'ERR_TOKEN_MISSING', message: 'a bearer token is required' } })
  assert.equal((await get(forged)).body.code, 'ERR_JWT_SIGNATURE_INVALID')
  assert.equal((await get(expired)).body.code, 'ERR_JWT_EXPIRED')
  assert.equal((await get(expired)).status, 401)
})
