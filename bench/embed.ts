/**
 * `createAuthorizer` + node-postgres against a plain `pg.Pool` running the same query as the same role
 * (issue 19's figure), on an embedded Postgres 17, same run, same concurrency:
 *
 * - plain:        pool.query(q)                                     (autocommit, no claims: the floor)
 * - plain tx:     BEGIN; q; COMMIT on a pooled client               (what a hand-rolled set_config needs at least)
 * - plain tx + reset: the same, after the session reset a shared pool needs (security property 4)
 * - authorizer:   authz.withToken(token, (c) => c.query(q))         (verify from the token cache, BEGIN + claims pipelined, q, COMMIT)
 * - authorizer + RLS: the same with a policy reading auth.user_id() (the claims actually checked per statement)
 *
 * Run by hand: `node --import tsx bench/embed.ts [--seconds 1] [--concurrency 8] [--runs 9]`.
 * Figures are machine-dependent; compare ratios within one run only.
 *
 * @module
 */
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/database/embedded.js'
import { gatewayUrl, setup } from '../src/database/setup.js'
import { addProvider, withOwner } from '../src/database/providers.js'
import { createAuthorizer } from '../src/auth/authorizer.js'
import { resetSessionSteps } from '../src/database/session.js'
import { generateSigningKey } from '../src/keys/generate.js'
import { signToken } from '../src/tokens/sign.js'

/** The pool's reset between users, as one simple-protocol string. */
const RESET = resetSessionSteps({ inTransaction: true }).join('; ')

const { values } = parseArgs({ options: { seconds: { type: 'string' }, concurrency: { type: 'string' }, runs: { type: 'string' } } })
// Short slices, interleaved: on a shared machine the load drifts, and each case sees the same drift.
const seconds = Number(values.seconds ?? 1)
const concurrency = Number(values.concurrency ?? 8)
const runs = Number(values.runs ?? 9)

async function measure(fn: () => Promise<unknown>): Promise<number> {
  const until = performance.now() + seconds * 1000
  let n = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await fn()
      n++
    }
  }))
  return n / seconds
}

// Not made here: the embedded server creates it (as test/helpers/postgres.ts does).
const dir = path.join(os.tmpdir(), 'pga-bench-embed-' + randomBytes(5).toString('hex'))
const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), ephemeral: true })
try {
  const url = server.urlFor('postgres')
  await setup(url)
  const key = await generateSigningKey({ alg: 'ES256' })
  await withOwner(url, async (c) => {
    await addProvider(c, { name: 'app', jwks: { keys: [key.publicJwk as Record<string, unknown>] } })
    await c.query(`create table items (id int primary key, body text);
      insert into items select i, 'item ' || i from generate_series(1, 1000) i;
      create table notes (id int primary key, owner text, body text);
      insert into notes select i, case when i % 2 = 0 then 'alice' else 'bob' end, 'note ' || i from generate_series(1, 1000) i;
      alter table notes enable row level security;
      create policy own on notes to authenticated using (owner = (select auth.user_id()));
      grant select on items, notes to authenticated;`)
  })
  const gw = await gatewayUrl(url)
  const authz = await createAuthorizer({ databaseUrl: gw, poolSize: concurrency })
  const pool = new pg.Pool({ ...(await authz.authenticator.connectionConfig(authz.database, 'authenticated')), max: concurrency })
  const token = await signToken({ privateJwk: key.privateJwk, sub: 'alice', expiresIn: '1h' })
  const q = 'select id, body from items where id = 42'
  const rls = 'select id, body from notes where id = 42'
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['plain pg.Pool, autocommit', () => pool.query(q)],
    ['plain pg.Pool, BEGIN; q; COMMIT', async () => {
      const c = await pool.connect()
      try {
        await c.query('begin')
        await c.query(q)
        await c.query('commit')
      } finally {
        c.release()
      }
    }],
    ['plain pg.Pool, reset; BEGIN; q; COMMIT', async () => {
      const c = await pool.connect()
      try {
        await c.query(RESET)
        await c.query('begin')
        await c.query(q)
        await c.query('commit')
      } finally {
        c.release()
      }
    }],
    ['createAuthorizer + pg', () => authz.withToken(token, (c) => c.query(q))],
    ['createAuthorizer + pg, RLS policy on auth.user_id()', () => authz.withToken(token, (c) => c.query(rls))],
  ]
  for (const [, fn] of cases) await measure(fn) // warm up
  const results = new Map<string, number[]>()
  for (let r = 0; r < runs; r++) {
    for (const [name, fn] of cases) {
      const list = results.get(name) ?? []
      list.push(await measure(fn))
      results.set(name, list)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const base = median(results.get(cases[0]![0])!)
  console.log(`${os.cpus().length} CPUs (${os.cpus()[0]?.model}), concurrency ${concurrency}, ${seconds} s x ${runs} runs, median`)
  for (const [name, xs] of results) {
    console.log(`${name.padEnd(52)} ${median(xs).toFixed(0).padStart(7)} /s   ${(median(xs) / base).toFixed(2)}x   runs: ${xs.map((x) => x.toFixed(0)).join(', ')}`)
  }
  await pool.end()
  await authz.close()
} finally {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
