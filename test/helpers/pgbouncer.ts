/**
 * A real PgBouncer (Debian's package) on loopback in front of one Postgres, for the pooler tests and the
 * benchmark's peer figures. It refuses to run as root, so as root it runs as `nobody`, on files it may read.
 * Never a stand-in: what it does to sessions (transaction mode hands each transaction to any server
 * connection) is what the tests are about.
 */
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freePort } from '../../src/database/embedded.js'
import { program, type External } from './requires.js'

/** Debian's path first: /usr/sbin is not on every PATH. */
export const PGBOUNCER_PATH = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => {
  try {
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}) ?? 'pgbouncer'

export const PGBOUNCER: External = program(PGBOUNCER_PATH, 'apt-get install pgbouncer', ['--version'])

export interface PgBouncerOptions {
  /** Where Postgres listens. */
  upstream: { host: string; port: number }
  /** The databases it serves, by the same names. */
  databases: readonly string[]
  /** Logins and their plain passwords (its auth_file; SCRAM to the client and to Postgres). */
  users: Record<string, string>
  mode: 'session' | 'transaction'
  /** Server connections per (database, user). */
  poolSize: number
  /** More `[pgbouncer]` settings. */
  extra?: Record<string, string | number>
}

export interface PgBouncer {
  readonly port: number
  readonly pid: number
  /** `postgresql://127.0.0.1:PORT`. */
  readonly url: string
  /** Its log so far (for a failing test's message). */
  log(): string
  stop(): Promise<void>
}

const quote = (v: string) => `"${v.replace(/"/g, '""')}"`

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-pgbouncer-'))
  const port = await freePort()
  const logFile = path.join(dir, 'pgbouncer.log')
  writeFileSync(path.join(dir, 'users.txt'), Object.entries(options.users).map(([u, p]) => `${quote(u)} ${quote(p)}\n`).join(''))
  const settings: Record<string, string | number> = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: "''",
    auth_type: 'scram-sha-256',
    auth_file: path.join(dir, 'users.txt'),
    pool_mode: options.mode,
    max_client_conn: 500,
    default_pool_size: options.poolSize,
    logfile: logFile,
    pidfile: path.join(dir, 'pgbouncer.pid'),
    log_connections: 0,
    log_disconnections: 0,
    ...options.extra,
  }
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      ...options.databases.map((d) => `${d} = host=${options.upstream.host} port=${options.upstream.port} dbname=${d}`),
      '[pgbouncer]',
      ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
      '',
    ].join('\n'),
  )
  const root = process.getuid?.() === 0
  if (root) {
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim())
    chmodSync(dir, 0o755)
    chownSync(dir, nobody, nobody)
    for (const f of ['users.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), nobody, nobody)
  }
  const child = spawn(PGBOUNCER_PATH, [...(root ? ['-u', 'nobody'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: 'ignore' })
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8')
    } catch {
      return ''
    }
  }
  // Ready once it accepts a real login.
  const [user, password] = Object.entries(options.users)[0]!
  for (let i = 0; ; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port, user, password, database: options.databases[0] })
    try {
      await c.connect()
      await c.end()
      break
    } catch (err) {
      await c.end().catch(() => {})
      if (i > 100 || child.exitCode !== null) {
        child.kill('SIGKILL')
        const why = log()
        rmSync(dir, { recursive: true, force: true })
        throw new Error(`pgbouncer did not start: ${(err as Error).message}\n${why}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    port,
    pid: child.pid!,
    url: `postgresql://127.0.0.1:${port}`,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGINT')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
