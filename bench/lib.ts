/**
 * Shared pieces of the benchmark suite: the figure type every benchmark returns, medians and noise, the
 * machine description, and a ready stack (embedded Postgres 17 with pg-authorize set up, the demo loaded and
 * an inline-JWKS provider) that the database benchmarks share.
 *
 * @module
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/database/embedded.js'
import { setup } from '../src/database/setup.js'
import { addProvider, withOwner } from '../src/database/providers.js'
import { loadDemo, DEMO_USERS, demoClaims } from '../src/dev/demo.js'
import { generateSigningKey, type SigningKey } from '../src/keys/generate.js'
import { signToken } from '../src/tokens/sign.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface BenchOptions {
  /** Shorter runs and smaller data (a smoke run, not figures to publish). */
  quick: boolean
  /** Measured runs per figure (the median is reported). */
  runs: number
  log: (line: string) => void
}

/** One row of the results table. */
export interface Figure {
  id: string
  name: string
  /** The measured value (median of the runs) and its unit. */
  value: number
  unit: string
  /** The baseline measured in the same run, when the figure has one. */
  baseline?: { label: string; value: number; unit: string }
  /** What the goal compares: the value itself, or value / baseline. */
  measure: string
  /** Human-readable goal, e.g. ">= 0.8x". */
  goal: string
  /** Whether the goal is met; undefined for informational rows. */
  pass: boolean | undefined
  /** Spread of the runs, e.g. "±3%" (min..max around the median). */
  noise: string
  note?: string
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Spread of runs as the largest distance from the median, in percent. */
export function noise(xs: number[], what = 'runs'): string {
  if (xs.length < 2) return `one ${what.slice(0, -1)}`
  const m = median(xs)
  if (m === 0) return '-'
  const d = Math.max(...xs.map((x) => Math.abs(x - m))) / Math.abs(m)
  return `±${(d * 100).toFixed(d < 0.1 ? 1 : 0)}% (${xs.length} ${what})`
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n)
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args[0] ?? ''} failed: ${stderr || err.message}`)) : resolve(stdout),
    ),
  )
}

/** Waits until a child prints a line matching `re` (on stdout or stderr); returns the match. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${re}: ${buf.slice(-2000)}`)), timeoutMs)
    const onData = (d: Buffer) => {
      buf += d.toString()
      const m = re.exec(buf)
      if (m) done(undefined, m)
    }
    const onExit = (code: number | null) => done(new Error(`exited (${code}) before ${re}: ${buf.slice(-2000)}`))
    const done = (err?: Error, m?: RegExpMatchArray) => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve(m!)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', onExit)
  })
}

/** Stops a child we started (by its pid) and waits for it to exit. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill(signal)
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(t)
}

/** Spawns `node bin/pg-authorize.js ...` (the compiled CLI, as installed). */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [path.join(ROOT, 'bin/pg-authorize.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Compiles src/ to dist/ (what `npm install` does through `prepare`), so the CLI children run the current code. */
export async function buildDist(): Promise<void> {
  await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']).catch((err) => {
    // tsc emits even with type errors in files being edited by others; only a missing entry point is fatal.
    if (!/error TS/.test(String(err))) throw err
  })
}

/** The machine, for the report. */
export async function machine(pgVersion: string): Promise<Record<string, string>> {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) cpu = m[1]!.trim()
  } catch {
    // not Linux
  }
  let pgbench = 'not found'
  try {
    pgbench = (await run(pgbenchPath(), ['--version'])).trim()
  } catch {
    // absent
  }
  return {
    CPU: cpu,
    'logical cores': String(os.cpus().length),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${os.type()} ${os.release()} ${os.arch()}`,
    Node: process.version,
    Postgres: pgVersion,
    pgbench,
  }
}

/** pgbench: on PATH, or Debian's postgresql-15 location. */
export function pgbenchPath(): string {
  for (const p of ['/usr/bin/pgbench', '/usr/lib/postgresql/15/bin/pgbench', '/usr/lib/postgresql/17/bin/pgbench']) {
    try {
      readFileSync(p, { flag: 'r' })
      return p
    } catch {
      // next
    }
  }
  return 'pgbench'
}

/** The shared stack of the database benchmarks. */
export interface Stack {
  postgres: EmbeddedPostgresHandle
  /** Owner URL of the `bench` database (pg-authorize set up, demo loaded). */
  ownerUrl: string
  database: string
  key: SigningKey
  /** A token of the demo user Alice (RS256, valid 1 h). */
  token: string
  alice: { id: string; tenantId: string }
  pgVersion: string
  /** A new token for `claims` with the stack's key. */
  sign(claims: Record<string, unknown>): Promise<string>
  stop(): Promise<void>
}

export async function startStack(options: { maxConnections?: number } = {}): Promise<Stack> {
  const dataDir = path.join(os.tmpdir(), 'pg-authorize-bench-' + randomBytes(4).toString('hex'), 'data')
  const postgres = await startEmbeddedPostgres({
    dataDir,
    ephemeral: true,
    // 1,000 wire sessions for the memory figure each hold a backend; keep shared memory modest.
    postgresFlags: ['-c', `max_connections=${options.maxConnections ?? 1200}`, '-c', 'shared_buffers=256MB'],
  })
  try {
    const database = 'bench'
    await withOwner(postgres.url, (c) => c.query(`create database ${database}`))
    const ownerUrl = postgres.urlFor(database)
    await setup(ownerUrl)
    await loadDemo(ownerUrl)
    const key = await generateSigningKey({ alg: 'RS256' })
    await withOwner(ownerUrl, (c) =>
      addProvider(c, { name: 'bench', jwks: { keys: [key.publicJwk as Record<string, unknown>] }, roles: ['authenticated'] }),
    )
    const user = DEMO_USERS[0]!
    const sign = (claims: Record<string, unknown>) => {
      const { sub, ...rest } = claims
      return signToken({ privateJwk: key.privateJwk, sub: sub as string, claims: rest, expiresIn: '1h' })
    }
    const token = await sign(demoClaims(user))
    const pgVersion = await withOwner(ownerUrl, async (c) => (await c.query<{ v: string }>('select version() as v')).rows[0]!.v)
    return {
      postgres,
      ownerUrl,
      database,
      key,
      token,
      alice: { id: user.sub, tenantId: user.tenantId },
      pgVersion: pgVersion.split(' on ')[0]!,
      sign,
      stop: () => postgres.stop(),
    }
  } catch (err) {
    await postgres.stop()
    throw err
  }
}

/** Runs `fn` on one owner connection. */
export { withOwner as owner } from '../src/database/providers.js'

/** Thrown by a benchmark that cannot run here (a tool is missing): reported loudly, never faked. */
export class Skip extends Error {}

/** The path of an executable on PATH (or in `extra`), or undefined. */
export function findTool(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', ...extra]
  for (const d of dirs) {
    const p = path.join(d, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // next
    }
  }
  return undefined
}

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ; 100 on Linux everywhere). */
const USER_HZ = 100

/**
 * CPU seconds used so far by `pid` and its direct children, live (cluster workers, Postgres backends) and
 * exited (the `cutime`/`cstime` of the ones it has reaped: a backend that ends between two readings keeps
 * its CPU in the sum), in user and in system (kernel) time.
 */
export function cpuTimes(pid: number): { user: number; system: number } {
  const ticks = (p: number | string) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return { ppid: Number(f[1]), user: Number(f[11]), system: Number(f[12]), reapedUser: Number(f[13]), reapedSystem: Number(f[14]) }
    } catch {
      return undefined
    }
  }
  const own = ticks(pid)
  let user = own ? own.user + own.reapedUser : 0
  let system = own ? own.system + own.reapedSystem : 0
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const t = ticks(e)
    if (t && t.ppid === pid) {
      user += t.user
      system += t.system
    }
  }
  return { user: user / USER_HZ, system: system / USER_HZ }
}

/** CPU seconds (user + system) of `pid` and its children; see {@link cpuTimes}. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid)
  return t.user + t.system
}
