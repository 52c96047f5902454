/**
 * The leak hunt (security property 8): key material never leaves the private schema.
 *
 * As Alice, with a valid token of her own, over each transport (TCP, WebSocket, HTTP): turn on every setting a
 * restricted role may change that prints trees, plans or values (every `debug_print_*`, `debug_pretty_print`
 * both ways, `client_min_messages = debug5`, both plan-cache modes, both `bytea_output` formats, and every other
 * boolean `pg_settings` lists with `context = 'user'`), call every `auth` function more than ten times in one
 * session (so PL/pgSQL plans switch from custom to generic), with a valid identity and with forged ones, run
 * `EXPLAIN (ANALYZE, VERBOSE, SETTINGS)` on queries that use them, and read the catalogs a client can read.
 * Every row, notice and error, and the server's whole log, is then searched for the sealing key and every
 * value derived from it: the key, the HMAC pads, and the MACs the server would compute for the forged
 * envelope and token, each as hex, base64, base64url, the decimal byte lists plan dumps print (signed and
 * unsigned) and bytea escapes.
 *
 * Then the end-to-end forgery: an attacker who holds everything collected tries every 32-byte value found in
 * it (and the value XOR the HMAC pad bytes) as the key, seals Bob's claims with it, and must never make
 * `auth.user_id()` return Bob's id.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import pg from 'pg'
import { sealClaims } from '../../src/database/session.js'
import { alice, bob, DATABASE, startStack, type Stack } from './stack.js'

let s: Stack
const serverLog: string[] = []
let aliceToken: string

before(async () => {
  s = await startStack({ poolSize: 2, onServerLog: (line) => serverLog.push(line) })
  aliceToken = await s.token(s.claimsOf(alice))
})
after(() => s?.close())

interface KeyMaterial {
  generation: number
  key: Buffer
  ipad: Buffer
  opad: Buffer
}

/** Every key the database holds, read through the owner. */
async function keyMaterial(owner: pg.ClientBase): Promise<KeyMaterial[]> {
  const r = await owner.query<KeyMaterial>(
    `select generation, key, ipad, opad from pgauthorize.sealing_key`,
  ).catch(() => owner.query<KeyMaterial>('select 1 as generation, key, ipad, opad from pgauthorize.secret'))
  return r.rows
}

const future = () => Math.floor(Date.now() / 1000) + 600
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** Bob's claims in the current envelope format, with a MAC of zeros: what a forger would set. */
function forgedEnvelope(generation: number): string {
  const sealed = sealClaims({ key: Buffer.alloc(32), generation }, { sub: bob.sub, tenant_id: bob.tenantId, role: 'authenticated' }, {
    role: 'authenticated',
    database: DATABASE,
    provider: 'app',
  })
  return sealed.slice(0, -64) + '0'.repeat(64)
}

function forgedToken(): { token: string; signingInput: string } {
  const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: bob.sub, tenant_id: bob.tenantId, exp: future() })}`
  return { token: `${signingInput}.${'A'.repeat(43)}`, signingInput }
}

/** The settings a restricted role may change that print trees, plans or values, for one pass. */
async function leakySettings(owner: pg.ClientBase, pass: number): Promise<Array<[string, string]>> {
  // Every boolean a plain user may set, on, except those that would end the session or refuse the test's writes.
  const skip = new Set(['exit_on_error', 'default_transaction_read_only', 'transaction_read_only', 'default_transaction_deferrable', 'transaction_deferrable', 'check_function_bodies', 'row_security'])
  const r = await owner.query<{ name: string }>(`select name from pg_settings where context = 'user' and vartype = 'bool' order by name`)
  const settings: Array<[string, string]> = r.rows.filter((x) => !skip.has(x.name)).map((x) => [x.name, 'on'])
  settings.push(
    ['debug_print_parse', 'on'],
    ['debug_print_rewritten', 'on'],
    ['debug_print_plan', 'on'],
    ['debug_pretty_print', pass % 2 === 0 ? 'off' : 'on'],
    ['client_min_messages', 'debug5'],
    ['plan_cache_mode', pass % 2 === 0 ? 'force_custom_plan' : 'force_generic_plan'],
    ['bytea_output', pass % 2 === 0 ? 'escape' : 'hex'],
    ['log_parameter_max_length_on_error', '-1'],
    ['jit_above_cost', '0'],
  )
  return settings
}

/** The statements of one pass: every auth function, many times, valid and forged, and what a client can read. */
function attackStatements(generation: number): string[] {
  const forged = forgedEnvelope(generation)
  const { token } = forgedToken()
  const many = (expr: string) => `select ${expr} as v from generate_series(1, 12)`
  const q = (v: string) => `'${v.replace(/'/g, "''")}'`
  return [
    'discard plans',
    ...['auth.session()', 'auth.jwt()', 'auth.user_id()', 'auth.uid()', `(select auth.session() ->> 'tenant_id')`].map(many),
    'select auth.init()',
    ...Array.from({ length: 12 }, () => 'select auth.user_id()'),
    `explain (analyze, verbose, settings, buffers) select * from users where id::text = (select auth.user_id())`,
    `explain (analyze, verbose, settings) select auth.session(), auth.user_id() from generate_series(1, 12)`,
    `explain (analyze, verbose, settings) select * from notes`,
    'select * from users',
    // Forged identities: a forged envelope, then a forged HS256 token, each many times (each fails).
    ...Array.from({ length: 12 }, () => `select set_config('pg_authorize.session', ${q(forged)}, false), auth.user_id()`),
    ...Array.from({ length: 12 }, () => `select auth.jwt_session_init(${q(token)})`),
    `select set_config('pg_authorize.session', ${q(forged)}, false), v from (${many('auth.user_id()')}) x`,
    // What a client can read of the catalogs.
    `select p.oid, p.proname, p.prosrc, p.prosqlbody::text, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('auth', 'pgauthorize')`,
    `select * from pg_settings`,
    `select * from pg_stat_activity`,
    `select * from pg_stat_user_functions`,
    `select * from pg_prepared_statements`,
    `select * from pg_db_role_setting`,
    `select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'pgauthorize'`,
    `select * from pg_stats where schemaname = 'pgauthorize'`,
  ]
}

/** Everything a client saw: rows, notices, errors with every field. */
const seen: string[] = []
function record(what: unknown): void {
  seen.push(typeof what === 'string' ? what : JSON.stringify(what, (_k, v) => (typeof v === 'bigint' ? String(v) : v)))
}
function recordError(err: unknown): void {
  const e = err as Record<string, unknown>
  record({ ...e, message: (err as Error).message })
}

async function huntOverWire(transport: 'tcp' | 'ws', settings: Array<[string, string]>, statements: string[]): Promise<void> {
  const session = await s.rawSession(transport, aliceToken)
  session.client.on('notice', (n: unknown) => {
    recordError(n)
  })
  try {
    for (const [k, v] of settings) {
      await session.client.query(`select set_config($1, $2, false)`, [k, v]).catch(recordError)
    }
    for (const sql of statements) {
      try {
        const r = await session.client.query(sql)
        record((Array.isArray(r) ? r : [r]).map((x: pg.QueryResult) => x.rows))
      } catch (err) {
        recordError(err)
      }
    }
  } finally {
    await session.close()
  }
}

async function huntOverHttp(settings: Array<[string, string]>, statements: string[]): Promise<void> {
  // One batch per statement: the settings first (session level, on the pooled backend), then the statement.
  const set = settings.map(([k, v]) => ({ query: 'select set_config($1, $2, false)', params: [k, v] }))
  for (const sql of statements) {
    const res = await fetch(`${s.gateway.url}/sql`, {
      method: 'POST',
      headers: {
        'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${DATABASE}`,
        'Content-Type': 'application/json',
        Authorization: `Bearer ${aliceToken}`,
      },
      body: JSON.stringify({ queries: [...set, { query: sql, params: [] }] }),
    })
    record(await res.text())
  }
}

/** The encodings a value may show up in: hex, base64(url), decimal byte lists, bytea escape. */
function encodings(bytes: Buffer): string[] {
  const out = new Set<string>()
  const windows = (size: number, step: number) => {
    const w: Buffer[] = []
    for (let i = 0; i + size <= bytes.length; i += step) w.push(bytes.subarray(i, i + size))
    return w
  }
  for (const w of windows(8, 1)) {
    out.add(w.toString('hex'))
    out.add(w.toString('hex').toUpperCase())
    out.add([...w].join(' '))
    out.add([...w].map((b) => (b > 127 ? b - 256 : b)).join(' '))
    out.add([...w].join(','))
    out.add(
      [...w]
        .map((b) => (b === 0x5c ? '\\\\' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '\\' + b.toString(8).padStart(3, '0')))
        .join(''),
    )
  }
  for (const w of windows(9, 3)) {
    out.add(w.toString('base64'))
    out.add(w.toString('base64url'))
  }
  return [...out].filter((e) => e.length >= 8)
}

interface Secret {
  name: string
  bytes: Buffer
}

function secretsOf(keys: KeyMaterial[]): Secret[] {
  const out: Secret[] = []
  const { signingInput } = forgedToken()
  for (const k of keys) {
    out.push({ name: `key ${k.generation}`, bytes: k.key })
    // Only the key-dependent half of each pad: the other half is the constant 0x36 / 0x5c.
    out.push({ name: `ipad ${k.generation}`, bytes: k.ipad.subarray(0, 32) })
    out.push({ name: `opad ${k.generation}`, bytes: k.opad.subarray(0, 32) })
    // The MACs the server computes for the forged values: a forgery oracle if they ever showed.
    const envelope = forgedEnvelope(k.generation).slice(0, -64)
    out.push({ name: `MAC of the forged envelope ${k.generation}`, bytes: createHmac('sha256', k.key).update(envelope).digest() })
    out.push({ name: `MAC of the forged token ${k.generation}`, bytes: createHmac('sha256', k.key).update(signingInput).digest() })
    out.push({ name: `HMAC inner hash ${k.generation}`, bytes: innerHash(k.ipad, envelope) })
  }
  return out
}

/** sha256(ipad || message): the HMAC's inner hash, derived from the key. */
function innerHash(ipad: Buffer, message: string): Buffer {
  return createHash('sha256').update(Buffer.concat([ipad, Buffer.from(message)])).digest()
}

test('leak hunt: no value derived from the sealing key reaches anything a restricted role can see, or the server log', async () => {
  const keys = await keyMaterial(s.owner)
  assert.ok(keys.length >= 1)
  const current = Math.max(...keys.map((k) => k.generation))
  for (let pass = 0; pass < 2; pass++) {
    const settings = await leakySettings(s.owner, pass)
    const statements = attackStatements(current)
    for (const transport of ['tcp', 'ws'] as const) await huntOverWire(transport, settings, statements)
    await huntOverHttp(settings, statements)
  }
  // The hunt must have looked at something: plans were printed, and the forged identities were refused.
  const corpus = [...seen, ...serverLog].join('\n')
  const flat = corpus.replace(/\\n|\s+/g, ' ')
  assert.match(corpus, /plan/i, 'debug_print_plan printed plans')
  assert.match(seen.join('\n'), /invalid session claims/, 'the forged envelope was refused')
  assert.match(seen.join('\n'), /invalid JWT/, 'the forged token was refused')
  // The end-to-end forgery: every 32-byte value in what Alice saw, as a key, and XOR the pad bytes.
  const candidates = candidateKeys(seen.join('\n'))
  const bobSub = await forgeWithCandidates(candidates, current)
  assert.equal(bobSub, 0, `none of ${candidates.length} candidate keys forges Bob's identity`)
  const found: string[] = []
  for (const secret of secretsOf(keys)) {
    for (const e of encodings(secret.bytes)) {
      if (corpus.includes(e) || flat.includes(e)) {
        found.push(`${secret.name} as ${JSON.stringify(e)}`)
        break
      }
    }
  }
  assert.deepEqual(found, [], `key material reached what a client or the log can see (${seen.length} items, ${serverLog.length} log lines searched)`)

})

/** Every 32-byte value in the text: 64 hex digits, 43-44 base64(url) characters, runs of 32+ decimal bytes. */
function candidateKeys(text: string): Buffer[] {
  const raw: Buffer[] = []
  for (const m of text.matchAll(/[0-9a-fA-F]{64,128}/g)) raw.push(Buffer.from(m[0].slice(0, 64), 'hex'))
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{43,88}={0,2}/g)) {
    const b = Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    if (b.length >= 32) raw.push(b.subarray(0, 32))
  }
  // Plan dumps wrap long lists (and JSON escapes the line breaks): read the numbers across them.
  for (const m of text.replace(/\\n|\s+/g, ' ').matchAll(/(?:-?\d{1,3} ){32,}/g)) {
    const nums = m[0].trim().split(' ').map(Number)
    // A plan dump prints the datum with its varlena header (1 or 4 bytes) first.
    for (const start of [0, 1, 2, 3, 4, 5]) {
      const b = Buffer.from(nums.slice(start, start + 32).map((n) => (n + 256) % 256))
      if (b.length === 32) raw.push(b)
    }
  }
  const out = new Map<string, Buffer>()
  for (const b of raw) {
    for (const x of [0, 0x36, 0x5c]) {
      const k = Buffer.from(b.map((v) => v ^ x))
      out.set(k.toString('hex'), k)
    }
  }
  return [...out.values()]
}

/** How many candidates made `auth.user_id()` return Bob's id over the wire. */
async function forgeWithCandidates(candidates: Buffer[], generation: number): Promise<number> {
  const session = await s.rawSession('tcp', aliceToken)
  let hits = 0
  try {
    for (const key of candidates) {
      const envelope = sealClaims({ key, generation }, { sub: bob.sub, tenant_id: bob.tenantId, role: 'authenticated', exp: future() }, {
        role: 'authenticated',
        database: DATABASE,
        provider: 'app',
      })
      try {
        const r = await session.client.query(`select set_config('pg_authorize.session', $1, false), auth.user_id() as sub`, [envelope])
        if (r.rows[0]?.sub === bob.sub) hits++
      } catch {
        // refused: the key was wrong
      }
    }
  } finally {
    await session.close()
  }
  return hits
}

test('the leak hunt searches what it claims to: a planted key in a notice is found', () => {
  // The detector itself must be able to fail: a key printed as a plan dump's signed decimal list is caught.
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 200) % 256))
  const dump = `:constvalue 36 [ 68 0 0 0 ${[...key].map((b) => (b > 127 ? b - 256 : b)).join(' ')} ]`
  assert.ok(encodings(key).some((e) => dump.includes(e)))
  assert.ok(candidateKeys(dump).some((c) => c.equals(key)))
  const escaped = [...key].map((b) => (b === 0x5c ? '\\\\' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '\\' + b.toString(8).padStart(3, '0'))).join('')
  assert.ok(encodings(key).some((e) => escaped.includes(e)))
})

