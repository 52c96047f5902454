/**
 * A failed JWKS fetch says what happened, against real sockets: refused, DNS, timed out, TLS, HTTP status,
 * not JSON, too large. The message names the provider, never a response body.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fetchJwks } from '../../src/verify/fetch-jwks.js'
import { isPgAuthorizeError } from '../../src/errors.js'

let server: http.Server
let base: string
let closedPort: number

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/hang') return // never answers
    if (req.url === '/500') res.writeHead(500).end('secret-body-1b2c')
    else if (req.url === '/html') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>secret-body-1b2c</html>')
    else if (req.url === '/big') res.writeHead(200).end(JSON.stringify({ keys: [], pad: 'x'.repeat(5000) }))
    else res.writeHead(200).end('{"keys":[]}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // A port that was just free: nothing listens there.
  const probe = http.createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  closedPort = (probe.address() as AddressInfo).port
  await new Promise<void>((r) => probe.close(() => r()))
})
after(() => {
  server.closeAllConnections()
  server.close()
})

async function reason(url: string, timeoutMs = 2000, maxBytes = 1000): Promise<{ code: string; message: string }> {
  try {
    await fetchJwks(url, { fetch, timeoutMs, maxBytes, provider: 'p1' })
  } catch (err) {
    assert.ok(isPgAuthorizeError(err), String(err))
    assert.doesNotMatch(err.message, /secret-body/)
    return { code: err.code, message: err.message }
  }
  throw new Error('the fetch did not fail')
}

test('a failed JWKS fetch names its cause', async () => {
  assert.deepEqual(await fetchJwks(`${base}/ok`, { fetch, timeoutMs: 2000, maxBytes: 1000, provider: 'p1' }), { keys: [] })
  assert.match((await reason(`http://127.0.0.1:${closedPort}/jwks`)).message, /provider 'p1' failed: connection refused by 127\.0\.0\.1:\d+/)
  assert.match((await reason('http://no-such-host.invalid/jwks')).message, /failed: DNS lookup of no-such-host\.invalid failed/)
  assert.match((await reason(`${base}/hang`, 300)).message, /failed: timed out after 300 ms/)
  assert.match((await reason(`${base.replace('http:', 'https:')}/ok`)).message, /failed: TLS handshake with 127\.0\.0\.1:\d+ failed/)
  assert.match((await reason(`${base}/500`)).message, /failed: HTTP 500$/)
  const html = await reason(`${base}/html`)
  assert.equal(html.code, 'ERR_JWKS_INVALID')
  assert.match(html.message, /not valid JSON \(content-type text\/html\)/)
  assert.match((await reason(`${base}/big`)).message, /failed: response larger than 1000 bytes/)
})
