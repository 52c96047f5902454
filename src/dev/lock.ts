/**
 * `dev.lock` in the state folder: which `dev` owns the folder, so a second one is refused ("already
 * running, pid N, ports …") and is not confused with an orphaned Postgres left by a dead one.
 *
 * The file is created with O_EXCL, so of two starts at once exactly one wins. It records the PID and,
 * on Linux, the process's start time (/proc/PID/stat), so a PID reused by another process after a
 * crash is not mistaken for a running `dev`. A lock whose owner is gone is replaced.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { open, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { PgAuthorizeError } from '../errors.js'
import { processAlive } from '../database/postmaster-lock.js'

export interface DevPorts {
  gateway: number
  wire: number
  jwks: number
  postgres: number
}

interface LockContent {
  pid: number
  /** /proc/PID/stat field 22 (clock ticks since boot), Linux only. */
  started?: string
  ports: DevPorts
}

export interface DevLock {
  /** Rewrites the lock with the ports actually bound (a port 0 becomes the real one). */
  update(ports: DevPorts): Promise<void>
  /** Removes the lock, if it is still this process's. */
  release(): Promise<void>
}

function startTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

const describe = (p: DevPorts) => `ports: gateway HTTP ${p.gateway}, wire ${p.wire}, JWKS ${p.jwks}, Postgres ${p.postgres}`

/** Takes the folder's lock, or throws ERR_ALREADY_RUNNING naming the running `dev`. */
export async function acquireDevLock(dir: string, ports: DevPorts): Promise<DevLock> {
  const file = path.join(dir, 'dev.lock')
  const mine: LockContent = { pid: process.pid, ...(startTime(process.pid) ? { started: startTime(process.pid)! } : {}), ports }
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600)
      try {
        await handle.writeFile(JSON.stringify(mine) + '\n')
      } finally {
        await handle.close()
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err
    }
    let held: LockContent | undefined
    try {
      held = JSON.parse(await readFile(file, 'utf8')) as LockContent
    } catch {
      held = undefined // unreadable or half-written by a dead start: stale
    }
    if (held && processAlive(held.pid) && (held.started === undefined || held.started === startTime(held.pid))) {
      throw new PgAuthorizeError(
        'ERR_ALREADY_RUNNING',
        `pg-authorize dev is already running on ${dir} (pid ${held.pid}, ${describe(held.ports)}); stop it (Ctrl-C in its terminal, or kill ${held.pid}) or use another --dir`,
      )
    }
    await rm(file, { force: true })
  }
  return {
    async update(actual) {
      mine.ports = actual
      await writeFile(file, JSON.stringify(mine) + '\n', { mode: 0o600 })
    },
    async release() {
      try {
        const held = JSON.parse(await readFile(file, 'utf8')) as LockContent
        if (held.pid === process.pid) await rm(file, { force: true })
      } catch {}
    },
  }
}
