/**
 * Wire-gateway overhead benchmark: pgbench `-S` (read-only primary-key select) straight to Postgres and
 * through the wire gateway, at 8 and 32 clients, in the same run on the same embedded Postgres.
 *
 *     node --import tsx bench/wire.ts [seconds=10]
 *
 * The gateway's authenticate hook accepts a fixed password and logs in upstream with the owner URL, so
 * this measures the relay (startup happens once per client; pgbench keeps its connections). A third column
 * is a bare `socket.pipe` TCP proxy: the floor any Node relay pays for the extra hop.
 * Needs `pgbench` on PATH.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { startEmbeddedPostgres } from '../src/database/embedded.js'
import { createWireGateway } from '../src/gateway/wire/index.js'

const seconds = Number(process.argv[2] ?? 10)
const PASSWORD = 'bench-token'

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${stderr}`)) : resolve(stdout),
    ),
  )
}

const dataDir = path.join(os.tmpdir(), 'pg-authorize-bench-' + randomBytes(4).toString('hex'), 'data')
const server = await startEmbeddedPostgres({ dataDir, ephemeral: true })
const direct = new URL(server.url)
const gateway = createWireGateway({
  async authenticate(req) {
    if (req.password !== PASSWORD) throw new Error('bad password')
    return { role: req.user, database: req.database, envelope: null, expiresAt: undefined, upstream: { connectionString: server.url } }
  },
})
// The floor: a proxy that only pipes bytes, no protocol awareness at all.
const pipeProxy = net.createServer((c) => {
  const up = net.connect(Number(direct.port), direct.hostname)
  c.setNoDelay(true)
  up.setNoDelay(true)
  c.pipe(up).on('error', () => c.destroy())
  up.pipe(c).on('error', () => up.destroy())
  c.on('error', () => up.destroy())
  up.on('error', () => c.destroy())
})
try {
  const { port } = await gateway.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => pipeProxy.listen(0, '127.0.0.1', resolve))
  const piped = new URL(server.url)
  piped.port = String((pipeProxy.address() as net.AddressInfo).port)
  await run('pgbench', ['-i', '-q', '-s', '10', server.url])
  const via = new URL(server.url)
  via.port = String(port)
  via.password = ''
  const tps = async (url: URL, clients: number, password: string): Promise<number> => {
    const out = await run('pgbench', ['-S', '-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(seconds), url.toString()], {
      PGPASSWORD: password,
      PGSSLMODE: 'disable',
    })
    const m = /tps = ([\d.]+) \((without|excluding)/.exec(out)
    if (!m) throw new Error('unexpected pgbench output:\n' + out)
    return Number(m[1])
  }
  console.log(`pgbench -S -M prepared, ${seconds}s per run, ${os.cpus().length} CPUs, Node ${process.version}`)
  console.log('| clients | direct tps | wire gateway tps | ratio | bare socket.pipe proxy tps | ratio |')
  console.log('|---:|---:|---:|---:|---:|---:|')
  const ownerPassword = decodeURIComponent(direct.password)
  for (const clients of [8, 32]) {
    const d = await tps(direct, clients, ownerPassword)
    const g = await tps(via, clients, PASSWORD)
    const p = await tps(piped, clients, ownerPassword)
    const r = (x: number) => (x / d).toFixed(2)
    console.log(`| ${clients} | ${d.toFixed(0)} | ${g.toFixed(0)} | ${r(g)} | ${p.toFixed(0)} | ${r(p)} |`)
  }
} finally {
  pipeProxy.close()
  await gateway.close()
  await server.stop()
}
