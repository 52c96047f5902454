/**
 * `dev` after a crash (issue 24): an orphaned Postgres must not lock the user out.
 *
 * Real processes: the CLI from source (test/helpers/cli.ts), its embedded Postgres, its watchdog. The
 * processes are found through /proc (Linux only; skipped loudly elsewhere). Every wait is bounded, and
 * `after` kills whatever a failed test left running: the CLIs, the postmasters of the test's folders.
 */
import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs'
import { rm, stat, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import path from 'node:path'
import pg from 'pg'
import { freePort, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/database/embedded.js'
import { processAlive } from '../../src/database/postmaster-lock.js'
import { runCli, startCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/fs.js'

const linux = process.platform === 'linux'
const skip = linux ? false : 'needs /proc (Linux) to find the processes'
if (!linux) console.warn('test/dev/crash.test.ts: skipped, it needs /proc (Linux)')

let dir: string
let stateDir: string
let dataDir: string
let postgresPort: number
const running: Array<{ stop: (s?: NodeJS.Signals) => Promise<number | null> }> = []
let other: EmbeddedPostgresHandle | undefined

before(async () => {
  dir = await tempDir('pga-crash-')
  stateDir = path.join(dir, '.pg-authorize')
  dataDir = path.join(stateDir, 'postgres', 'data')
  postgresPort = await freePort()
})

// A failed test must not leave its dev holding the folder for the next one.
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop('SIGINT').catch(() => {})
})

after(async () => {
  for (const r of running) await r.stop('SIGKILL').catch(() => {})
  // Whatever a failed test left: the postmasters serving this test's folders, and their watchdogs.
  for (const pid of [...postmastersOf(dataDir), ...watchdogsOf(dataDir)]) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
  await other?.stop().catch(() => {})
  if (dir) await rm(dir, { recursive: true, force: true })
})

// A zombie has exited (it waits for PID 1, a slow reaper in some VMs, to collect it): not alive.
const alive = processAlive
const read = (p: string) => { try { return readFileSync(p, 'utf8') } catch { return '' } }
const cwdOf = (pid: number) => { try { return readlinkSync(`/proc/${pid}/cwd`) } catch { return '' } }
const pids = () => (linux ? readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number) : [])

/** Postmasters (not backends: those rename themselves "postgres: ...") whose working folder is `data`. */
function postmastersOf(data: string): number[] {
  if (!data || !existsSync(data)) return []
  const real = realpathSync(data)
  return pids().filter((pid) => {
    const argv0 = read(`/proc/${pid}/cmdline`).split('\0')[0] ?? ''
    return path.basename(argv0) === 'postgres' && cwdOf(pid) === real
  })
}
function watchdogsOf(data: string): number[] {
  return pids().filter((pid) => {
    const argv = read(`/proc/${pid}/cmdline`).split('\0')
    return argv.includes('pg-authorize-watchdog') && argv.some((a) => a.startsWith(data))
  })
}
const postmasterPid = () => Number(read(path.join(dataDir, 'postmaster.pid')).split('\n')[0])

async function until(what: string, ok: () => boolean | Promise<boolean>, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const devArgs = () => ['dev', '--dir', stateDir, '--port', '0', '--pg-port', '0', '--jwks-port', '0', '--postgres-port', String(postgresPort), '--no-demo']
async function startDev() {
  const dev = await startCli(devArgs(), /Console admin token:\s+\S+\n/, { timeoutMs: 90_000 })
  running.push(dev)
  return dev
}
const ownerUrl = (out: string) => /owner URL[^:]*:\s+(\S+)/.exec(out)![1]!
async function query(url: string, sql: string, params: unknown[] = []) {
  const c = new pg.Client(url)
  await c.connect()
  try {
    return (await c.query(sql, params)).rows
  } finally {
    await c.end()
  }
}

test('dev killed with SIGKILL takes its Postgres along, within a bounded time', { skip }, async (t) => {
  const dev = await startDev()
  const pid = postmasterPid()
  assert.ok(alive(pid), 'a postmaster runs')
  await query(ownerUrl(dev.output()), 'create table kept (v text)')
  await query(ownerUrl(dev.output()), 'insert into kept values ($1)', ['first run'])
  const killedAt = Date.now()
  await dev.stop('SIGKILL')
  await until(`the postmaster ${pid} exits after dev is SIGKILLed`, () => !alive(pid), 15_000)
  t.diagnostic(`Postgres outlived a SIGKILLed dev by ${Date.now() - killedAt} ms (poll every 25 ms)`)
  await until('the watchdog exits too', () => watchdogsOf(dataDir).length === 0, 5_000)
})

test('dev, then SIGKILL to dev and its watchdog (an orphan stays), then dev again: ready, data kept, one postmaster', { skip }, async () => {
  const first = await startDev()
  const orphan = postmasterPid()
  const watchdogs = watchdogsOf(dataDir)
  for (const w of watchdogs) process.kill(w, 'SIGKILL')
  await first.stop('SIGKILL')
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(alive(orphan), 'the orphaned postmaster is still running')

  const second = await startDev()
  const out = second.output()
  assert.match(out, new RegExp(`stopped an orphaned Postgres \\(pid ${orphan}[,)]`))
  assert.ok(!alive(orphan), 'the orphan is gone')
  assert.deepEqual(await query(ownerUrl(out), 'select v from kept'), [{ v: 'first run' }], 'the data is kept')
  assert.deepEqual(postmastersOf(dataDir), [postmasterPid()], 'exactly one postmaster serves the folder')
  assert.equal(await second.stop('SIGINT'), 0)
  assert.deepEqual(postmastersOf(dataDir), [], 'a clean stop stops Postgres')
})

test('dev twice at once on one folder: the second refuses clearly, the first keeps serving', { skip }, async () => {
  const first = await startDev()
  const pid = postmasterPid()
  const second = await runCli(devArgs(), { timeoutMs: 60_000 })
  assert.notEqual(second.code, 0)
  assert.match(second.stderr, /already running on .*\(pid \d+, ports: .*Postgres \d+/)
  assert.match(second.stderr, /pid \d+/)
  assert.deepEqual(postmastersOf(dataDir), [pid], 'no second postmaster, the first one untouched')
  assert.deepEqual(await query(ownerUrl(first.output()), 'select v from kept'), [{ v: 'first run' }])
  const gateway = /SQL over HTTP endpoint:\s+(\S+)/.exec(first.output())![1]!
  const res = await fetch(gateway, { method: 'POST', body: '{}' })
  assert.ok(res.status >= 400 && res.status < 500, 'the gateway still answers')
  await res.body?.cancel()
  assert.equal(await first.stop('SIGINT'), 0)
})

test('two dev started at the same instant on one folder: exactly one serves, the other refuses', { skip }, async () => {
  const starts = await Promise.allSettled([startDev(), startDev()])
  const served = starts.filter((s) => s.status === 'fulfilled')
  const refused = starts.filter((s): s is PromiseRejectedResult => s.status === 'rejected')
  assert.equal(served.length, 1, 'one dev serves')
  assert.equal(refused.length, 1, 'the other does not')
  assert.match(String(refused[0]!.reason), /already running on .*\(pid \d+, ports: /)
  assert.deepEqual(postmastersOf(dataDir), [postmasterPid()], 'one postmaster')
  const winner = served[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof startDev>>>
  // Stopped here, not by the hook: the next test must not meet its Postgres still shutting down.
  assert.equal(await winner.value.stop('SIGINT'), 0)
})

test('a stale postmaster.pid (a dead PID) is cleared and dev starts', { skip }, async () => {
  // Nothing of an earlier test may still be shutting down: an exiting postmaster removes the lock file.
  await until('no postmaster or watchdog left from before', () => postmastersOf(dataDir).length === 0 && watchdogsOf(dataDir).length === 0)
  // A PID that was, and is no more.
  const gone = spawn('true')
  const deadPid = gone.pid!
  await new Promise((r) => gone.on('exit', r))
  assert.ok(!alive(deadPid))
  await writeFile(path.join(dataDir, 'postmaster.pid'), `${deadPid}\n${dataDir}\n1700000000\n${postgresPort}\n\n127.0.0.1\n  0  0\nready   \n`)
  const dev = await startDev()
  assert.match(dev.output(), new RegExp(`removed a stale postmaster.pid \\(pid ${deadPid}`))
  assert.deepEqual(await query(ownerUrl(dev.output()), 'select v from kept'), [{ v: 'first run' }])
  assert.equal(await dev.stop('SIGINT'), 0)
})

test('a postmaster.pid naming a postmaster of another data directory: that Postgres is left alone', { skip }, async () => {
  other = await startEmbeddedPostgres({ dataDir: path.join(dir, 'other', 'data') })
  const otherPid = Number(read(path.join(other.dataDir, 'postmaster.pid')).split('\n')[0])
  // Our folder's lock names that live PID (as after a reboot that handed the PID to someone else).
  await writeFile(path.join(dataDir, 'postmaster.pid'), `${otherPid}\n${dataDir}\n1700000000\n${postgresPort}\n\n127.0.0.1\n  0  0\nready   \n`)
  const dev = await startDev()
  assert.match(dev.output(), new RegExp(`removed a stale postmaster.pid \\(pid ${otherPid} is not a Postgres for this folder; left it running\\)`))
  assert.ok(alive(otherPid), 'the other postmaster still runs')
  assert.deepEqual(await query(other.url, 'select 1 as one'), [{ one: 1 }], 'and still serves')
  assert.equal(await dev.stop('SIGINT'), 0)
})

test('the console admin token is kept in the state folder (0600) and survives a restart', { skip }, async () => {
  const token = (out: string) => /Console admin token:\s+(\S+)/.exec(out)?.[1]
  const first = await startDev()
  const a = token(first.output())
  assert.ok(a)
  assert.equal(await first.stop('SIGINT'), 0)
  const file = path.join(stateDir, 'console-admin-token')
  assert.equal((await stat(file)).mode & 0o777, 0o600)
  assert.equal(readFileSync(file, 'utf8').trim(), a)
  const second = await startDev()
  assert.equal(token(second.output()), a, 'the same token after a restart')
  assert.equal(second.output().split(a).length - 1, 1, 'printed once, in the banner')
  assert.equal(await second.stop('SIGINT'), 0)
})
