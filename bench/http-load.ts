/**
 * The load generator of figure b, run as a separate process: `concurrency` workers issue one request after
 * another for `seconds`, and the process prints `RESULT {json}` with the count and latency percentiles.
 *
 * - `mode: 'neon'`: the real `@neondatabase/serverless` client (`neon(url, { authToken })`) against the
 *   gateway's `POST /sql`;
 * - `mode: 'pg'`: the baseline, a direct `pg.Pool` of `poolSize` connections logged in as `authenticated`,
 *   running the statements the gateway runs (sealed claims installed transaction-locally, then the query),
 *   pipelined in one round trip with the gateway's own Pipeline, exactly as the gateway sends them.
 *
 * Config comes as JSON in the BENCH_CONFIG environment variable.
 *
 * @module
 */
import pg from 'pg'
import { neon, neonConfig } from '@neondatabase/serverless'
import { Pipeline, type Step } from '../src/gateway/http/execute.js'
import { installClaimsParamSql } from '../src/database/session.js'

interface Config {
  mode: 'neon' | 'pg'
  seconds: number
  warmupSeconds: number
  concurrency: number
  query: string
  params: string[]
  /** neon */
  endpoint?: string
  connectionString?: string
  token?: string
  /** neon: one identity per worker (worker i uses identities[i % n]) instead of `token` for all. */
  identities?: Array<{ token: string; params: string[] }>
  /** pg */
  pool?: pg.PoolConfig
  envelope?: string
}

const cfg = JSON.parse(process.env.BENCH_CONFIG!) as Config

/** One request of worker `w`; resolves the number of rows. */
let one: (w: number) => Promise<number>
let end = async () => {}
if (cfg.mode === 'neon') {
  neonConfig.fetchEndpoint = cfg.endpoint!
  const ids = cfg.identities ?? [{ token: cfg.token!, params: cfg.params }]
  const clients = ids.map((id) => ({ sql: neon(cfg.connectionString!, { authToken: id.token }), params: id.params }))
  one = async (w) => {
    const c = clients[w % clients.length]!
    return (await c.sql.query(cfg.query, c.params)).length
  }
} else {
  const pool = new pg.Pool(cfg.pool)
  end = () => pool.end()
  const steps: Step[] = [
    { text: installClaimsParamSql(true), values: [cfg.envelope!], capture: false, arrayMode: true, rawText: true },
    { text: cfg.query, values: cfg.params, capture: true, arrayMode: true, rawText: true },
  ]
  one = async () => {
    const client = await pool.connect()
    try {
      const p = new Pipeline(steps, 10 * 1024 * 1024)
      client.query(p as unknown as pg.QueryConfig)
      const [json] = await p.promise
      return (JSON.parse(json!) as { rows: unknown[] }).rows.length
    } finally {
      client.release()
    }
  }
}

// Every request must return the one row, or the benchmark measures errors.
if ((await one(0)) !== 1) throw new Error('the benchmark query did not return exactly one row')

async function load(seconds: number, record: boolean): Promise<{ count: number; latencies: number[]; errors: number }> {
  const until = performance.now() + seconds * 1000
  const latencies: number[] = []
  let count = 0
  let errors = 0
  await Promise.all(
    Array.from({ length: cfg.concurrency }, async (_, w) => {
      while (performance.now() < until) {
        const t = performance.now()
        try {
          if ((await one(w)) !== 1) errors++
          else count++
        } catch {
          errors++
        }
        if (record) latencies.push(performance.now() - t)
      }
    }),
  )
  return { count, latencies, errors }
}

await load(cfg.warmupSeconds, false)
const started = performance.now()
const r = await load(cfg.seconds, true)
const elapsed = (performance.now() - started) / 1000
r.latencies.sort((a, b) => a - b)
const pct = (p: number) => r.latencies[Math.min(r.latencies.length - 1, Math.floor((p / 100) * r.latencies.length))] ?? NaN
process.stdout.write(
  'RESULT ' + JSON.stringify({ rps: r.count / elapsed, errors: r.errors, p50: pct(50), p90: pct(90), p99: pct(99) }) + '\n',
)
await end()
