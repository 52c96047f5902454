/**
 * What to do with a `postmaster.pid` found in a data folder before starting Postgres on it.
 *
 * After a crash (a SIGKILLed `dev`, a closed terminal, the OOM killer) the folder may hold:
 *
 * - a stale lock: its PID is gone, or is now some other process. Postgres refuses to start while the
 *   PID is alive ("lock file already exists"), so the file is removed and the process left alone;
 * - an orphan: a live postmaster serving this very folder. It is stopped like `pg_ctl stop -m fast`
 *   (SIGINT to the postmaster), so its shutdown checkpoint keeps the data, and waited for.
 *
 * A process counts as "a postmaster for this folder" only when the lock's data-folder line names this
 * folder, the process's program is `postgres` (backends rename themselves "postgres: …") and its working
 * folder (a postmaster chdirs into its data folder) is this folder. A postmaster serving any other data
 * directory is never signalled. Linux reads /proc; elsewhere `ps` must show `-D <this folder>`.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, readlink, realpath, rm } from 'node:fs/promises'
import path from 'node:path'
import { PgAuthorizeError } from '../errors.js'

export interface PostmasterLock {
  pid: number
  /** The lock's second line: the data folder the postmaster was started on. */
  dataDir: string
  port: number | undefined
}

/** What {@link clearPostmasterLock} did, for the one line `dev` prints. */
export type LockOutcome =
  | { action: 'none' }
  | { action: 'removed-stale'; pid: number; reason: 'gone' | 'not-ours'; message: string }
  | { action: 'stopped-orphan'; pid: number; port: number | undefined; message: string }

export async function readPostmasterLock(dataDir: string): Promise<PostmasterLock | undefined> {
  let text: string
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')
  } catch {
    return undefined
  }
  const lines = text.split('\n')
  const pid = Number(lines[0])
  const port = Number(lines[3])
  return { pid: Number.isInteger(pid) && pid > 0 ? pid : 0, dataDir: (lines[1] ?? '').trim(), port: Number.isInteger(port) && port > 0 ? port : undefined }
}

/**
 * True when `pid` runs (EPERM: it runs, owned by someone else). A zombie does not count: it has exited
 * and only waits to be reaped, which an orphan's new parent (PID 1, in a container or VM not always a
 * prompt reaper) may take a second or more to do.
 */
export function processAlive(pid: number): boolean {
  if (!(pid > 0)) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (process.platform !== 'linux') return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false // gone between the two looks
  }
}

const sameFolder = async (a: string, b: string) => {
  const real = (p: string) => realpath(p).catch(() => path.resolve(p))
  return (await real(a)) === (await real(b))
}

/** Whether `pid` is a postmaster whose data folder is `dataDir` (see the module comment). */
export async function servesDataDir(pid: number, dataDir: string): Promise<boolean> {
  if (process.platform === 'linux') {
    try {
      const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? ''
      if (path.basename(argv0) !== 'postgres' && path.basename(argv0) !== 'postmaster') return false
      return await sameFolder(await readlink(`/proc/${pid}/cwd`), dataDir)
    } catch {
      return false
    }
  }
  const command = await new Promise<string>((resolve) =>
    execFile('ps', ['-o', 'command=', '-p', String(pid)], (err, out) => resolve(err ? '' : out.trim())),
  )
  const m = /^(\S*postgres)\s.*-D\s+(\S+)/.exec(command)
  return m !== null && (await sameFolder(m[2]!, dataDir))
}

/**
 * Makes `dataDir` startable: removes a stale `postmaster.pid`, or stops the orphaned postmaster it
 * names. Call it only when no live owner (a running `dev`) holds the folder: an orphan is stopped.
 */
export async function clearPostmasterLock(dataDir: string, options: { stopWithinMs?: number } = {}): Promise<LockOutcome> {
  const lock = await readPostmasterLock(dataDir)
  if (!lock) return { action: 'none' }
  const file = path.join(dataDir, 'postmaster.pid')
  if (!processAlive(lock.pid)) {
    await rm(file, { force: true })
    return { action: 'removed-stale', pid: lock.pid, reason: 'gone', message: `removed a stale postmaster.pid (pid ${lock.pid} is gone)` }
  }
  const ours = (await sameFolder(lock.dataDir, dataDir)) && (await servesDataDir(lock.pid, dataDir))
  if (!ours) {
    if (await servesDataDir(lock.pid, dataDir)) {
      // It works in this folder but its lock names another path: a moved folder? Do not guess.
      throw new PgAuthorizeError('ERR_ALREADY_RUNNING', `a Postgres (pid ${lock.pid}) is running in ${dataDir} (its lock says ${lock.dataDir}); stop it first`)
    }
    await rm(file, { force: true })
    return {
      action: 'removed-stale',
      pid: lock.pid,
      reason: 'not-ours',
      message: `removed a stale postmaster.pid (pid ${lock.pid} is not a Postgres for this folder; left it running)`,
    }
  }
  // SIGINT is the fast shutdown (pg_ctl stop -m fast): clients are disconnected, a checkpoint is written.
  process.kill(lock.pid, 'SIGINT')
  const within = options.stopWithinMs ?? 30_000
  const deadline = Date.now() + within
  while (processAlive(lock.pid)) {
    if (Date.now() > deadline) {
      throw new PgAuthorizeError('ERR_DB_CONNECT', `the orphaned Postgres (pid ${lock.pid}) in ${dataDir} did not stop within ${within / 1000} s`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    action: 'stopped-orphan',
    pid: lock.pid,
    port: lock.port,
    message: `stopped an orphaned Postgres (pid ${lock.pid}${lock.port ? `, port ${lock.port}` : ''}) left by an earlier dev, before a fresh start`,
  }
}
