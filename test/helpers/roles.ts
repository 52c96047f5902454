/** Connections logged in as a restricted role, as the gateway opens them. */
import pg from 'pg'
import { openDatabaseContext, type DatabaseContext } from '../../src/database/context.js'
import { installClaimsParamSql, type Claims } from '../../src/database/session.js'
import { setup } from '../../src/database/setup.js'
import { loadDemo } from '../../src/dev/demo.js'
import { createTestDatabase, type TestDatabase } from './postgres.js'

export async function roleClient(ctx: DatabaseContext, role = 'authenticated'): Promise<pg.Client> {
  const c = new pg.Client(ctx.roleConnectionConfig(role))
  await c.connect()
  return c
}

/** A restricted-role connection with `claims` installed for the session (null: no identity). */
export async function clientWithClaims(ctx: DatabaseContext, claims: Claims | null, role = 'authenticated'): Promise<pg.Client> {
  const c = await roleClient(ctx, role)
  if (claims) await c.query(installClaimsParamSql(false), [ctx.seal(claims, role, 'test')])
  return c
}

export { openDatabaseContext }

/** Runs `fn` and returns the SQLSTATE it failed with, or 'no error'. */
export async function sqlstate(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
    return 'no error'
  } catch (err) {
    return (err as { code?: string }).code ?? `non-SQL error: ${String(err)}`
  }
}

/** A fresh database with pg-authorize set up and the guide's demo loaded, and its gateway context. */
export async function createDemoDatabase(): Promise<{ db: TestDatabase; ctx: DatabaseContext }> {
  const db = await createTestDatabase()
  await setup(db.url)
  await loadDemo(db.url)
  return { db, ctx: await openDatabaseContext(db.url) }
}
