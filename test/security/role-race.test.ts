/**
 * A restricted role altering itself in a loop while another user logs in (issue 14 item 8, issue 23 item 2).
 * Alice, over one wire session, keeps running `ALTER ROLE CURRENT_USER SET ...` (or `... PASSWORD ...`) with
 * short pauses; meanwhile Bob opens 100 wire sessions (TCP and WebSocket) and sends 100 HTTP requests, each on
 * a fresh upstream login (after each one Bob ends his own pooled backend, so the next request must log in).
 * Not one of Bob's sessions may run with a setting Alice stored, not one may fail with XX000, and at least
 * 80% must get through. Every count is bounded; nothing is timed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { alice, bob, DATABASE, startStack, type Outcome, type Stack } from './stack.js'

let s: Stack
let aliceToken: string
let bobToken: string
before(async () => {
  s = await startStack({ poolSize: 2, poolTimeoutMs: 10_000 })
  aliceToken = await s.token(s.claimsOf(alice))
  bobToken = await s.token(s.claimsOf(bob))
})
after(() => s?.close())

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** What Bob's session runs with; a clean session gives FRESH. */
const PROBE = `select auth.user_id() as me,
  current_setting('standard_conforming_strings') as scs, current_setting('lock_timeout') as lt,
  current_setting('search_path') as sp, current_setting('work_mem') as wm,
  (select count(*) from pg_settings where source in ('user', 'database user'))::int as stored`
const FRESH = { me: bob.sub, scs: 'on', lt: '0', sp: '"$user", public', wm: '4MB', stored: 0 }

/**
 * Alice's loop: runs `statements` round-robin on one wire session until `stop` is set; when the gateway
 * ends her session she logs in again and carries on, as a determined attacker would.
 */
async function attack(statements: (i: number) => string, stop: { done: boolean }): Promise<{ ran: number; reconnects: number; failed: Record<string, number> }> {
  let session = await s.session('tcp', aliceToken)
  let ran = 0
  let reconnects = 0
  const failed: Record<string, number> = {}
  try {
    for (let i = 0; !stop.done; i++) {
      const out = await session.query(statements(i))
      if (out.ok) ran++
      else {
        // Her own statements may lose a race with the repair (XX000 is hers to see, not Bob's).
        failed[out.code] = (failed[out.code] ?? 0) + 1
        if (out.code === '57P01' || out.code === 'undefined') {
          await session.close()
          for (;;) {
            try {
              session = await s.session('tcp', aliceToken)
              reconnects++
              break
            } catch {
              if (stop.done) return { ran, reconnects, failed }
              await sleep(5)
            }
          }
        }
      }
      await sleep(2)
    }
  } finally {
    await session.close()
  }
  return { ran, reconnects, failed }
}

interface Tally {
  ok: number
  failures: Record<string, number>
  poisoned: string[]
  messages: string[]
}

function count(t: Tally, label: string, out: Outcome): void {
  if (out.ok) {
    t.ok++
    try {
      assert.deepEqual(out.rows[0], FRESH)
    } catch {
      t.poisoned.push(`${label}: ${JSON.stringify(out.rows[0])}`)
    }
    return
  }
  t.failures[out.code] = (t.failures[out.code] ?? 0) + 1
  t.messages.push(`${label}: ${out.code} ${out.message}`)
}

/** Bob: 100 wire sessions (half TCP, half WebSocket), 3 at a time, and 100 HTTP requests, 2 at a time. */
async function victim(): Promise<{ wire: Tally; http: Tally }> {
  const wire: Tally = { ok: 0, failures: {}, poisoned: [], messages: [] }
  const http: Tally = { ok: 0, failures: {}, poisoned: [], messages: [] }
  let nextWire = 0
  let nextHttp = 0
  const wireWorker = async () => {
    for (let i = nextWire++; i < 100; i = nextWire++) {
      const transport = i % 2 === 0 ? 'tcp' : 'ws'
      count(wire, `${transport} #${i}`, await s.run(transport, bobToken, PROBE))
    }
  }
  const httpWorker = async () => {
    for (let i = nextHttp++; i < 100; i = nextHttp++) {
      count(http, `http #${i}`, await s.http(bobToken, { query: PROBE, params: [] }))
      // End this pooled backend (a role may signal its own backends), so the next request logs in anew.
      await s.http(bobToken, { query: 'select pg_terminate_backend(pg_backend_pid())', params: [] })
    }
  }
  await Promise.all([wireWorker(), wireWorker(), wireWorker(), httpWorker(), httpWorker()])
  return { wire, http }
}

async function underAttack(what: string, statements: (i: number) => string) {
  const stop = { done: false }
  const attacker = attack(statements, stop)
  // Let the loop get going before Bob starts.
  await sleep(50)
  let result: { wire: Tally; http: Tally }
  try {
    result = await victim()
  } finally {
    stop.done = true
  }
  const alice = await attacker
  const repairs = s.gatewayEvents.filter((e) => e.kind === 'role-repair' && e.led === true).length
  console.log(`# ${what}: Alice ran ${alice.ran} ALTER ROLE, logged in again ${alice.reconnects} times (failed ${JSON.stringify(alice.failed)}); ` +
    `Bob wire ${result.wire.ok}/100 ok ${JSON.stringify(result.wire.failures)}, http ${result.http.ok}/100 ok ` +
    `${JSON.stringify(result.http.failures)}; poisoned ${result.wire.poisoned.length + result.http.poisoned.length}; repairs so far ${repairs}`)
  assert.ok(alice.ran >= 20, `the attack loop ran (${alice.ran} statements)`)
  for (const [name, t] of Object.entries(result)) {
    assert.deepEqual(t.poisoned, [], `${name}: Bob's sessions ran with settings Alice stored`)
    assert.equal(t.failures.XX000 ?? 0, 0, `${name}: XX000 reached a client: ${t.messages.filter((m) => m.includes('XX000')).join('; ')}`)
    assert.ok(!t.messages.some((m) => /tuple concurrently|internal error/i.test(m)), `${name}: an internal error reached a client: ${t.messages.join('; ')}`)
    assert.ok(t.ok >= 80, `${name}: only ${t.ok}/100 got through: ${t.messages.slice(0, 5).join('; ')}`)
  }
  // Once the loop stops, the next login repairs whatever it left behind.
  const last = await s.run('tcp', bobToken, PROBE)
  assert.ok(last.ok && JSON.stringify(last.rows[0]) === JSON.stringify(FRESH), JSON.stringify(last))
  return repairs
}

test('an ALTER ROLE CURRENT_USER SET loop never reaches another user\'s sessions, and logins stay available', async () => {
  const poison = [
    'alter role current_user set standard_conforming_strings = off',
    `alter role current_user set lock_timeout = '4321ms'`,
    `alter role current_user in database ${DATABASE} set search_path = pg_temp, public`,
    `alter role current_user set work_mem = '64kB'`,
  ]
  const repairs = await underAttack('set loop', (i) => poison[i % poison.length]!)
  assert.ok(repairs > 0, 'the repairs were reported')
  const left = await s.owner.query(`select count(*)::int as n from pg_db_role_setting where setrole = 'authenticated'::regrole`)
  assert.equal(left.rows[0].n, 0, 'no stored role default is left')
})

test('an ALTER ROLE CURRENT_USER PASSWORD loop keeps logins available and never shows XX000', async () => {
  await underAttack('password loop', (i) => `alter role current_user password 'alice-${i}'`)
  // Alice's last password no longer logs in directly; the gateway's does.
  for (const password of ['alice-0', 'alice-1']) {
    const direct = new pg.Client({ host: '127.0.0.1', port: s.postgres.port, user: 'authenticated', password, database: DATABASE })
    await assert.rejects(direct.connect(), (e: { code?: string }) => e.code === '28P01')
  }
})

test('repairs are counted in a metric, and never put the role password in SQL text (the server log)', async () => {
  // Log every statement (as a failed one would be), then make the gateway repair once more. Running as the
  // gateway role, the repair is a call of the owner's pgauthorize.repair_role, the verifier its parameter.
  await s.owner.query(`alter system set log_statement = 'all'`)
  await s.owner.query('select pg_reload_conf()')
  try {
    const from = s.serverLog().length
    assert.ok((await s.run('tcp', aliceToken, `alter role current_user password 'alice-again'`)).ok)
    const out = await s.run('tcp', bobToken, 'select auth.user_id() as me')
    assert.ok(out.ok, JSON.stringify(out))
    let lines: string[] = []
    // The log arrives asynchronously: wait (bounded) for the repair's statement to show.
    const isRepair = (l: string) => /alter role "authenticated" password|select pgauthorize\.repair_role\(/i.test(l)
    for (let i = 0; i < 100 && !lines.some(isRepair); i++) {
      await sleep(50)
      lines = s.serverLog().slice(from)
    }
    await sleep(100)
    lines = s.serverLog().slice(from)
    const at = lines.findIndex(isRepair)
    assert.ok(at >= 0, 'the repair was logged')
    assert.match(lines.slice(at, at + 3).join('\n'), /'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'/)
    const stored = await s.owner.query<{ password: string }>(`select password from pgauthorize.role_credentials where role = 'authenticated'`)
    assert.ok(!lines.some((l) => l.includes(stored.rows[0]!.password)), 'the stored role password reached the server log')
  } finally {
    await s.owner.query('alter system reset log_statement')
    await s.owner.query('select pg_reload_conf()')
  }
  const text = await s.gateway.metrics.text()
  for (const reason of ['settings', 'password']) {
    const line = text.split('\n').find((l) => l.startsWith('pg_authorize_role_repairs_total{') && l.includes(`reason="${reason}"`))
    assert.ok(line && Number(line.split(' ').at(-1)) > 0, `repairs (${reason}) are counted: ${line}`)
  }
})
