/**
 * 2,000 requests from 50 users in parallel against `dev`'s gateway: each user has a tenant and a user row
 * of their own (inserted as the owner) and a token of their own; every response must hold exactly that
 * user's rows, whatever connection it ran on and whoever used that connection before.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { drizzle } from 'drizzle-orm/neon-http'
import { sql as dsql } from 'drizzle-orm'
import { signToken } from '../../src/tokens/sign.js'
import { mapLimit, startE2E, type E2E } from './harness.js'

const USERS = 50
const REQUESTS = 2_000
const IN_FLIGHT = 50

let e: E2E
before(async () => {
  e = await startE2E()
})
after(() => e?.close())

test(`${REQUESTS} requests from ${USERS} users, ${IN_FLIGHT} at a time: every response holds only its user's rows`, async (t) => {
  const people = Array.from({ length: USERS }, (_, i) => ({ i, sub: randomUUID(), tenantId: randomUUID(), token: '' }))
  await e.owner.query(
    `insert into tenants (id, name) select unnest($1::uuid[]), unnest($2::text[])`,
    [people.map((p) => p.tenantId), people.map((p) => `tenant ${p.i}`)],
  )
  await e.owner.query(
    `insert into users (tenant_id, id, name, email) select unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[])`,
    [people.map((p) => p.tenantId), people.map((p) => p.sub), people.map((p) => `user ${p.i}`), people.map((p) => `u${p.i}@example.test`)],
  )
  for (const p of people) {
    p.token = await signToken({ privateJwk: e.privateJwk, sub: p.sub, claims: { tenant_id: p.tenantId, role: 'authenticated' }, expiresIn: '10m' })
  }
  const total = (await e.owner.query('select count(*)::int as n from users')).rows[0].n
  assert.equal(total, USERS + 2, 'the 50 users plus the demo\'s two are all in the table')

  // Interleave the users so consecutive requests (and pooled connections) keep changing hands; mix the
  // plain client, drizzle with $withAuth, and batches.
  const plan = Array.from({ length: REQUESTS }, (_, n) => people[(n * 7) % USERS]!)
  let checked = 0
  let rowsChecked = 0
  await mapLimit(plan, IN_FLIGHT, async (p, n) => {
    let userRows: { id: string; tenant_id: string }[]
    let tenantRows: { id: string }[]
    let sub: string
    if (n % 3 === 0) {
      const sql = e.sql(p.token)
      const [u, tt, who] = await sql.transaction((q) => [
        q`select id, tenant_id from users`,
        q`select id from tenants`,
        q`select auth.user_id() as sub`,
      ])
      userRows = u as typeof userRows
      tenantRows = tt as typeof tenantRows
      sub = (who as { sub: string }[])[0]!.sub
    } else if (n % 3 === 1) {
      const db = drizzle(e.sql()).$withAuth(p.token)
      const r = await db.execute<{ id: string; tenant_id: string; tenants: string[]; sub: string }>(
        dsql`select id, tenant_id, (select array_agg(id) from tenants) as tenants, auth.user_id() as sub from users`,
      )
      userRows = r.rows.map(({ id, tenant_id }) => ({ id, tenant_id }))
      tenantRows = (r.rows[0]?.tenants ?? []).map((id) => ({ id }))
      sub = r.rows[0]?.sub ?? ''
    } else {
      const rows = await e.sql(async () => p.token)`select u.id, u.tenant_id, t.id as t, auth.user_id() as sub
        from users u full join tenants t on t.id = u.tenant_id`
      userRows = rows.filter((r) => r.id).map((r) => ({ id: r.id, tenant_id: r.tenant_id }))
      tenantRows = rows.filter((r) => r.t).map((r) => ({ id: r.t }))
      sub = rows[0]?.sub
    }
    assert.equal(sub, p.sub, `request ${n}`)
    assert.deepEqual(userRows, [{ id: p.sub, tenant_id: p.tenantId }], `request ${n}`)
    assert.deepEqual(tenantRows, [{ id: p.tenantId }], `request ${n}`)
    checked++
    rowsChecked += userRows.length + tenantRows.length
  })
  assert.equal(checked, REQUESTS)
  t.diagnostic(`checked ${checked} responses (${rowsChecked} rows) from ${USERS} users, ${IN_FLIGHT} in flight`)
})
