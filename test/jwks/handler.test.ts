/**
 * The Web-standard JWKS handler, in process: caching headers, ETag/304, CORS, HEAD, 404/405, and
 * never a private member, for every algorithm, even when its key source hands it private keys.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { createJwksHandler, JWKS_PATH } from '../../src/jwks/index.js'
import { generateSigningKey, PRIVATE_MEMBERS } from '../../src/keys/index.js'

const URL_ = `http://jwks.test${JWKS_PATH}`
const keys = await Promise.all((['RS256', 'ES256', 'EdDSA'] as const).map((alg) => generateSigningKey({ alg })))

test('never serves a private member, for every algorithm, even from a source of private keys', async () => {
  const handler = createJwksHandler({
    keys: () => ({ keys: [...keys.map((k) => k.privateJwk), { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] }),
  })
  const res = await handler(new Request(URL_))
  assert.equal(res.status, 200)
  const text = await res.text()
  const body = JSON.parse(text) as { keys: Record<string, unknown>[] }
  assert.deepEqual(body.keys.map((k) => k.kid), keys.map((k) => k.kid))
  for (const key of body.keys) for (const m of PRIVATE_MEMBERS) assert.ok(!(m in key), `served "${m}" of ${String(key.alg)}`)
  for (const k of keys) assert.ok(!text.includes(String(k.privateJwk.d)))
  assert.deepEqual(body.keys, keys.map((k) => k.publicJwk))
})

test('Cache-Control, ETag with 304, HEAD, CORS', async () => {
  const handler = createJwksHandler({ jwks: { keys: keys.map((k) => k.publicJwk) }, maxAge: 120 })
  const res = await handler(new Request(URL_))
  assert.equal(res.headers.get('cache-control'), 'public, max-age=120')
  assert.equal(res.headers.get('access-control-allow-origin'), '*')
  assert.match(res.headers.get('content-type')!, /json/)
  const etag = res.headers.get('etag')!
  assert.match(etag, /^"[0-9a-f]+"$/)
  const body = await res.text()

  const notModified = await handler(new Request(URL_, { headers: { 'if-none-match': `"other", ${etag}` } }))
  assert.equal(notModified.status, 304)
  assert.equal(notModified.headers.get('etag'), etag)
  assert.equal(await notModified.text(), '')
  const weak = await handler(new Request(URL_, { headers: { 'if-none-match': `W/${etag}` } }))
  assert.equal(weak.status, 304)
  const changed = await handler(new Request(URL_, { headers: { 'if-none-match': '"stale"' } }))
  assert.equal(changed.status, 200)
  assert.equal(await changed.text(), body)

  const head = await handler(new Request(URL_, { method: 'HEAD' }))
  assert.equal(head.status, 200)
  assert.equal(head.headers.get('etag'), etag)
  assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)))
  assert.equal(await head.text(), '')

  const preflight = await handler(new Request(URL_, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'if-none-match' },
  }))
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*')
  assert.match(preflight.headers.get('access-control-allow-methods')!, /GET/)
  assert.equal(preflight.headers.get('access-control-allow-headers'), 'if-none-match')

  const defaults = await createJwksHandler({ jwks: { keys: [] } })(new Request(URL_))
  assert.equal(defaults.headers.get('cache-control'), 'public, max-age=300')
})

test('404 on other paths, 405 with Allow on other methods, 500 without details when the source fails', async () => {
  const handler = createJwksHandler({ jwks: { keys: [keys[0]!.publicJwk] } })
  assert.equal((await handler(new Request('http://jwks.test/'))).status, 404)
  assert.equal((await handler(new Request('http://jwks.test/.well-known/jwks.json/x'))).status, 404)
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const res = await handler(new Request(URL_, { method, body: method === 'DELETE' ? undefined : '{}' }))
    assert.equal(res.status, 405)
    assert.equal(res.headers.get('allow'), 'GET, HEAD, OPTIONS')
  }
  const failing = createJwksHandler({ keys: () => { throw new Error('/secret/path/private.jwk.json is broken') } })
  const res = await failing(new Request(URL_))
  assert.equal(res.status, 500)
  assert.ok(!(await res.text()).includes('secret'))
})

test('the handler module imports nothing from node:*, so it runs on Workers, Deno and Bun', async () => {
  for (const file of ['../../src/jwks/handler.ts', '../../src/keys/public.ts']) {
    const source = await readFile(new URL(file, import.meta.url), 'utf8')
    assert.doesNotMatch(source, /from ['"]node:/)
    for (const [, dep] of source.matchAll(/from '(\.[^']+)'/g)) assert.match(dep!, /public\.js$|handler\.js$/)
  }
})
