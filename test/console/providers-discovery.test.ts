/**
 * The console's Providers API does what `providers add` does: an issuer without a JWKS URL is discovered
 * (and refused with what went wrong), and the role rules are stored, shown and edited ("replace").
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { addProvider, listProviders, withOwner } from '../../src/database/providers.js'
import { generateSigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { startConsoleHarness, type ConsoleHarness } from './harness.js'

let h: ConsoleHarness
let idp: Server
let issuer: string

before(async () => {
  h = await startConsoleHarness()
  idp = createServer((req, res) => {
    const doc = req.url === '/good/.well-known/openid-configuration'
      ? { issuer: `${issuer}/good`, jwks_uri: h.jwks.url }
      : req.url === '/other/.well-known/openid-configuration' ? { issuer: 'https://elsewhere.example', jwks_uri: h.jwks.url } : undefined
    if (!doc) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
  })
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r))
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`
})

after(async () => {
  await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()))
  await h?.close()
})

async function post(body: Record<string, unknown>) {
  const { cookie, csrf } = await h.login()
  const r = await fetch(`${h.base}/api/providers`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: r.status, body: (await r.json()) as { provider?: Record<string, unknown>; error?: { code: string; message: string } } }
}

test('an issuer alone is discovered; the role rules are stored and shown', async () => {
  const r = await post({ name: 'kc', issuer: `${issuer}/good`, roles: 'authenticated, anonymous', roleClaim: '$.realm_access.roles[*]', defaultRole: 'authenticated', authorizedParties: 'web', strictAudience: true })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  const p = r.body.provider!
  assert.equal(p.discovery, true)
  assert.equal(p.jwksUrl, h.jwks.url)
  assert.deepEqual((p.keys as { kid: string }[]).map((k) => k.kid), [h.kid])
  assert.equal(p.roleClaim, '$.realm_access.roles[*]')
  assert.equal(p.defaultRole, 'authenticated')
  assert.deepEqual(p.authorizedParties, ['web'])
  assert.equal(p.strictAudience, true)
})

test('a discovery failure refuses the provider and says why', async () => {
  const mismatch = await post({ name: 'bad', issuer: `${issuer}/other` })
  assert.equal(mismatch.body.error?.code, 'ERR_DISCOVERY_ISSUER_MISMATCH')
  assert.match(mismatch.body.error!.message, /names the issuer 'https:\/\/elsewhere\.example'/)
  const missing = await post({ name: 'bad', issuer: `${issuer}/nothing` })
  assert.equal(missing.body.error?.code, 'ERR_DISCOVERY_FAILED')
  assert.match(missing.body.error!.message, /HTTP 404/)
  assert.deepEqual((await withOwner(h.db.url, listProviders)).map((p) => p.name), ['kc'])
})

test('replace edits a provider: the new rules are stored, the old ones gone', async () => {
  const r = await post({ name: 'kc', issuer: `${issuer}/good`, roles: 'authenticated', roleClaim: '$.role', replace: true })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  const [stored] = await withOwner(h.db.url, listProviders)
  assert.equal(stored!.roleClaim, '$.role')
  assert.equal(stored!.defaultRole, undefined)
  assert.equal(stored!.authorizedParties, undefined)
  assert.equal(stored!.strictAudience, undefined)
  const again = await post({ name: 'kc', issuer: `${issuer}/good` })
  assert.equal(again.body.error?.code, 'ERR_PROVIDER_EXISTS')
})

test('the playground runs a token as the role its provider chooses, as the gateway would', async () => {
  const key = await generateSigningKey({ alg: 'ES256', kid: 'pg-1' })
  await withOwner(h.db.url, (c) => addProvider(c, {
    name: 'claims-role', issuer: 'https://claims-role.example', jwks: { keys: [key.publicJwk as Record<string, unknown>] },
    algorithms: ['ES256'], roles: ['authenticated', 'anonymous'], roleClaim: '$.r',
  }))
  await h.gw.databases.reload()
  const token = await signToken({ privateJwk: key.privateJwk, sub: 'p1', issuer: 'https://claims-role.example', claims: { r: 'anonymous' }, expiresIn: '5m' })
  const { cookie, csrf } = await h.login()
  const res = await fetch(`${h.base}/api/playground`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, origin: h.gw.url, 'content-type': 'application/json' },
    body: JSON.stringify({ sql: 'select current_user as u', identities: [{ kind: 'token', token, role: 'authenticated' }] }),
  })
  const r = (await res.json()) as { results: { identity: { role: string }; rows?: unknown[][]; error?: unknown }[] }
  assert.equal(r.results[0]!.identity.role, 'anonymous', JSON.stringify(r))
  assert.deepEqual(r.results[0]!.rows, [['anonymous']])
})
