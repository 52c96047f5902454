/**
 * A discovery provider in the verifier: the JWKS comes from the issuer's `jwks_uri`; the discovery
 * document is re-read once past its freshness (or on a forced refresh), so a moved `jwks_uri` is
 * followed without a restart; while the document cannot be read, the last `jwks_uri` keeps working; a
 * document naming another issuer is never followed. Real HTTP on loopback, a fake clock.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { generateSigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { Verifier, type VerifierEvent } from '../../src/verify/index.js'
import { rejectsWith } from './helpers.js'

const NOW = Date.UTC(2030, 0, 1)
const ka = await generateSigningKey({ alg: 'ES256', kid: 'a' })
const kb = await generateSigningKey({ alg: 'ES256', kid: 'b' })

async function issuerServer(t: { after(fn: () => unknown): void }) {
  const state = { jwksPath: '/jwks-a', discovery: 'ok' as 'ok' | 'down' | 'other', hits: [] as string[] }
  const srv = createServer((req, res) => {
    state.hits.push(req.url!)
    if (req.url === '/.well-known/openid-configuration') {
      if (state.discovery === 'down') return void res.writeHead(503).end()
      const issuer = state.discovery === 'other' ? 'https://evil.example' : base
      return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' })
        .end(JSON.stringify({ issuer, jwks_uri: `${base}${state.discovery === 'other' ? '/jwks-evil' : state.jwksPath}` }))
    }
    const keys = req.url === '/jwks-a' ? [ka.publicJwk] : req.url === '/jwks-b' ? [kb.publicJwk] : [ka.publicJwk, kb.publicJwk]
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=86400' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
  t.after(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections() }))
  return { base, state }
}

test('the JWKS is found by discovery, and a moved jwks_uri is followed once the document is past its freshness', async (t) => {
  const srv = await issuerServer(t)
  const clock = { now: NOW }
  const events: VerifierEvent[] = []
  const v = new Verifier({
    providers: [{ name: 'idp', issuer: srv.base, discovery: true, algorithms: ['ES256'] }],
    now: () => clock.now, cache: false, jwksCooldownMs: 0, onEvent: (e) => events.push(e),
  })
  t.after(() => v.close())
  const sign = (k: typeof ka) => signToken({ privateJwk: k.privateJwk, sub: 'u', issuer: srv.base, now: clock.now, expiresIn: '7d' })
  assert.equal((await v.verify(await sign(ka))).provider.name, 'idp')
  assert.deepEqual(srv.state.hits, ['/.well-known/openid-configuration', '/jwks-a'])

  srv.state.jwksPath = '/jwks-b'
  clock.now = NOW + 599_000
  // The document is still fresh: the unknown kid refetches the JWKS it knows, which does not hold 'b'.
  await rejectsWith(v.verify(await sign(kb)), 'ERR_JWKS_NO_MATCHING_KEY')
  assert.deepEqual(srv.state.hits.slice(2), ['/jwks-a'])
  clock.now = NOW + 600_000
  assert.equal((await v.verify(await sign(kb))).provider.name, 'idp')
  assert.deepEqual(srv.state.hits.slice(3), ['/.well-known/openid-configuration', '/jwks-b'])

  // The issuer's metadata goes down: the last jwks_uri keeps working, after a forced refresh too.
  srv.state.discovery = 'down'
  await v.refresh()
  assert.equal((await v.verify(await sign(kb))).provider.name, 'idp')
  assert.ok(events.some((e) => e.kind === 'discovery-fetch' && !e.ok && e.code === 'ERR_DISCOVERY_FAILED'))

  // A document naming another issuer is not followed.
  srv.state.discovery = 'other'
  await v.refresh()
  assert.ok(!srv.state.hits.includes('/jwks-evil'))
  assert.ok(events.some((e) => e.kind === 'discovery-fetch' && !e.ok && e.code === 'ERR_DISCOVERY_ISSUER_MISMATCH'))
})

test('a provider that never discovered its JWKS fails with the discovery error', async (t) => {
  const srv = await issuerServer(t)
  srv.state.discovery = 'other'
  const v = new Verifier({ providers: [{ name: 'idp', issuer: srv.base, discovery: true, algorithms: ['ES256'] }], cache: false })
  t.after(() => v.close())
  const token = await signToken({ privateJwk: ka.privateJwk, sub: 'u', issuer: srv.base, expiresIn: '1h' })
  await rejectsWith(v.verify(token), 'ERR_DISCOVERY_ISSUER_MISMATCH')
  assert.throws(() => new Verifier({ providers: [{ name: 'x', discovery: true }] }), { code: 'ERR_INVALID_CONFIG' })
})
