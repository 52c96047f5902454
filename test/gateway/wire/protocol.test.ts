/**
 * The gateway's own protocol handling, byte by byte: boundary tracking over split chunks, a pipelined
 * first frame over WebSocket, SSLRequest/GSSENCRequest answers, TLS with a self-signed certificate, and
 * the rule that a cleartext password needs TLS off loopback.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import postgres from 'postgres'
import ws, { WebSocketServer } from 'ws'
import { BoundaryTracker, parseOptionsParameter } from '../../../src/gateway/protocol.js'
import { isLoopbackAddress, passwordAllowed } from '../../../src/gateway/wire/index.js'
import { GOOD_PASSWORD, startHarness, type Harness } from './harness.js'
import { needs, OPENSSL, PSQL } from '../../helpers/requires.js'

function msg(type: string, body: Buffer | string = ''): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body)
  const out = Buffer.alloc(5 + b.length)
  out.write(type, 0)
  out.writeInt32BE(4 + b.length, 1)
  b.copy(out, 5)
  return out
}

function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0')
  const out = Buffer.alloc(8 + body.length)
  out.writeInt32BE(8 + body.length, 0)
  out.writeInt32BE(196608, 4)
  body.copy(out, 8)
  return out
}

/** Splits a backend byte stream into [type, body] pairs. */
function messages(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = []
  let i = 0
  while (i + 5 <= buf.length) {
    const len = buf.readInt32BE(i + 1)
    out.push([String.fromCharCode(buf[i]!), buf.subarray(i + 5, i + 1 + len)])
    i += 1 + len
  }
  return out
}

test('BoundaryTracker follows message lengths across any chunking and stops at the next boundary', () => {
  const stream = Buffer.concat([msg('T', 'abcdef'), msg('D', ''), msg('C', 'SELECT 1\0'), msg('Z', 'I')])
  const ends = new Set([11, 16, 30, 36])
  for (let size = 1; size <= stream.length; size++) {
    const t = new BoundaryTracker()
    for (let i = 0; i < stream.length; i += size) {
      t.advance(stream.subarray(i, i + size), false)
      assert.equal(t.atBoundary, ends.has(Math.min(i + size, stream.length)), `size ${size} at ${i}`)
    }
    assert.equal(t.corrupt, false)
  }
  const t = new BoundaryTracker()
  assert.equal(t.advance(stream, true), 0) // already at a boundary
  t.advance(stream.subarray(0, 3), false) // inside the first message's header
  assert.equal(t.advance(stream.subarray(3), true), 11 - 3)
  assert.ok(t.atBoundary)
  const bad = new BoundaryTracker()
  bad.advance(Buffer.from([0x44, 0, 0, 0, 2]), false)
  assert.equal(bad.corrupt, true)
})

test('the options startup parameter: -c settings only', () => {
  assert.deepEqual(parseOptionsParameter('-c search_path=a\\ b --statement-timeout=5s -cwork_mem=1MB'), [
    ['search_path', 'a b'],
    ['statement_timeout', '5s'],
    ['work_mem', '1MB'],
  ])
  assert.equal(parseOptionsParameter('-D /tmp'), null)
})

test('a cleartext password needs TLS except on loopback, unless explicitly allowed', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a)
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', undefined, '']) assert.ok(!isLoopbackAddress(a), String(a))
  assert.equal(passwordAllowed(false, '10.0.0.1', false), false)
  assert.equal(passwordAllowed(true, '10.0.0.1', false), true)
  assert.equal(passwordAllowed(false, '10.0.0.1', true), true)
  assert.equal(passwordAllowed(false, '127.0.0.1', false), true)
})

let h: Harness
let tlsDir: string | undefined
let cert: string | undefined
const noOpenssl = needs(OPENSSL)
const openssl = noOpenssl === false

before(async () => {
  if (openssl) {
    tlsDir = mkdtempSync(path.join(os.tmpdir(), 'pga-wire-tls-'))
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(tlsDir, 'key.pem'), '-out', path.join(tlsDir, 'cert.pem'),
    ], { stdio: 'ignore' })
    cert = readFileSync(path.join(tlsDir, 'cert.pem'), 'utf8')
  }
  h = await startHarness(
    openssl ? { tls: { cert: cert!, key: readFileSync(path.join(tlsDir!, 'key.pem')) } } : {},
  )
})

after(async () => {
  await h?.close()
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true })
})

test('WebSocket: startup, password and first query in one frame before the password is asked for', async () => {
  const sock = new ws(`ws://127.0.0.1:${h.httpPort}/v2?address=db.example:5432`)
  await new Promise((resolve, reject) => sock.once('open', resolve).once('error', reject))
  let received = Buffer.alloc(0)
  const done = new Promise<void>((resolve) => {
    sock.on('message', (data: Buffer) => {
      received = Buffer.concat([received, data])
      if (messages(received).filter(([t]) => t === 'Z').length === 2) resolve()
    })
  })
  sock.send(
    Buffer.concat([
      startupMessage({ user: 'postgres', database: h.db.database, application_name: 'pipelined' }),
      msg('p', GOOD_PASSWORD + '\0'),
      msg('Q', `select current_setting('application_name') as app\0`),
    ]),
  )
  await done
  sock.close()
  const types = messages(received).map(([t]) => t)
  // R(3) R(0) S... K Z, then the query's T D C Z.
  assert.deepEqual(types.slice(0, 2), ['R', 'R'])
  const [r1, r2] = messages(received)
  assert.equal(r1![1].readInt32BE(0), 3)
  assert.equal(r2![1].readInt32BE(0), 0)
  assert.ok(types.includes('S') && types.includes('K'))
  assert.deepEqual(types.slice(-4), ['T', 'D', 'C', 'Z'])
  const data = messages(received).find(([t]) => t === 'D')![1]
  assert.match(data.toString(), /pipelined/)
})

test('TCP: SSLRequest is answered S with TLS configured, GSSENCRequest N', { skip: noOpenssl }, async () => {
  const answers: string[] = []
  for (const code of [80877103, 80877104]) {
    const s = net.connect(h.port, '127.0.0.1')
    const b = Buffer.alloc(8)
    b.writeInt32BE(8, 0)
    b.writeInt32BE(code, 4)
    s.write(b)
    answers.push(await new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString()))))
    s.destroy()
  }
  assert.deepEqual(answers, ['S', 'N'])
})

test('TLS: pg and postgres.js verify the self-signed certificate and run queries', { skip: needs(OPENSSL, PSQL) }, async () => {
  const c = new pg.Client({ connectionString: h.url(), ssl: { ca: cert!, servername: 'localhost' } })
  await c.connect()
  try {
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1)
    assert.equal(h.requests.at(-1)!.transport, 'tls')
  } finally {
    await c.end()
  }
  const sql = postgres(h.url(), { ssl: { ca: cert!, servername: 'localhost' }, max: 1 })
  try {
    assert.equal((await sql`select 2 as two`)[0]!.two, 2)
    assert.equal(h.requests.at(-1)!.transport, 'tls')
  } finally {
    await sql.end({ timeout: 5 })
  }
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'psql',
      ['-X', '-A', '-t', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
        `postgresql://postgres@localhost:${h.port}/${h.db.database}?sslmode=verify-full&sslrootcert=${path.join(tlsDir!, 'cert.pem')}`],
      { env: { ...process.env, PGPASSWORD: GOOD_PASSWORD, PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
      (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
    ),
  )
  // The upstream leg is the gateway's own (plain here); what matters is that psql verified the gateway.
  assert.equal(out.trim(), 'f')
  assert.equal(h.requests.at(-1)!.transport, 'tls')
})

test('a password in the clear from a non-loopback address is refused before it is asked for', async () => {
  // The socket is loopback, but the gateway is told the peer is remote (as behind a WebSocket upgrade).
  const server = http.createServer()
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (sock) =>
      h.gateway.handleWebSocket(sock, { socket: { remoteAddress: '10.1.2.3' } } as unknown as http.IncomingMessage),
    ),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const before = h.requests.length
    const sock = new ws(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/v2`)
    await new Promise((resolve, reject) => sock.once('open', resolve).once('error', reject))
    let received = Buffer.alloc(0)
    sock.on('message', (d: Buffer) => (received = Buffer.concat([received, d])))
    const closed = new Promise((resolve) => sock.once('close', resolve))
    sock.send(startupMessage({ user: 'postgres', database: h.db.database }))
    await closed
    const all = messages(received)
    assert.equal(all.length, 1)
    assert.equal(all[0]![0], 'E')
    assert.match(all[0]![1].toString(), /FATAL.*C28000.*TLS is required/s)
    assert.equal(h.requests.length, before)
  } finally {
    wss.close()
    await new Promise((resolve) => server.close(resolve))
  }
})

test('an unsupported protocol version gets FATAL and nothing upstream', async () => {
  const s = net.connect(h.port, '127.0.0.1')
  const b = Buffer.alloc(8)
  b.writeInt32BE(8, 0)
  b.writeInt32BE(2 << 16, 4)
  s.write(b)
  const reply = await new Promise<Buffer>((resolve) => {
    let all = Buffer.alloc(0)
    s.on('data', (d) => (all = Buffer.concat([all, d])))
    s.on('close', () => resolve(all))
  })
  const [[type, body]] = messages(reply) as [[string, Buffer]]
  assert.equal(type, 'E')
  assert.match(body.toString(), /FATAL.*C0A000/s)
  // Backends of the earlier tests' sessions may still be ending under load: wait (bounded) for them, then
  // require none at all.
  let upstream = await h.upstreamConnections()
  for (let i = 0; i < 100 && upstream > 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    upstream = await h.upstreamConnections()
  }
  assert.equal(upstream, 0)
})
