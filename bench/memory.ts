/**
 * Figure e: resident memory (VmRSS from /proc) of a child `pg-authorize serve` process (the compiled CLI,
 * as installed): idle after start, then with 1,000 concurrent authenticated wire sessions open (each ran one
 * query, each holds its own upstream Postgres connection). Goal: at most 150 MB with 1,000 sessions.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { fmt, sleep, spawnCli, stopChild, waitForLine, type BenchOptions, type Figure, type Stack } from './lib.js'

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error('no VmRSS')
  return Number(m[1]) / 1024
}

export async function benchMemory(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const sessions = 1000
  const child = spawnCli(['serve', '--database-url', stack.ownerUrl, '--port', '0', '--pg-port', '0'], { PG_AUTHORIZE_LOG_LEVEL: 'warn' })
  const clients: pg.Client[] = []
  try {
    const m = await waitForLine(child, /Postgres wire:\s+postgresql:\/\/[^@]+@([\d.]+):(\d+)\//, 30_000)
    const port = Number(m[2])
    await sleep(1000)
    const idle = rssMb(child.pid!)
    // Open the sessions 50 at a time (each costs an upstream login with SCRAM).
    for (let i = 0; i < sessions; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, sessions - i) }, async () => {
          const c = new pg.Client({ host: '127.0.0.1', port, user: 'authenticated', database: stack.database, password: stack.token })
          c.on('error', () => {})
          await c.connect()
          clients.push(c)
          const r = await c.query('select auth.user_id() as u')
          if (r.rows[0].u !== stack.alice.id) throw new Error('a wire session ran without its claims')
        }),
      )
    }
    await sleep(2000)
    const samples: number[] = []
    for (let i = 0; i < 3; i++) {
      samples.push(rssMb(child.pid!))
      await sleep(500)
    }
    const busy = Math.max(...samples)
    o.log(`  rss idle ${idle.toFixed(1)} MB, with ${sessions} sessions ${busy.toFixed(1)} MB (${(((busy - idle) * 1024) / sessions).toFixed(1)} kB/session)`)
    return [
      {
        id: 'e',
        name: `gateway RSS with ${fmt(sessions)} concurrent wire sessions`,
        value: busy,
        unit: 'MB',
        baseline: { label: 'idle', value: idle, unit: 'MB' },
        measure: `${busy.toFixed(0)} MB`,
        goal: '≤ 150 MB',
        pass: busy <= 150,
        noise: `max of ${samples.length} samples`,
        note: `${(((busy - idle) * 1024) / sessions).toFixed(1)} kB per session`,
      },
    ]
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
    await stopChild(child)
  }
}
