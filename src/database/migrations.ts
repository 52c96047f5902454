/**
 * Versioned migrations of the `auth` and `pgauthorize` schemas: plain SQL files under `sql/`, named
 * `NNNN_name.sql`, applied in order inside the caller's transaction and recorded in
 * `pgauthorize.migrations` with a checksum, so a second run applies nothing.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'

export interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

/** The `sql/` folder shipped with the package (two levels above both src/database and dist/database). */
export const SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sql')

/** Reads every migration, in version order. */
export function loadMigrations(dir: string = SQL_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(path.join(dir, file), 'utf8')
      return {
        version: Number(file.slice(0, 4)),
        name: file.slice(5, -4),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16),
      }
    })
}

/** The newest migration version this package knows. */
export const LATEST_VERSION = (): number => Math.max(...loadMigrations().map((m) => m.version))

/**
 * Applies pending migrations on `client`, which must already be inside a transaction.
 * Returns the names of those applied. A recorded migration whose file changed is an error: migrations are
 * append-only once released.
 */
export async function applyMigrations(client: pg.ClientBase, migrations = loadMigrations()): Promise<string[]> {
  await client.query(`create schema if not exists pgauthorize`)
  await client.query(`revoke all on schema pgauthorize from public`)
  await client.query(`create table if not exists pgauthorize.migrations (
    version int primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
  )`)
  await client.query(`revoke all on pgauthorize.migrations from public`)
  const done = await client.query<{ version: number; checksum: string }>(
    'select version, checksum from pgauthorize.migrations',
  )
  const applied = new Map(done.rows.map((r) => [r.version, r.checksum]))
  const names: string[] = []
  for (const m of migrations) {
    const seen = applied.get(m.version)
    if (seen !== undefined) {
      if (seen !== m.checksum) {
        throw new PgAuthorizeError(
          'ERR_DB_NOT_SET_UP',
          `migration ${m.version}_${m.name} was applied with different contents (checksum ${seen}, file ${m.checksum})`,
        )
      }
      continue
    }
    // Resolve names in migrations against pg_catalog only; every object is schema-qualified.
    await client.query(`set local search_path = pg_catalog, pg_temp`)
    await client.query(m.sql)
    await client.query('insert into pgauthorize.migrations (version, name, checksum) values ($1, $2, $3)', [
      m.version,
      m.name,
      m.checksum,
    ])
    names.push(`${String(m.version).padStart(4, '0')}_${m.name}`)
  }
  return names
}

/** The applied version in a database, or null when pg-authorize is not installed there. */
export async function installedVersion(client: pg.ClientBase): Promise<number | null> {
  const t = await client.query<{ t: string | null }>(`select to_regclass('pgauthorize.migrations')::text as t`)
  if (!t.rows[0]?.t) return null
  const r = await client.query<{ v: number | null }>('select max(version) as v from pgauthorize.migrations')
  return r.rows[0]?.v ?? null
}
