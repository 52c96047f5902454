/**
 * The remote-JWKS cache against a real HTTP server on loopback that counts its fetches. Time is a
 * fake clock handed to the verifier, so cooldown and max-age are exact and no test waits on the wall clock.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { generateSigningKey, type SigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { Verifier, type VerifierEvent } from '../../src/verify/index.js'
import { rejectsWith } from './helpers.js'

const NOW = Date.now()
const k1 = await generateSigningKey({ alg: 'ES256', kid: 'k1' })
const k2 = await generateSigningKey({ alg: 'ES256', kid: 'k2' })
const k3 = await generateSigningKey({ alg: 'EdDSA', kid: 'k3' })
const sign = (key: SigningKey) => signToken({ privateJwk: key.privateJwk, sub: 'u', now: NOW, expiresIn: '1d' })

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A JWKS server whose behaviour each test sets; counts requests per path. */
async function jwksServer(t: { after(fn: () => unknown): void }) {
  const hits: Record<string, number> = {}
  const state = { keys: [k1.publicJwk] as unknown[], handler: undefined as Handler | undefined }
  const server = createServer((req, res) => {
    hits[req.url!] = (hits[req.url!] ?? 0) + 1
    if (state.handler) return state.handler(req, res)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const close = () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections() })
  t.after(close)
  return { url: `${base}/jwks.json`, base, hits, state, close, count: () => hits['/jwks.json'] ?? 0 }
}

function makeVerifier(url: string, clock: { now: number }, extra: ConstructorParameters<typeof Verifier>[0] = {}) {
  const events: VerifierEvent[] = []
  const v = new Verifier({
    providers: [{ name: 'remote', jwksUrl: url, algorithms: ['ES256', 'EdDSA'] }],
    now: () => clock.now,
    cache: false,
    jwksCooldownMs: 30_000,
    jwksMaxAgeMs: 600_000,
    onEvent: (e) => events.push(e),
    ...extra,
  })
  return { v, events }
}

test('100 concurrent verifications with the same unknown kid cause one fetch (cold cache)', async (t) => {
  const srv = await jwksServer(t)
  const { v } = makeVerifier(srv.url, { now: NOW })
  const token = await sign(k2) // k2 is not published
  const results = await Promise.allSettled(Array.from({ length: 100 }, () => v.verify(token)))
  assert.equal(srv.count(), 1)
  for (const r of results) {
    assert.equal(r.status, 'rejected')
    assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_JWKS_NO_MATCHING_KEY')
  }
  v.close()
})

test('an unknown kid refetches once after the cooldown (100 concurrent → 1 fetch), never within it', async (t) => {
  const srv = await jwksServer(t)
  const clock = { now: NOW }
  const { v } = makeVerifier(srv.url, clock)
  await v.verify(await sign(k1))
  assert.equal(srv.count(), 1)
  srv.state.keys = [k1.publicJwk, k2.publicJwk] // rotation on the provider's side
  clock.now += 10_000 // within the cooldown: no refetch, the new kid is not known yet
  await rejectsWith(v.verify(await sign(k2)), 'ERR_JWKS_NO_MATCHING_KEY')
  await rejectsWith(v.verify(await sign(k3)), 'ERR_JWKS_NO_MATCHING_KEY')
  assert.equal(srv.count(), 1)
  clock.now += 21_000 // cooldown over
  const token = await sign(k2)
  const results = await Promise.all(Array.from({ length: 100 }, () => v.verify(token)))
  assert.equal(results.length, 100)
  assert.equal(srv.count(), 2)
  // Right after that refetch, another unknown kid is again within the cooldown.
  await rejectsWith(v.verify(await sign(k3)), 'ERR_JWKS_NO_MATCHING_KEY')
  assert.equal(srv.count(), 2)
  v.close()
})

test('during an outage the cached keys keep working', async (t) => {
  const srv = await jwksServer(t)
  const clock = { now: NOW }
  const { v, events } = makeVerifier(srv.url, clock)
  const token = await sign(k1)
  await v.verify(token)
  srv.state.handler = (_req, res) => void res.writeHead(503).end('down')
  clock.now += 700_000 // keys are stale and the cooldown is over: a refresh is attempted and fails
  await v.verify(token)
  await v.refresh().catch(() => {})
  await v.verify(token)
  assert.ok(srv.count() >= 2)
  assert.ok(events.some((e) => e.kind === 'jwks-fetch' && !e.ok))
  await rejectsWith(v.refresh(), 'ERR_JWKS_FETCH_FAILED')
  await srv.close() // now connection refused
  clock.now += 700_000
  await v.verify(token)
  await rejectsWith(v.refresh(), 'ERR_JWKS_FETCH_FAILED')
  await v.verify(token)
  // A key the cache never had still fails closed.
  await rejectsWith(v.verify(await sign(k2)), 'ERR_JWKS_NO_MATCHING_KEY')
  v.close()
})

test('stale keys are served at once and refreshed in the background', async (t) => {
  const srv = await jwksServer(t)
  const clock = { now: NOW }
  const { v, events } = makeVerifier(srv.url, clock)
  await v.verify(await sign(k1))
  srv.state.keys = [k2.publicJwk] // k1 withdrawn by the provider
  clock.now += 600_000
  await v.verify(await sign(k1)) // still served from the stale set; refresh started
  // The refresh was started by that call (the 60 s background timer is not due); wait for it, bounded.
  for (let i = 0; i < 500 && events.filter((e) => e.kind === 'jwks-fetch').length < 2; i++) {
    await new Promise((r) => setTimeout(r, 10))
  }
  assert.equal(srv.count(), 2)
  await rejectsWith(v.verify(await sign(k1)), 'ERR_JWKS_NO_MATCHING_KEY')
  await v.verify(await sign(k2))
  assert.equal(srv.count(), 2)
  v.close()
})

test('concurrent forced refreshes share one fetch', async (t) => {
  const srv = await jwksServer(t)
  const { v } = makeVerifier(srv.url, { now: NOW })
  await Promise.all(Array.from({ length: 20 }, () => v.refresh()))
  assert.equal(srv.count(), 1)
  await v.refresh()
  assert.equal(srv.count(), 2)
  v.close()
})

test('fetches follow no redirects', async (t) => {
  const srv = await jwksServer(t)
  srv.state.handler = (req, res) => {
    if (req.url === '/jwks.json') return void res.writeHead(302, { location: '/elsewhere.json' }).end()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [k1.publicJwk] }))
  }
  const { v } = makeVerifier(srv.url, { now: NOW })
  await rejectsWith(v.verify(await sign(k1)), 'ERR_JWKS_FETCH_FAILED')
  assert.equal(srv.hits['/elsewhere.json'], undefined)
  v.close()
})

test('fetches time out', async (t) => {
  const srv = await jwksServer(t)
  srv.state.handler = () => {} // never answers
  const { v } = makeVerifier(srv.url, { now: NOW }, { jwksTimeoutMs: 200 })
  await rejectsWith(v.verify(await sign(k1)), 'ERR_JWKS_FETCH_FAILED')
  v.close()
})

test('responses over the size cap are refused, with or without Content-Length', async (t) => {
  const srv = await jwksServer(t)
  const big = JSON.stringify({ keys: [k1.publicJwk], pad: 'x'.repeat(70_000) })
  srv.state.handler = (req, res) => {
    if (req.url === '/jwks.json') return void res.writeHead(200, { 'content-length': Buffer.byteLength(big) }).end(big)
    res.writeHead(200) // chunked, no length
    res.write(big.slice(0, 40_000))
    res.end(big.slice(40_000))
  }
  for (const path of ['/jwks.json', '/chunked.json']) {
    const { v } = makeVerifier(srv.base + path, { now: NOW })
    await rejectsWith(v.verify(await sign(k1)), 'ERR_JWKS_FETCH_FAILED')
    v.close()
  }
  // The same document fits under a larger cap.
  const { v } = makeVerifier(srv.url, { now: NOW }, { jwksMaxBytes: 100_000 })
  await v.verify(await sign(k1))
  v.close()
})

test('unusable keys are skipped; a document that is not a JWKS is invalid', async (t) => {
  const srv = await jwksServer(t)
  srv.state.keys = [
    'garbage', null, { kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }, { kty: 'RSA', kid: 'k1' },
    { ...k1.publicJwk, use: 'enc' }, { ...k3.publicJwk, key_ops: ['encrypt'] }, { ...k2.publicJwk, alg: 'RSA-OAEP' },
  ]
  const { v } = makeVerifier(srv.url, { now: NOW })
  await rejectsWith(v.verify(await sign(k1)), 'ERR_JWKS_NO_MATCHING_KEY')
  await rejectsWith(v.verify(await sign(k2)), 'ERR_JWKS_NO_MATCHING_KEY')
  await rejectsWith(v.verify(await sign(k3)), 'ERR_JWKS_NO_MATCHING_KEY')
  v.close()
  srv.state.keys = ['garbage', { ...k1.publicJwk, use: 'sig' }]
  const good = makeVerifier(srv.url, { now: NOW })
  await good.v.verify(await sign(k1))
  good.v.close()
  srv.state.handler = (_req, res) => void res.writeHead(200).end('{"keys": nope')
  const bad = makeVerifier(srv.url, { now: NOW })
  await rejectsWith(bad.v.verify(await sign(k1)), 'ERR_JWKS_INVALID')
  bad.v.close()
})
