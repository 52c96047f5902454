/**
 * Profiles the gateway under figure h's HTTP load or figure i's wire load: `node --cpu-prof` on a child
 * `pg-authorize serve` (compiled dist/), wrk or pgbench for `--seconds`, then a summary of the profile by
 * function (self time) and by file. Not part of `npm run bench`; run by hand:
 *
 *     npx tsx bench/profile.ts --load http --seconds 10
 *     npx tsx bench/profile.ts --load wire --seconds 10
 *     npx tsx bench/profile.ts --load http --perf     # Linux perf instead: native and kernel frames too
 *
 * V8's profiler charges time it cannot place to the native function last called (under HTTP load it put
 * half of all samples in `writev`, while /proc said the kernel had a fifth of the CPU); `--perf` samples
 * the whole process with `perf record` (JS frames named through `--perf-basic-prof-only-functions`).
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freePort } from '../src/database/embedded.js'
import { buildDist, findTool, ROOT, run, startStack, stopChild, waitForLine } from './lib.js'
import { gatewayRequests, httpIdentities, pgbenchTables, wrk, wrkScript } from './peers.js'

const { values } = parseArgs({ options: { load: { type: 'string', default: 'http' }, seconds: { type: 'string', default: '10' }, perf: { type: 'boolean', default: false } } })
const perfTool = values.perf ? findTool('perf') : undefined
if (values.perf && !perfTool) throw new Error('perf not found (Debian: apt-get install linux-perf)')
const seconds = Number(values.seconds)
await buildDist()
const stack = await startStack({ maxConnections: 200 })
const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-prof-'))
try {
  const port = await freePort()
  const pgPort = await freePort()
  const profFlags = perfTool ? ['--perf-basic-prof-only-functions'] : ['--cpu-prof', `--cpu-prof-dir=${dir}`]
  const child = spawn(process.execPath, [...profFlags, path.join(ROOT, 'bin/pg-authorize.js'),
    'serve', '--database-url', stack.ownerUrl, '--port', String(port), '--pg-port', String(pgPort), '--pool-size', '10',
    '--log-level', 'warn', '--wire-max-sessions-per-identity', '0', '--wire-max-startup-per-address', '0', '--pool-identity-share', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await waitForLine(child, /gateway ready/, 60_000)
  child.stdout!.resume()
  child.stderr!.resume()
  // perf samples the gateway for the load's measured seconds (after wrk's 1 s warm-up).
  const perfData = path.join(dir, 'perf.data')
  const recording = perfTool
    ? new Promise((r) => setTimeout(r, 1500)).then(() =>
      run(perfTool, ['record', '-F', '997', '-g', '-p', String(child.pid), '-o', perfData, '--', 'sleep', String(seconds - 1)]))
    : undefined
  if (values.load === 'http') {
    const users = await httpIdentities(stack)
    const script = wrkScript(dir, gatewayRequests(stack, users, 'select id, name, email from users where id = $1'))
    const r = await wrk(findTool('wrk')!, script, port, seconds, child.pid!)
    console.log(`${r.rate.toFixed(0)} req/s, ${r.cpuUs.toFixed(0)} µs CPU/req`)
  } else {
    const pgbench = findTool('pgbench')!
    await pgbenchTables(pgbench, stack)
    const out = await run(pgbench, ['-S', '-n', '-M', 'prepared', '-c', '32', '-j', '2', '-T', String(seconds), `postgresql://authenticated@127.0.0.1:${pgPort}/${stack.database}`], { PGPASSWORD: stack.token, PGSSLMODE: 'disable' })
    console.log(/tps = [\d.]+/.exec(out)?.[0])
  }
  await recording
  await stopChild(child)
  if (perfTool) {
    const report = await run(perfTool, ['report', '-i', perfData, '--stdio', '--no-children', '--sort', 'dso', '-g', 'none']) +
      await run(perfTool, ['report', '-i', perfData, '--stdio', '--no-children', '--sort', 'dso,sym', '--percent-limit', '0.6', '-g', 'none'])
    console.log(report.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, 60).join('\n'))
    process.exit(0)
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!
  const prof = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>
  }
  const total = prof.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0)
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const n of prof.nodes) {
    const f = n.callFrame
    const where = f.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1').replace(/^node:/, 'node:')
    const key = `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`
    byFn.set(key, (byFn.get(key) ?? 0) + (n.hitCount ?? 0))
    const file = where || f.functionName
    byFile.set(file, (byFile.get(file) ?? 0) + (n.hitCount ?? 0))
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, n]) => `${((n / total) * 100).toFixed(1).padStart(5)}%  ${name}`).join('\n')
  console.log(`\nself time by function (${total} samples):\n${top(byFn, 30)}\n\nby file:\n${top(byFile, 25)}`)
  console.log(`\nprofile: ${path.join(dir, file)}`)
} finally {
  await stack.stop()
}
