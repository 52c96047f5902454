/**
 * Figures h, i and j (issue 18): the gateway against the peers a user actually weighs it against, with the
 * server's own CPU read from /proc/PID/stat (user + system, the process and its cluster workers).
 *
 * - **h, HTTP**: `wrk` (Debian's package; a C load generator, so the client is not the bottleneck) at 32
 *   connections, `select id, name, email from users where id = $1` as 32 users of Alice's tenant (a token
 *   each, one request per identity in flight, so the fair share never refuses), through
 *   1. the gateway (`pg-authorize serve`, compiled, pool 10, log level warn, per-identity limits off),
 *   2. a hand-written jose + pg API (bench/peer-api.ts: `jwtVerify` with `createRemoteJWKSet`, then a pg
 *      transaction with `set_config('request.jwt.claims', ..., true)`, pool 10), reading the same table
 *      copy under a policy over the plain setting,
 *   3. a no-op Node HTTP server that reads the body and answers fixed JSON: Node's floor.
 * - **i, wire**: `pgbench -S -M prepared` (scale 10; 8 and 32 clients) straight to Postgres, through
 *   PgBouncer (Debian's package, started here in session mode on loopback) and through the gateway's wire
 *   port (JWT as password); tps, and the proxy's CPU per transaction.
 * - **k, HTTP through a pooler**: h's gateway load, straight to Postgres and through PgBouncer in
 *   transaction mode (`--pooler-url`; server pool 10, as the gateway's): what the extra hop costs, in
 *   throughput and in CPU (the gateway's and PgBouncer's).
 * - **j, workers**: the gateway with `--workers 1` and `--workers 2` under h's HTTP load and i's 32-client
 *   wire load: throughput and CPU per request.
 *
 * Every comparison runs its sides interleaved (A B C A B C ...) in one sitting. A missing tool skips the
 * figure with a loud line (and a note in the results), never a faked number.
 *
 * @module
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { freePort } from '../src/database/embedded.js'
import { openDatabaseContext } from '../src/database/context.js'
import { startPgBouncer } from '../test/helpers/pgbouncer.js'
import {
  cpuSeconds, cpuTimes, findTool, fmt, median, noise, owner, pgbenchPath, ROOT, run, Skip, spawnCli, stopChild, waitForLine,
  type BenchOptions, type Figure, type Stack,
} from './lib.js'

const QUERY = 'select id, name, email from users where id = $1'
const PEER_QUERY = 'select id, name, email from peer_users where id = $1'
const CONNECTIONS = 32
const POOL = 10

interface Server {
  pid: number
  port: number
  pgPort?: number
  stop(): Promise<void>
}

interface Load {
  /** Requests (HTTP) or transactions (wire) per second. */
  rate: number
  /** Server CPU per request or transaction, µs. */
  cpuUs: number
  /** Of which system (kernel) time, µs, when measured. */
  systemUs?: number
  /** Postgres' CPU (postmaster and backends) per request, µs, when measured. */
  pgCpuUs?: number
  /** PgBouncer's CPU per request, µs, when measured. */
  poolerCpuUs?: number
}

export async function startGatewayChild(stack: Stack, workers: number, extra: string[] = []): Promise<Server> {
  const port = await freePort()
  const pgPort = await freePort()
  const child = spawnCli([
    'serve', '--database-url', stack.ownerUrl, '--port', String(port), '--pg-port', String(pgPort),
    '--pool-size', String(POOL), '--log-level', 'warn', '--workers', String(workers),
    // pgbench's clients share one token and connect at once, and the hand-written API has no fair share:
    // the per-identity limits are not what is measured here (figure b measures the fair share's cost).
    '--wire-max-sessions-per-identity', '0', '--wire-max-startup-per-address', '0', '--pool-identity-share', '0',
    ...extra,
  ])
  await waitForLine(child, /gateway ready/, 60_000)
  drain(child)
  return { pid: child.pid!, port, pgPort, stop: () => stopChild(child) }
}

/** Keeps reading a child's output so a full pipe never blocks it. */
function drain(child: ChildProcess): void {
  child.stdout?.resume()
  child.stderr?.resume()
}

async function startPeer(config: Record<string, unknown>): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/peer-api.ts')], {
    cwd: ROOT,
    env: { ...process.env, BENCH_PEER: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const m = await waitForLine(child, /READY (\d+)/, 30_000)
  drain(child)
  return { pid: child.pid!, port: Number(m[1]), stop: () => stopChild(child) }
}

/** A tool's version line (wrk -v exits 1 after printing it). */
function toolVersion(tool: string, args: string[]): Promise<string> {
  return new Promise((resolve) =>
    execFile(tool, args, (_err, stdout, stderr) => resolve((stdout || stderr).split('\n')[0]!.replace(/\s+\[.*$/, '').trim() || path.basename(tool))),
  )
}

/** A wrk Lua script that cycles through prebuilt requests (one per identity). */
export function wrkScript(dir: string, requests: Array<{ headers: Record<string, string>; body: string }>): string {
  const lua = (s: string) => JSON.stringify(s) // ASCII only here: a JSON string is a Lua string literal
  const entries = requests.map(
    (r) => `  {${lua(r.body)}, {${Object.entries(r.headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`).join(', ')}}}`,
  )
  const file = path.join(dir, `wrk-${randomUUID()}.lua`)
  writeFileSync(
    file,
    `local defs = {\n${entries.join(',\n')}\n}
local reqs = {}
local i = 0
init = function(args)
  for k, d in ipairs(defs) do reqs[k] = wrk.format("POST", "/sql", d[2], d[1]) end
end
request = function()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
-- The first failed response of each thread, reported by done() (a benchmark of errors measures nothing).
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = nil
response = function(status, headers, body)
  if status ~= 200 and bad == nil then bad = status .. " " .. string.sub(body, 1, 300) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d\\n", summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration))
  for _, t in ipairs(threads) do
    local b = t:get("bad")
    if b then io.write("FAILED " .. b .. "\\n") end
  end
end
`,
  )
  return file
}

export async function wrk(tool: string, script: string, port: number, seconds: number, pid: number, pgPid?: number, poolerPid?: number): Promise<Load> {
  const url = `http://127.0.0.1:${port}/sql`
  // Warm-up (JIT, pools, the token cache), not measured.
  await run(tool, ['-t2', `-c${CONNECTIONS}`, '-d1s', '-s', script, url])
  const cpu0 = cpuTimes(pid)
  const pg0 = pgPid ? cpuSeconds(pgPid) : 0
  const pooler0 = poolerPid ? cpuSeconds(poolerPid) : 0
  const out = await run(tool, ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '-s', script, url])
  const cpu1 = cpuTimes(pid)
  const pg1 = pgPid ? cpuSeconds(pgPid) : 0
  const pooler1 = poolerPid ? cpuSeconds(poolerPid) : 0
  const m = /RESULT (\d+) (\d+) (\d+)/.exec(out)
  if (!m) throw new Error('unexpected wrk output:\n' + out)
  const [requests, errors, durationUs] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (errors > 0 || requests === 0) throw new Error(`wrk saw ${errors} errors (of ${requests} requests) against port ${port}:\n${out}`)
  return {
    rate: requests / (durationUs / 1e6),
    cpuUs: ((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / requests) * 1e6,
    systemUs: ((cpu1.system - cpu0.system) / requests) * 1e6,
    ...(pgPid ? { pgCpuUs: ((pg1 - pg0) / requests) * 1e6 } : {}),
    ...(poolerPid ? { poolerCpuUs: ((pooler1 - pooler0) / requests) * 1e6 } : {}),
  }
}

async function pgbench(tool: string, url: string, password: string, clients: number, seconds: number, pid: number | undefined): Promise<Load> {
  const sys0 = pid ? cpuTimes(pid).system : 0
  const cpu0 = pid ? cpuSeconds(pid) : 0
  const out = await run(tool, ['-S', '-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(seconds), url], {
    PGPASSWORD: password,
    PGSSLMODE: 'disable',
  })
  const cpu1 = pid ? cpuSeconds(pid) : 0
  const sys1 = pid ? cpuTimes(pid).system : 0
  const tps = /tps = ([\d.]+) \((without|excluding)/.exec(out)
  const n = /number of transactions actually processed: (\d+)/.exec(out)
  if (!tps || !n) throw new Error('unexpected pgbench output:\n' + out)
  const failed = /number of failed transactions: (\d+)/.exec(out)
  if (failed && Number(failed[1]) > 0) throw new Error('pgbench transactions failed:\n' + out)
  return {
    rate: Number(tps[1]),
    cpuUs: pid ? ((cpu1 - cpu0) / Number(n[1])) * 1e6 : NaN,
    ...(pid ? { systemUs: ((sys1 - sys0) / Number(n[1])) * 1e6 } : {}),
  }
}

/** The 32 identities of the HTTP load, their rows in `users` and `peer_users`, and the peer's policy. */
export async function httpIdentities(stack: Stack): Promise<Array<{ token: string; id: string }>> {
  const ids = Array.from({ length: CONNECTIONS }, () => randomUUID())
  await owner(stack.ownerUrl, async (c) => {
    await c.query(
      `insert into users (tenant_id, id, name, email) select $1, u, 'bench', u::text || '@bench.test' from unnest($2::uuid[]) u on conflict do nothing`,
      [stack.alice.tenantId, ids],
    )
    // The hand-written API's table: the same rows, under the policy such an API writes (a plain setting).
    await c.query(`create table if not exists peer_users (id uuid primary key, tenant_id uuid not null, name text, email text)`)
    await c.query(`alter table peer_users enable row level security`)
    await c.query(`drop policy if exists peer_users_select on peer_users`)
    await c.query(
      `create policy peer_users_select on peer_users for select to authenticated
         using (id = (select (nullif(current_setting('request.jwt.claims', true), '')::jsonb->>'sub')::uuid))`,
    )
    await c.query(`grant select on peer_users to authenticated`)
    await c.query(`insert into peer_users select id, tenant_id, name, email from users where id = any($1::uuid[]) on conflict do nothing`, [ids])
  })
  return Promise.all(ids.map(async (id) => ({ id, token: await stack.sign({ sub: id, tenant_id: stack.alice.tenantId, role: 'authenticated' }) })))
}

export function gatewayRequests(stack: Stack, users: Array<{ token: string; id: string }>, query: string) {
  return users.map((u) => ({
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${u.token}`,
      'neon-connection-string': `postgresql://authenticated@127.0.0.1/${stack.database}`,
      'neon-array-mode': 'true',
      'neon-raw-text-output': 'true',
    },
    body: JSON.stringify({ query, params: [u.id] }),
  }))
}

/** One request through a server, checked for exactly one row (a benchmark of errors measures nothing). */
async function checkOneRow(port: number, r: { headers: Record<string, string>; body: string }): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/sql`, { method: 'POST', headers: r.headers, body: r.body })
  const text = await res.text()
  const rows = (JSON.parse(text) as { rows?: unknown[] }).rows
  if (res.status !== 200 || rows?.length !== 1) throw new Error(`port ${port} answered ${res.status}: ${text.slice(0, 300)}`)
  return text
}

function ratioFigure(f: Omit<Figure, 'value' | 'baseline' | 'measure' | 'noise' | 'pass'> & {
  a: number[]; b: number[]; label: string; fmtValue?: (x: number) => string; goalTest: (r: number) => boolean; measureUnit: string
}): Figure {
  const ratios = f.a.map((x, i) => x / f.b[i]!)
  const ratio = median(ratios)
  return {
    id: f.id, name: f.name, unit: f.unit, goal: f.goal,
    value: median(f.a),
    baseline: { label: f.label, value: median(f.b), unit: f.unit },
    measure: `${ratio.toFixed(2)}x ${f.measureUnit}`,
    pass: f.goalTest(ratio),
    noise: noise(ratios),
    ...(f.note ? { note: f.note } : {}),
  }
}

const us = (xs: number[]) => `${fmt(median(xs), 0)} µs`

export async function benchPeersHttp(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const wrkTool = findTool('wrk')
  if (!wrkTool) throw new Skip('wrk not found (Debian: apt-get install wrk; .ci/run installs it)')
  const seconds = o.quick ? 3 : 8
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-peers-'))
  const users = await httpIdentities(stack)
  const ctx = await openDatabaseContext(stack.ownerUrl)
  const jwks = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [stack.key.publicJwk] })),
  )
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r))
  const servers: Server[] = []
  try {
    const gw = await startGatewayChild(stack, 1)
    servers.push(gw)
    const api = await startPeer({
      peer: 'api',
      jwksUrl: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`,
      pool: { ...ctx.roleConnectionConfig('authenticated'), max: POOL },
    })
    servers.push(api)
    const gwReqs = gatewayRequests(stack, users, QUERY)
    const apiReqs = gatewayRequests(stack, users, PEER_QUERY)
    const canned = await checkOneRow(gw.port, gwReqs[0]!)
    await checkOneRow(api.port, apiReqs[0]!)
    const noop = await startPeer({ peer: 'noop', body: canned })
    servers.push(noop)
    const gwScript = wrkScript(dir, gwReqs)
    const apiScript = wrkScript(dir, apiReqs)
    const g: Load[] = []
    const a: Load[] = []
    const n: Load[] = []
    for (let r = 0; r < o.runs; r++) {
      g.push(await wrk(wrkTool, gwScript, gw.port, seconds, gw.pid, stack.postgres.pid))
      a.push(await wrk(wrkTool, apiScript, api.port, seconds, api.pid, stack.postgres.pid))
      n.push(await wrk(wrkTool, gwScript, noop.port, seconds, noop.pid))
      o.log(
        `  run ${r + 1}: gateway ${fmt(g.at(-1)!.rate)} req/s ${fmt(g.at(-1)!.cpuUs)} µs CPU/req; ` +
          `hand-written ${fmt(a.at(-1)!.rate)} req/s ${fmt(a.at(-1)!.cpuUs)} µs; Postgres CPU/req gateway ${fmt(g.at(-1)!.pgCpuUs!)} µs, hand-written ${fmt(a.at(-1)!.pgCpuUs!)} µs; no-op ${fmt(n.at(-1)!.rate)} req/s ${fmt(n.at(-1)!.cpuUs, 1)} µs`,
      )
    }
    return [
      ratioFigure({
        id: 'h', name: `HTTP vs a hand-written jose+pg API (wrk, ${CONNECTIONS} connections, pool ${POOL})`, unit: 'req/s',
        a: g.map((x) => x.rate), b: a.map((x) => x.rate), label: 'hand-written API', measureUnit: 'hand-written',
        goal: '≥ 2x', goalTest: (x) => x >= 2,
        note: `${await toolVersion(wrkTool, ['-v'])}; no-op Node floor ${fmt(median(n.map((x) => x.rate)))} req/s; server CPU per request (of which kernel): gateway ${us(g.map((x) => x.cpuUs))} (${us(g.map((x) => x.systemUs!))}), hand-written ${us(a.map((x) => x.cpuUs))} (${us(a.map((x) => x.systemUs!))}), no-op ${fmt(median(n.map((x) => x.cpuUs)), 1)} µs (${fmt(median(n.map((x) => x.systemUs!)), 1)} µs); Postgres CPU per request: behind the gateway ${us(g.map((x) => x.pgCpuUs!))}, behind the hand-written API ${us(a.map((x) => x.pgCpuUs!))}`,
      }),
      ratioFigure({
        id: 'h', name: 'HTTP server CPU per request vs the no-op Node floor', unit: 'µs/req',
        a: g.map((x) => x.cpuUs), b: n.map((x) => x.cpuUs), label: 'no-op Node server', measureUnit: 'floor',
        goal: '≤ 4x', goalTest: (x) => x <= 4,
        note: `the hand-written API: ${us(a.map((x) => x.cpuUs))} per request = ${(median(a.map((x) => x.cpuUs)) / median(n.map((x) => x.cpuUs))).toFixed(1)}x the floor`,
      }),
    ]
  } finally {
    for (const s of servers) await s.stop()
    jwks.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** pgbench's tables, once per stack, readable by `authenticated`. */
export async function pgbenchTables(tool: string, stack: Stack): Promise<void> {
  const exists = await owner(stack.ownerUrl, async (c) => (await c.query(`select to_regclass('pgbench_accounts') is not null as e`)).rows[0].e as boolean)
  if (!exists) await run(tool, ['-i', '-q', '-s', '10', stack.ownerUrl])
  await owner(stack.ownerUrl, (c) => c.query('grant select on pgbench_accounts, pgbench_branches, pgbench_tellers to authenticated'))
}

export async function benchPeersWire(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const pgbenchTool = findTool('pgbench', ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/15/bin']) ?? (pgbenchPath() !== 'pgbench' ? pgbenchPath() : undefined)
  if (!pgbenchTool) throw new Skip('pgbench not found (Debian: apt-get install postgresql-client or postgresql-15)')
  const bouncerTool = findTool('pgbouncer')
  if (!bouncerTool) throw new Skip('pgbouncer not found (Debian: apt-get install pgbouncer; .ci/run installs it)')
  const seconds = o.quick ? 3 : 8
  await pgbenchTables(pgbenchTool, stack)
  const ctx = await openDatabaseContext(stack.ownerUrl)
  const direct = new URL(String(ctx.roleConnectionConfig('authenticated').connectionString))
  const rolePassword = decodeURIComponent(direct.password)
  direct.password = ''
  const servers: Server[] = []
  try {
    const bouncer = await startPgBouncer({
      upstream: { host: direct.hostname, port: Number(direct.port) }, databases: [direct.pathname.slice(1)],
      users: { authenticated: rolePassword }, mode: 'session', poolSize: 64,
    })
    servers.push(bouncer)
    const gw = await startGatewayChild(stack, 1)
    servers.push(gw)
    const at = (port: number) => Object.assign(new URL(direct), { port: String(port) }).toString()
    const figures: Figure[] = []
    for (const clients of [8, 32]) {
      const d: Load[] = []
      const b: Load[] = []
      const g: Load[] = []
      for (let r = 0; r < o.runs; r++) {
        d.push(await pgbench(pgbenchTool, direct.toString(), rolePassword, clients, seconds, undefined))
        b.push(await pgbench(pgbenchTool, at(bouncer.port), rolePassword, clients, seconds, bouncer.pid))
        g.push(await pgbench(pgbenchTool, at(gw.pgPort!), stack.token, clients, seconds, gw.pid))
        o.log(
          `  ${clients} clients run ${r + 1}: direct ${fmt(d.at(-1)!.rate)} tps; pgbouncer ${fmt(b.at(-1)!.rate)} tps ${fmt(b.at(-1)!.cpuUs, 1)} µs/txn; ` +
            `gateway ${fmt(g.at(-1)!.rate)} tps ${fmt(g.at(-1)!.cpuUs, 1)} µs/txn`,
        )
      }
      figures.push(
        ratioFigure({
          id: 'i', name: `wire vs PgBouncer (session mode), pgbench -S -M prepared, ${clients} clients`, unit: 'tps',
          a: g.map((x) => x.rate), b: b.map((x) => x.rate), label: 'PgBouncer', measureUnit: 'PgBouncer',
          goal: '≥ 0.9x', goalTest: (x) => x >= 0.9,
          note: `${await toolVersion(bouncerTool, ['--version'])}; direct to Postgres ${fmt(median(d.map((x) => x.rate)))} tps (gateway ${(median(g.map((x) => x.rate)) / median(d.map((x) => x.rate))).toFixed(2)}x, PgBouncer ${(median(b.map((x) => x.rate)) / median(d.map((x) => x.rate))).toFixed(2)}x); of the CPU per transaction, kernel time: gateway ${fmt(median(g.map((x) => x.systemUs!)), 1)} µs, PgBouncer ${fmt(median(b.map((x) => x.systemUs!)), 1)} µs`,
        }),
        ratioFigure({
          id: 'i', name: `wire proxy CPU per transaction vs PgBouncer, ${clients} clients`, unit: 'µs/txn',
          a: g.map((x) => x.cpuUs), b: b.map((x) => x.cpuUs), label: 'PgBouncer', measureUnit: 'PgBouncer',
          goal: '≤ 1.2x', goalTest: (x) => x <= 1.2,
        }),
      )
    }
    return figures
  } finally {
    for (const s of servers) await s.stop()
  }
}

export async function benchWorkers(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const wrkTool = findTool('wrk')
  if (!wrkTool) throw new Skip('wrk not found (Debian: apt-get install wrk; .ci/run installs it)')
  const pgbenchTool = findTool('pgbench', ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/15/bin'])
  if (!pgbenchTool) throw new Skip('pgbench not found (Debian: apt-get install postgresql-client)')
  const seconds = o.quick ? 3 : 8
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-workers-'))
  await pgbenchTables(pgbenchTool, stack)
  const users = await httpIdentities(stack)
  const servers: Server[] = []
  try {
    const one = await startGatewayChild(stack, 1)
    servers.push(one)
    const two = await startGatewayChild(stack, 2)
    servers.push(two)
    const reqs = gatewayRequests(stack, users, QUERY)
    await checkOneRow(one.port, reqs[0]!)
    await checkOneRow(two.port, reqs[0]!)
    const script = wrkScript(dir, reqs)
    const wireUrl = (s: Server) => `postgresql://authenticated@127.0.0.1:${s.pgPort}/${stack.database}`
    const h1: Load[] = []
    const h2: Load[] = []
    const w1: Load[] = []
    const w2: Load[] = []
    for (let r = 0; r < o.runs; r++) {
      h1.push(await wrk(wrkTool, script, one.port, seconds, one.pid))
      h2.push(await wrk(wrkTool, script, two.port, seconds, two.pid))
      w1.push(await pgbench(pgbenchTool, wireUrl(one), stack.token, 32, seconds, one.pid))
      w2.push(await pgbench(pgbenchTool, wireUrl(two), stack.token, 32, seconds, two.pid))
      o.log(
        `  run ${r + 1}: HTTP 1 worker ${fmt(h1.at(-1)!.rate)} req/s (${fmt(h1.at(-1)!.cpuUs)} µs CPU/req), 2 workers ${fmt(h2.at(-1)!.rate)} req/s (${fmt(h2.at(-1)!.cpuUs)} µs); ` +
          `wire 1 worker ${fmt(w1.at(-1)!.rate)} tps, 2 workers ${fmt(w2.at(-1)!.rate)} tps`,
      )
    }
    const cores = os.cpus().length
    return [
      ratioFigure({
        id: 'j', name: `HTTP, serve --workers 2 vs 1 (wrk, ${CONNECTIONS} connections, ${cores} cores)`, unit: 'req/s',
        a: h2.map((x) => x.rate), b: h1.map((x) => x.rate), label: '--workers 1', measureUnit: '1 worker',
        goal: '> 1x', goalTest: (x) => x > 1,
        note: `CPU per request (primary + workers): 1 worker ${us(h1.map((x) => x.cpuUs))}, 2 workers ${us(h2.map((x) => x.cpuUs))}; wrk and Postgres share the same ${cores} cores`,
      }),
      ratioFigure({
        id: 'j', name: `wire, serve --workers 2 vs 1 (pgbench -S, 32 clients, ${cores} cores)`, unit: 'tps',
        a: w2.map((x) => x.rate), b: w1.map((x) => x.rate), label: '--workers 1', measureUnit: '1 worker',
        goal: '> 1x', goalTest: (x) => x > 1,
        note: `proxy CPU per transaction: 1 worker ${fmt(median(w1.map((x) => x.cpuUs)), 1)} µs, 2 workers ${fmt(median(w2.map((x) => x.cpuUs)), 1)} µs`,
      }),
    ]
  } finally {
    for (const s of servers) await s.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function benchPeersPooler(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const wrkTool = findTool('wrk')
  if (!wrkTool) throw new Skip('wrk not found (Debian: apt-get install wrk; .ci/run installs it)')
  const bouncerTool = findTool('pgbouncer')
  if (!bouncerTool) throw new Skip('pgbouncer not found (Debian: apt-get install pgbouncer; .ci/run installs it)')
  const seconds = o.quick ? 3 : 8
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pga-pooler-'))
  const users = await httpIdentities(stack)
  const ctx = await openDatabaseContext(stack.ownerUrl)
  const direct = new URL(String(ctx.roleConnectionConfig('authenticated').connectionString))
  await ctx.close()
  const servers: Server[] = []
  try {
    const bouncer = await startPgBouncer({
      upstream: { host: direct.hostname, port: Number(direct.port) }, databases: [direct.pathname.slice(1)],
      users: { authenticated: decodeURIComponent(direct.password) }, mode: 'transaction', poolSize: POOL,
    })
    servers.push(bouncer)
    const straight = await startGatewayChild(stack, 1)
    servers.push(straight)
    const pooled = await startGatewayChild(stack, 1, ['--pooler-url', bouncer.url])
    servers.push(pooled)
    const reqs = gatewayRequests(stack, users, QUERY)
    await checkOneRow(straight.port, reqs[0]!)
    await checkOneRow(pooled.port, reqs[0]!)
    const script = wrkScript(dir, reqs)
    const d: Load[] = []
    const p: Load[] = []
    for (let r = 0; r < o.runs; r++) {
      d.push(await wrk(wrkTool, script, straight.port, seconds, straight.pid, stack.postgres.pid))
      p.push(await wrk(wrkTool, script, pooled.port, seconds, pooled.pid, stack.postgres.pid, bouncer.pid))
      o.log(
        `  run ${r + 1}: straight ${fmt(d.at(-1)!.rate)} req/s ${fmt(d.at(-1)!.cpuUs)} µs CPU/req; through PgBouncer ` +
          `${fmt(p.at(-1)!.rate)} req/s, gateway ${fmt(p.at(-1)!.cpuUs)} µs + PgBouncer ${fmt(p.at(-1)!.poolerCpuUs!, 1)} µs CPU/req`,
      )
    }
    return [
      ratioFigure({
        id: 'k', name: `HTTP through PgBouncer (transaction mode) vs straight to Postgres (wrk, ${CONNECTIONS} connections, pool ${POOL})`, unit: 'req/s',
        a: p.map((x) => x.rate), b: d.map((x) => x.rate), label: 'straight to Postgres', measureUnit: 'straight',
        goal: 'measured', goalTest: () => true,
        note: `${await toolVersion(bouncerTool, ['--version'])}; CPU per request: gateway ${us(p.map((x) => x.cpuUs))} through PgBouncer, ${us(d.map((x) => x.cpuUs))} straight; PgBouncer ${fmt(median(p.map((x) => x.poolerCpuUs!)), 1)} µs; Postgres ${us(p.map((x) => x.pgCpuUs!))} through PgBouncer (the reset in every request), ${us(d.map((x) => x.pgCpuUs!))} straight`,
      }),
    ]
  } finally {
    for (const s of servers) await s.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
