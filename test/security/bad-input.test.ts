/**
 * Bad input over HTTP, through the real gateway with real tokens: each request gets a clear 4xx and nothing runs
 * (every well-formed part of these requests would insert into `security_audit`, which stays empty, and no
 * restricted-role backend is ever opened). A 100 MB body is refused with 413 long before it has all been sent.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { neon, neonConfig } from '@neondatabase/serverless'
import { alice, DATABASE, startStack, type Stack } from './stack.js'

let s: Stack
let token: string
before(async () => {
  s = await startStack()
  token = await s.token()
})
after(() => s?.close())

const INSERT = 'insert into security_audit default values'
const conn = (role: string, db = DATABASE) => ({ 'Neon-Connection-String': `postgresql://${role}@db.localtest.me/${db}` })

/** Sends raw bytes to /sql and returns status and parsed body (if JSON). */
async function post(body: BodyInit | undefined, headers: Record<string, string>, bearer: string | undefined = token) {
  const res = await fetch(`${s.gateway.url}/sql`, {
    method: 'POST',
    headers: { ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}), ...headers },
    ...(body === undefined ? {} : { body }),
  })
  const text = await res.text()
  let json: { code?: string; message?: string } = {}
  try {
    json = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: res.status, code: json.code, message: json.message ?? text }
}

const CASES: Array<{ name: string; body?: BodyInit; headers?: Record<string, string>; bearer?: string | null; status: number; code?: string }> = [
  { name: 'malformed JSON', body: `{"query": "${INSERT}", "params": [`, status: 400 },
  { name: 'JSON that is not an object', body: `["${INSERT}"]`, status: 400 },
  { name: 'query not a string', body: JSON.stringify({ query: 42, params: [] }), status: 400 },
  { name: 'query missing', body: JSON.stringify({ params: [] }), status: 400 },
  { name: 'params not an array', body: JSON.stringify({ query: INSERT, params: 'x' }), status: 400 },
  { name: 'params of an object type', body: JSON.stringify({ query: `${INSERT} returning $1::text`, params: [{ a: 1 }, () => 1] }), status: 400 },
  { name: 'queries not an array', body: JSON.stringify({ queries: { query: INSERT } }), status: 400 },
  { name: 'a batch with one bad entry among good ones', body: JSON.stringify({ queries: [{ query: INSERT, params: [] }, { query: 7 }] }), status: 400 },
  { name: 'unknown isolation level', body: JSON.stringify({ queries: [{ query: INSERT, params: [] }] }), headers: { 'Neon-Batch-Isolation-Level': 'Chaos' }, status: 400 },
  { name: 'isolation level with SQL in it', body: JSON.stringify({ queries: [{ query: INSERT, params: [] }] }), headers: { 'Neon-Batch-Isolation-Level': 'Serializable; drop table notes' }, status: 400 },
  { name: 'body not UTF-8', body: Buffer.concat([Buffer.from('{"query":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from(`", "params": []}`)]), status: 400 },
  { name: 'UTF-16 body', body: Buffer.from(JSON.stringify({ query: INSERT, params: [] }), 'utf16le'), status: 400 },
  { name: 'no Neon-Connection-String', body: JSON.stringify({ query: INSERT, params: [] }), headers: { 'Neon-Connection-String': '' }, status: 400 },
  { name: 'Neon-Connection-String not a URL', body: JSON.stringify({ query: INSERT, params: [] }), headers: { 'Neon-Connection-String': 'host=evil user=postgres' }, status: 400 },
  { name: 'no Authorization header', body: JSON.stringify({ query: INSERT, params: [] }), bearer: null, status: 400, code: '28000' },
  { name: 'Authorization not Bearer', body: JSON.stringify({ query: INSERT, params: [] }), bearer: null, headers: { Authorization: `Basic ${Buffer.from('postgres:x').toString('base64')}` }, status: 400, code: '28000' },
  { name: 'role the provider does not allow (anonymous)', body: JSON.stringify({ query: INSERT, params: [] }), headers: conn('anonymous'), status: 400, code: '28000' },
  { name: 'the owner role', body: JSON.stringify({ query: INSERT, params: [] }), headers: conn('postgres'), status: 400, code: '28000' },
  { name: 'a predefined role (pg_read_server_files)', body: JSON.stringify({ query: INSERT, params: [] }), headers: conn('pg_read_server_files'), status: 400, code: '28000' },
  { name: 'the owner role with a password in the URL', body: JSON.stringify({ query: INSERT, params: [] }), headers: { 'Neon-Connection-String': `postgresql://postgres:guess@h/${DATABASE}` }, status: 400, code: '28000' },
  { name: 'a database the gateway does not serve', body: JSON.stringify({ query: INSERT, params: [] }), headers: conn('authenticated', 'postgres'), status: 400, code: '3D000' },
  { name: 'two statements in one query', body: JSON.stringify({ query: `select 1; ${INSERT}`, params: [] }), status: 400 },
]

test('bad requests get a clear 4xx and nothing runs', async () => {
  for (const c of CASES) {
    const headers = { 'Content-Type': 'application/json', ...conn('authenticated'), ...c.headers }
    const r = await post(c.body, headers, c.bearer === null ? '' : token)
    assert.equal(r.status, c.status, `${c.name}: ${r.status} ${r.message}`)
    if (c.code) assert.equal(r.code, c.code, c.name)
    assert.ok(r.message && r.message.length > 5, `${c.name}: no message`)
    assert.doesNotMatch(r.message, /eyJ|guess/, `${c.name}: the error echoes a secret`)
  }
  console.log(`# bad input: ${CASES.length} malformed requests refused`)
  assert.equal(await s.auditCount(), 0, 'a bad request ran SQL')
  // "Two statements in one query" may be refused by Postgres itself (after a login); nothing else logs in.
  assert.ok(s.restrictedLogins() <= 1, `restricted logins: ${s.restrictedLogins()}`)
  // The control: the same statement, well formed, runs.
  const ok = await post(JSON.stringify({ query: INSERT, params: [] }), { 'Content-Type': 'application/json', ...conn('authenticated') })
  assert.equal(ok.status, 200, ok.message)
  assert.equal(await s.auditCount(), 1)
  await s.owner.query('delete from security_audit')
})

test('a password in Neon-Connection-String is ignored: the JWT is the credential, as with Neon', async () => {
  // Neon's driver sends the connection string it was given as is, password included; Neon's proxy ignores
  // the password when a JWT comes with it. So does the gateway: even the owner's own password is no credential.
  const ownerPassword = decodeURIComponent(new URL(s.ownerUrl).password)
  assert.ok(ownerPassword.length > 8)
  const who = JSON.stringify({ query: 'select current_user as role, auth.user_id() as sub', params: [] })
  for (const password of ['guess', ownerPassword]) {
    const res = await fetch(`${s.gateway.url}/sql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Neon-Connection-String': `postgresql://authenticated:${encodeURIComponent(password)}@db.localtest.me/${DATABASE}` },
      body: who,
    })
    const text = await res.text()
    assert.equal(res.status, 200, text)
    assert.deepEqual(JSON.parse(text).rows, [{ role: 'authenticated', sub: alice.sub }])
    // Without a token the password opens nothing.
    const bare = await post(who, { 'Content-Type': 'application/json', 'Neon-Connection-String': `postgresql://authenticated:${encodeURIComponent(password)}@h/${DATABASE}` }, '')
    assert.equal(bare.status, 400)
    assert.equal(bare.code, '28000')
    // The owner's URL pasted by mistake names the owner role: refused, and the password is not echoed.
    const owner = await post(who, { 'Content-Type': 'application/json', 'Neon-Connection-String': `postgresql://postgres:${encodeURIComponent(password)}@h/${DATABASE}` })
    assert.equal(owner.status, 400)
    assert.equal(owner.code, '28000')
    assert.ok(!owner.message.includes(password) && !bare.message.includes(password), 'an error echoes the password')
  }
  // The real driver, given a URL with a password and an authToken.
  neonConfig.fetchEndpoint = `${s.gateway.url}/sql`
  const sql = neon(`postgresql://authenticated:${encodeURIComponent(ownerPassword)}@db.localtest.me/${DATABASE}`, { authToken: token })
  assert.deepEqual(await sql`select current_user as role, auth.user_id() as sub`, [{ role: 'authenticated', sub: alice.sub }])
})

test('the Neon driver shows the SQLSTATE of an unserved database (NeonDbError.code)', async () => {
  // The driver reads code, detail and hint only from a 400 body; any other status becomes "Server error
  // (HTTP status N): ..." with code undefined, which is what users saw.
  neonConfig.fetchEndpoint = `${s.gateway.url}/sql`
  for (const db of ['postgres', 'no_such_database']) {
    const sql = neon(`postgresql://authenticated@db.localtest.me/${db}`, { authToken: token })
    await assert.rejects(sql`select 1`, (err: Error & { code?: string }) => {
      assert.equal(err.name, 'NeonDbError')
      assert.equal(err.code, '3D000', err.message)
      assert.match(err.message, /does not serve/)
      return true
    })
  }
})

/** Streams up to `total` bytes to /sql and reports what came back and how much had been written by then. */
function stream100Mb(declareLength: boolean): Promise<{ status: number; sent: number }> {
  const total = 100 * 2 ** 20
  const chunk = Buffer.alloc(64 * 1024, 0x20)
  return new Promise((resolve, reject) => {
    let sent = 0
    let answered = false
    const req = http.request(`${s.gateway.url}/sql`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...conn('authenticated'),
        ...(declareLength ? { 'Content-Length': String(total) } : { 'Transfer-Encoding': 'chunked' }),
      },
    }, (res) => {
      answered = true
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode!, sent }))
      req.destroy()
    })
    req.on('error', (err) => (answered ? undefined : reject(err)))
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      if (!answered) req.end()
    }
    pump()
  })
}

test('a 100 MB body is refused with 413 before the server has read it all (declared and chunked)', async () => {
  for (const declared of [true, false]) {
    const r = await stream100Mb(declared)
    console.log(`# 100 MB body (${declared ? 'Content-Length' : 'chunked'}): ${r.status} after ${(r.sent / 2 ** 20).toFixed(1)} MB sent`)
    assert.equal(r.status, 413)
    assert.ok(r.sent < 100 * 2 ** 20, `the whole body was sent (${r.sent} bytes) before the answer`)
  }
  assert.equal(await s.auditCount(), 0)
  // The gateway still serves.
  assert.equal((await s.run('http', token, 'select 1 as one')).ok, true)
})
