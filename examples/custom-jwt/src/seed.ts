/**
 * Applies the drizzle-kit migration in ../drizzle and seeds the two demo tenants and users, with the
 * owner's connection string (as the guide's seed does with `neondb_owner`). Run `pg-authorize setup`
 * (or `dev --no-demo`) first: the migration's policies name the `authenticated` role and call `auth.*`.
 *
 *   DATABASE_URL=postgresql://postgres:...@127.0.0.1:55432/neondb npx tsx src/seed.ts
 *
 * @module
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { tenants, users } from './db/schema.js'
import { DEMO } from './users.js'

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../drizzle')

/** Applies the migrations (idempotent: drizzle records what it applied) and inserts the demo rows. */
export async function migrateAndSeed(ownerUrl: string): Promise<void> {
  const client = new pg.Client(ownerUrl)
  await client.connect()
  try {
    const db = drizzle(client)
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
    const people = Object.values(DEMO)
    await db.insert(tenants).values(people.map((u) => ({ id: u.tenantId, name: u.tenantName }))).onConflictDoNothing()
    await db
      .insert(users)
      .values(people.map((u) => ({ id: u.sub, tenantId: u.tenantId, name: u.name, email: u.email })))
      .onConflictDoNothing()
  } finally {
    await client.end()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('set DATABASE_URL to the owner connection string (printed by pg-authorize dev)')
  await migrateAndSeed(url)
  console.log('migrated and seeded')
}
