/**
 * The Data API's two figures (issue 17), measured in one run against `dev`'s stack (embedded Postgres 17,
 * real JWTs, the guide's demo):
 *
 * 1. a GET of one row by key through `/rest/v1/users?id=eq.…` against the same row through `POST /sql`
 *    (`select * from users where id = $1`), each with the same light load: `--concurrency` clients in a loop;
 * 2. a 10,000-row response: `/rest/v1` (the JSON built by Postgres, `json_agg`) against `/sql` (the gateway
 *    renders Neon's JSON row by row in JavaScript).
 *
 *     node --import tsx bench/rest.ts [--seconds 5] [--concurrency 4]
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { rm } from 'node:fs/promises'
import pg from 'pg'
import { startDev } from '../src/dev/dev.js'
import { freePort } from '../src/database/embedded.js'
import { tempDir } from '../test/helpers/fs.js'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '4' } } })
const seconds = Number(values.seconds)
const concurrency = Number(values.concurrency)

const dir = await tempDir('pga-bench-rest-')
const dev = await startDev({ dir, port: 0, pgPort: 0, jwksPort: 0, postgresPort: await freePort(), console: false, rest: { maxRows: null } })
try {
  const owner = new pg.Client(dev.ownerUrl)
  await owner.connect()
  await owner.query(`create table big (id int primary key, name text not null, n numeric, at timestamptz default now(), meta jsonb);
    insert into big select i, 'row ' || i, i * 1.5, now(), jsonb_build_object('i', i) from generate_series(1, 10000) i;
    grant select on big to authenticated`)
  await owner.query(`notify pgrst, 'reload schema'`)
  await owner.end()
  const alice = dev.tokens[0]!
  const auth = { authorization: `Bearer ${alice.token}` }
  const sqlHeaders = { ...auth, 'content-type': 'application/json', 'neon-connection-string': dev.authenticatedUrl, 'neon-raw-text-output': 'true', 'neon-array-mode': 'true' }
  const restOne = () => fetch(`${dev.restUrl}/users?id=eq.${alice.sub}`, { headers: auth })
  const sqlOne = () => fetch(dev.sqlEndpoint, { method: 'POST', headers: sqlHeaders, body: JSON.stringify({ query: 'select * from users where id = $1', params: [alice.sub] }) })
  const restBig = () => fetch(`${dev.restUrl}/big?order=id`, { headers: auth })
  const sqlBig = () => fetch(dev.sqlEndpoint, { method: 'POST', headers: sqlHeaders, body: JSON.stringify({ query: 'select * from big order by id', params: [] }) })

  async function load(name: string, send: () => Promise<Response>, secs: number): Promise<{ name: string; rps: number; meanMs: number; p50: number; p99: number; bytes: number }> {
    const first = await send()
    if (first.status !== 200) throw new Error(`${name}: ${first.status} ${await first.text()}`)
    const bytes = (await first.arrayBuffer()).byteLength
    const latencies: number[] = []
    const until = performance.now() + secs * 1000
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now()
        const r = await send()
        await r.arrayBuffer()
        if (r.status !== 200) throw new Error(`${name}: ${r.status}`)
        latencies.push(performance.now() - t)
      }
    }))
    latencies.sort((a, b) => a - b)
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length
    return { name, rps: latencies.length / secs, meanMs: mean, p50: latencies[Math.floor(latencies.length / 2)]!, p99: latencies[Math.floor(latencies.length * 0.99)]!, bytes }
  }

  // Warm-up (JIT, pools, plans), not counted.
  for (const send of [restOne, sqlOne, restBig, sqlBig]) await load('warm-up', send, Math.min(2, seconds))
  const rows: Awaited<ReturnType<typeof load>>[] = []
  // Interleaved, twice each, so drift in a shared machine hits both sides alike.
  for (let i = 0; i < 2; i++) {
    rows.push(await load('GET one row /rest/v1', restOne, seconds))
    rows.push(await load('same row POST /sql', sqlOne, seconds))
  }
  for (let i = 0; i < 2; i++) {
    rows.push(await load('10k rows /rest/v1 (json_agg)', restBig, seconds))
    rows.push(await load('10k rows POST /sql (JS)', sqlBig, seconds))
  }
  console.log(`concurrency ${concurrency}, ${seconds} s per run, Node ${process.version}`)
  for (const r of rows) {
    console.log(`${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(6)} req/s  mean ${r.meanMs.toFixed(2)} ms  p50 ${r.p50.toFixed(2)}  p99 ${r.p99.toFixed(2)}  body ${r.bytes} B`)
  }
  const sum = (prefix: string) => rows.filter((r) => r.name.startsWith(prefix)).reduce((a, r) => a + r.rps, 0)
  console.log(`one row: /rest/v1 at ${(sum('GET one row') / sum('same row')).toFixed(2)}x the throughput of /sql`)
  console.log(`10k rows: /rest/v1 at ${(sum('10k rows /rest') / sum('10k rows POST')).toFixed(2)}x the throughput of /sql`)
} finally {
  await dev.close()
  await rm(dir, { recursive: true, force: true })
}
