/**
 * The guide's demo: two tenants with one user each, and the eight `crud-authenticated-policy-*` policies
 * drizzle-kit generates for `crudPolicy`. Loaded by `dev` (unless `--no-demo`) and by the tests.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectOwner } from '../database/connect.js'

/** The `demo/` folder shipped with the package. */
export const DEMO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../demo')

export interface DemoUser {
  name: string
  sub: string
  tenantId: string
  tenantName: string
  email: string
}

/** The demo's users. Alice's ids are the guide's own (`sub` and `tenant_id` of its example token). */
export const DEMO_USERS: readonly DemoUser[] = [
  {
    name: 'Alice',
    sub: '2e7e25e8-5445-40bd-8f89-dc19bba64faa',
    tenantId: 'f330c503-5e9c-46a7-8393-2995aeb03675',
    tenantName: 'Neon',
    email: 'alice@neon.example',
  },
  {
    name: 'Bob',
    sub: '9c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e',
    tenantId: '5b7ad2a4-3f1d-4c1c-9a8e-0d6a3c2b1e90',
    tenantName: 'Other Company',
    email: 'bob@other.example',
  },
]

/** The claims a demo user's token carries (beyond `iat`/`exp`). */
export function demoClaims(user: DemoUser): Record<string, unknown> {
  return { sub: user.sub, tenant_id: user.tenantId, role: 'authenticated', permissions: ['read', 'write'] }
}

export const demoSchemaSql = (): string => readFileSync(path.join(DEMO_DIR, 'schema.sql'), 'utf8')
export const demoSeedSql = (): string => readFileSync(path.join(DEMO_DIR, 'seed.sql'), 'utf8')

/** Creates the demo tables and policies and seeds them; idempotent. Needs `setup` to have run. */
export async function loadDemo(ownerUrl: string): Promise<void> {
  const c = await connectOwner(ownerUrl)
  try {
    await c.query('begin')
    const exists = await c.query(`select 1 from pg_policy where polname = 'crud-authenticated-policy-select' and polrelid = to_regclass('public.users')`)
    if (exists.rows.length === 0) await c.query(demoSchemaSql())
    await c.query(demoSeedSql())
    await c.query('commit')
  } catch (err) {
    await c.query('rollback').catch(() => {})
    throw err
  } finally {
    await c.end().catch(() => {})
  }
}
