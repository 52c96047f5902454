/**
 * Figure d: the cost of the `auth` functions in RLS policies on a 1M-row table (100 tenants, no index on
 * `tenant_id`, so every row is visited), timed on the client, median of several runs:
 *
 * - literal: `select count(*) ... where tenant_id = '<literal>'` as the owner (no RLS);
 * - wrapped: `select count(*)` as `authenticated` under the policy
 *   `using (tenant_id = (select auth.session()->>'tenant_id'))` (an InitPlan: once per statement);
 *   goal at most 1.1x the literal;
 * - per row: the unwrapped `auth.session()->>'tenant_id' = tenant_id` as the predicate, called for every
 *   row; reported in µs per row over the literal, with parallel query off so the figure is CPU time per row
 *   (not divided among workers). Goal at most 2 µs a row. For scale, the same with a plain, unsigned setting
 *   holding the same claims JSON (`current_setting(...)::jsonb->>'tenant_id'`): what reading claims costs
 *   with no verification at all.
 *
 * The claims are installed as the gateway does (a sealed envelope, transaction-local); `SET ROLE` here is
 * the benchmark's own shortcut, never the gateway's way of running client SQL. Since migration 0006 the key
 * is read by the check's own statement on every call (it may never be folded into a plan), so the per-row
 * form costs a table read a call: the wrapped form is the one policies should use.
 *
 * @module
 */
import { openDatabaseContext } from '../src/database/context.js'
import { median, noise, owner, type BenchOptions, type Figure, type Stack } from './lib.js'

export async function benchRls(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const rows = o.quick ? 200_000 : 1_000_000
  const ctx = await openDatabaseContext(stack.ownerUrl)
  const claims = { sub: 'u1', tenant_id: 't42', role: 'authenticated' }
  // Sealed for the login role of this connection (the owner: `SET ROLE` below changes current_user only,
  // and the envelope is bound to session_user, which SQL cannot change).
  const envelope = ctx.seal(claims, decodeURIComponent(new URL(stack.ownerUrl).username), 'bench', { maxTtlSeconds: 3600 })
  return owner(stack.ownerUrl, async (c) => {
    await c.query(`drop table if exists rls_bench`)
    await c.query(`create table rls_bench (id bigint primary key, tenant_id text not null, v int not null)`)
    await c.query(`insert into rls_bench select i, 't' || (i % 100), i % 1000 from generate_series(1, $1) i`, [rows])
    await c.query(`vacuum analyze rls_bench`)
    await c.query(`alter table rls_bench enable row level security`)
    await c.query(`create policy tenant on rls_bench for select to authenticated using (tenant_id = (select auth.session()->>'tenant_id'))`)
    await c.query(`grant select on rls_bench to authenticated`)

    const time = async (setup: string[], sql: string, expect: number): Promise<number> => {
      await c.query('begin')
      try {
        for (const s of setup) await c.query(s)
        await c.query(`select pg_catalog.set_config('pg_authorize.session', $1, true)`, [envelope])
        await c.query(`select set_config('bench.claims', $1, true)`, [JSON.stringify(claims)])
        const t = performance.now()
        const r = await c.query<{ n: string }>(sql)
        const ms = performance.now() - t
        if (Number(r.rows[0]!.n) !== expect) throw new Error(`${sql}: ${r.rows[0]!.n} rows, expected ${expect}`)
        return ms
      } finally {
        await c.query('rollback')
      }
    }
    const expect = Math.floor(rows / 100)
    const serial = ['set local max_parallel_workers_per_gather = 0']
    const asRole = ['set local role authenticated']
    const literalSql = `select count(*) as n from rls_bench where tenant_id = 't42'`
    const cases = {
      literal: () => time([], literalSql, expect),
      wrapped: () => time(asRole, `select count(*) as n from rls_bench`, expect),
      literalSerial: () => time(serial, literalSql, expect),
      perRow: () => time(serial, `select count(*) as n from rls_bench where auth.session()->>'tenant_id' = tenant_id`, expect),
      unsigned: () => time(serial, `select count(*) as n from rls_bench where current_setting('bench.claims')::jsonb->>'tenant_id' = tenant_id`, expect),
    }
    const t: Record<keyof typeof cases, number[]> = { literal: [], wrapped: [], literalSerial: [], perRow: [], unsigned: [] }
    for (const k of Object.keys(cases) as (keyof typeof cases)[]) await cases[k]() // warm the cache and plans
    const runs = Math.max(o.runs, 5)
    for (let r = 0; r < runs; r++) {
      for (const k of Object.keys(cases) as (keyof typeof cases)[]) t[k].push(await cases[k]())
    }
    const ratios = t.wrapped.map((w, i) => w / t.literal[i]!)
    const perRow = t.perRow.map((p, i) => ((p - t.literalSerial[i]!) * 1000) / rows)
    const unsigned = t.unsigned.map((p, i) => ((p - t.literalSerial[i]!) * 1000) / rows)
    const ratio = median(ratios)
    const us = median(perRow)
    o.log(`  literal ${median(t.literal).toFixed(1)} ms, wrapped ${median(t.wrapped).toFixed(1)} ms, per-row ${us.toFixed(2)} µs/row (unsigned setting ${median(unsigned).toFixed(2)})`)
    await c.query(`drop table rls_bench`)
    return [
      {
        id: 'd',
        name: `RLS wrapped (select auth.session()->>'tenant_id'), ${rows.toLocaleString('en-US')} rows`,
        value: median(t.wrapped),
        unit: 'ms',
        baseline: { label: 'literal', value: median(t.literal), unit: 'ms' },
        measure: `${ratio.toFixed(2)}x literal`,
        goal: '≤ 1.1x literal',
        pass: ratio <= 1.1,
        noise: noise(ratios),
      },
      {
        id: 'd',
        name: `RLS per-row auth.session()->>'tenant_id' = tenant_id (parallel off)`,
        value: median(t.perRow),
        unit: 'ms',
        baseline: { label: 'literal, parallel off', value: median(t.literalSerial), unit: 'ms' },
        measure: `${us.toFixed(2)} µs/row`,
        goal: '≤ 2 µs/row',
        pass: us <= 2,
        noise: noise(perRow),
        note: `reading an unsigned setting per row costs ${median(unsigned).toFixed(2)} µs/row (no verification: the floor)`,
      },
    ]
  })
}
