/**
 * The JWKS cache follows HTTP: `Cache-Control: max-age` and `Expires` set the freshness, bounded by
 * `jwksCacheMinMs` / `jwksCacheMaxMs`; a refresh revalidates with `If-None-Match` and a 304 keeps the
 * keys. Against a real HTTP server on loopback; time is a fake clock handed to the verifier (and the
 * server's own `Date` header), so no test waits on or asserts the wall clock.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { generateSigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { Verifier, type VerifierEvent } from '../../src/verify/index.js'

const NOW = Date.UTC(2030, 0, 1)
const k1 = await generateSigningKey({ alg: 'ES256', kid: 'k1' })
const tokenK1 = await signToken({ privateJwk: k1.privateJwk, sub: 'u', now: NOW, expiresIn: '7d' })

async function server(t: { after(fn: () => unknown): void }, headers: (req: IncomingMessage) => Record<string, string>) {
  const requests: IncomingMessage[] = []
  const srv = createServer((req, res) => {
    requests.push(req)
    const h = headers(req)
    if (h[':status'] === '304') {
      const { ':status': _, ...rest } = h
      res.writeHead(304, rest).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', ...h }).end(JSON.stringify({ keys: [k1.publicJwk] }))
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections() }))
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/jwks.json`, requests }
}

function verifier(url: string, clock: { now: number }, bounds: { min?: number; max?: number } = {}) {
  const events: VerifierEvent[] = []
  const v = new Verifier({
    providers: [{ name: 'p', jwksUrl: url, algorithms: ['ES256'] }],
    now: () => clock.now,
    cache: false,
    jwksCooldownMs: 0,
    jwksMaxAgeMs: 600_000,
    jwksCacheMinMs: bounds.min ?? 60_000,
    jwksCacheMaxMs: bounds.max ?? 86_400_000,
    onEvent: (e) => events.push(e),
  })
  return { v, events }
}

/**
 * Verifies once at `at`, then gives a background refresh it may have started the time to reach the server
 * (and, with `requests`, waits until the server has seen that many, for up to 5 s).
 */
async function verifyAt(v: Verifier, clock: { now: number }, at: number, wait?: { requests: unknown[]; count: number }): Promise<void> {
  clock.now = at
  await v.verify(tokenK1)
  for (let i = 0; i < 100 && wait && wait.requests.length < wait.count; i++) await new Promise((r) => setTimeout(r, 50))
  await new Promise((r) => setTimeout(r, 50))
}

test('Cache-Control max-age sets the freshness: no refetch before it ends, one after', async (t) => {
  const srv = await server(t, () => ({ 'cache-control': 'public, max-age=3600' }))
  const clock = { now: NOW }
  const { v } = verifier(srv.url, clock)
  await verifyAt(v, clock, NOW)
  assert.equal(srv.requests.length, 1)
  await verifyAt(v, clock, NOW + 3_599_000) // past the 10-minute default, within max-age
  assert.equal(srv.requests.length, 1)
  await verifyAt(v, clock, NOW + 3_600_000, { requests: srv.requests, count: 2 })
  assert.equal(srv.requests.length, 2)
  v.close()
})

test('max-age minus Age; Expires minus the response Date; no-cache: all bounded by the minimum and maximum', async (t) => {
  const cases: { headers: Record<string, string>; freshMs: number; min?: number; max?: number }[] = [
    { headers: { 'cache-control': 'max-age=600', age: '300' }, freshMs: 300_000 },
    // The server's clock says 1 h before it expires, whatever the local clock says.
    { headers: { date: new Date(NOW - 86_400_000).toUTCString(), expires: new Date(NOW - 86_400_000 + 3_600_000).toUTCString() }, freshMs: 3_600_000 },
    { headers: { 'cache-control': 'no-cache' }, freshMs: 120_000, min: 120_000 },
    { headers: { 'cache-control': 'max-age=1' }, freshMs: 60_000 },
    { headers: { 'cache-control': 'max-age=31536000' }, freshMs: 7_200_000, max: 7_200_000 },
    { headers: { expires: '0' }, freshMs: 60_000 },
    { headers: {}, freshMs: 600_000 }, // no headers: jwksMaxAgeMs
  ]
  for (const c of cases) {
    const srv = await server(t, () => c.headers)
    const clock = { now: NOW }
    const { v } = verifier(srv.url, clock, { ...(c.min ? { min: c.min } : {}), ...(c.max ? { max: c.max } : {}) })
    await verifyAt(v, clock, NOW)
    await verifyAt(v, clock, NOW + c.freshMs - 1000)
    assert.equal(srv.requests.length, 1, `refetched before ${c.freshMs} ms: ${JSON.stringify(c.headers)}`)
    await verifyAt(v, clock, NOW + c.freshMs, { requests: srv.requests, count: 2 })
    assert.equal(srv.requests.length, 2, `not refetched at ${c.freshMs} ms: ${JSON.stringify(c.headers)}`)
    v.close()
  }
})

test('ETag revalidation: the refresh sends If-None-Match, a 304 keeps the keys and starts a new freshness period', async (t) => {
  const srv = await server(t, (req): Record<string, string> =>
    req.headers['if-none-match'] === '"v1"'
      ? { ':status': '304', etag: '"v1"', 'cache-control': 'max-age=600' }
      : { etag: '"v1"', 'cache-control': 'max-age=600' })
  const clock = { now: NOW }
  const { v, events } = verifier(srv.url, clock)
  await verifyAt(v, clock, NOW)
  assert.equal(srv.requests[0]!.headers['if-none-match'], undefined)
  await verifyAt(v, clock, NOW + 600_000, { requests: srv.requests, count: 2 })
  assert.equal(srv.requests.length, 2)
  assert.equal(srv.requests[1]!.headers['if-none-match'], '"v1"')
  const fetches = events.filter((e) => e.kind === 'jwks-fetch')
  assert.deepEqual(fetches.map((e) => e.kind === 'jwks-fetch' && e.ok && e.notModified === true), [false, true])
  // The keys are still there, and fresh again for max-age from the 304.
  await verifyAt(v, clock, NOW + 1_199_000)
  assert.equal(srv.requests.length, 2)
  await v.refresh() // a forced refresh revalidates too
  assert.equal(srv.requests[2]!.headers['if-none-match'], '"v1"')
  v.close()
})
