/**
 * Figure c: the wire gateway against direct connections, pgbench `-S` (read-only primary-key select,
 * `-M prepared`, scale 10) at 8 and 32 clients, on the same embedded Postgres in the same run.
 *
 * The gateway is the real one (`startGateway`): pgbench logs in as `authenticated` with a JWT as the password,
 * the gateway verifies it, logs in upstream as the role and installs the sealed claims, then relays bytes.
 * Direct: pgbench logs in as `authenticated` with the role's own password. A third column is a bare
 * `socket.pipe` TCP proxy in this same process: the floor any Node relay pays for the extra hop (one more
 * process on the path, two more socket writes and reads per message, on a 2-core box where pgbench, Postgres
 * and the relay compete for the CPU). Startup happens once per client; pgbench keeps its connections.
 *
 * Needs `pgbench` (Debian's postgresql-client; CI installs it). Without it the figure is skipped, not faked.
 *
 * @module
 */
import net from 'node:net'
import { startGateway } from '../src/gateway/gateway.js'
import { openDatabaseContext } from '../src/database/context.js'
import { fmt, median, noise, owner, pgbenchPath, run, type BenchOptions, type Figure, type Stack } from './lib.js'

export async function benchWire(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const pgbench = pgbenchPath()
  try {
    await run(pgbench, ['--version'])
  } catch {
    o.log('  pgbench not found: figure c skipped (apt-get install postgresql-client)')
    return []
  }
  const seconds = o.quick ? 3 : 8
  await run(pgbench, ['-i', '-q', '-s', '10', stack.ownerUrl])
  await owner(stack.ownerUrl, (c) => c.query('grant select on pgbench_accounts, pgbench_branches, pgbench_tellers to authenticated'))
  const ctx = await openDatabaseContext(stack.ownerUrl)
  const direct = new URL(String(ctx.roleConnectionConfig('authenticated').connectionString))
  const rolePassword = decodeURIComponent(direct.password)
  direct.password = ''
  // pgbench's clients all log in as one identity: lift the per-identity session limit (default 20) so the
  // 32-client figure measures the relay, not the limit.
  const gw = await startGateway({ databaseUrl: stack.ownerUrl, port: 0, pgPort: 0, wireLimits: { maxSessionsPerIdentity: 0 } })
  const pipeProxy = net.createServer((c) => {
    const up = net.connect(Number(direct.port), direct.hostname)
    c.setNoDelay(true)
    up.setNoDelay(true)
    c.pipe(up)
    up.pipe(c)
    c.on('error', () => up.destroy())
    up.on('error', () => c.destroy())
  })
  try {
    await new Promise<void>((resolve) => pipeProxy.listen(0, '127.0.0.1', resolve))
    const piped = new URL(direct)
    piped.port = String((pipeProxy.address() as net.AddressInfo).port)
    const via = new URL(direct)
    via.port = String(gw.pgPort)
    const tps = async (url: URL, clients: number, password: string): Promise<number> => {
      const out = await run(pgbench, ['-S', '-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(seconds), url.toString()], {
        PGPASSWORD: password,
        PGSSLMODE: 'disable',
      })
      const m = /tps = ([\d.]+) \((without|excluding)/.exec(out)
      if (!m) throw new Error('unexpected pgbench output:\n' + out)
      return Number(m[1])
    }
    const figures: Figure[] = []
    for (const clients of [8, 32]) {
      const d: number[] = []
      const g: number[] = []
      const p: number[] = []
      for (let r = 0; r < o.runs; r++) {
        d.push(await tps(direct, clients, rolePassword))
        g.push(await tps(via, clients, stack.token))
        p.push(await tps(piped, clients, rolePassword))
        o.log(`  ${clients} clients run ${r + 1}: direct ${fmt(d.at(-1)!)} tps, gateway ${fmt(g.at(-1)!)}, bare pipe ${fmt(p.at(-1)!)}`)
      }
      const ratios = g.map((x, i) => x / d[i]!)
      const pipeRatios = p.map((x, i) => x / d[i]!)
      const ratio = median(ratios)
      figures.push({
        id: 'c',
        name: `wire gateway, pgbench -S, ${clients} clients`,
        value: median(g),
        unit: 'tps',
        baseline: { label: 'direct', value: median(d), unit: 'tps' },
        measure: `${ratio.toFixed(2)}x direct`,
        goal: '≥ 0.8x direct',
        pass: ratio >= 0.8,
        noise: noise(ratios),
        note: `bare socket.pipe proxy: ${fmt(median(p))} tps = ${median(pipeRatios).toFixed(2)}x direct (the cost of the hop itself)`,
      })
    }
    return figures
  } finally {
    pipeProxy.close()
    await gw.close()
  }
}
