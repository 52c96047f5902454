/**
 * The "Roles and set-up" page: which restricted roles exist and what they may touch per schema, whether
 * the `auth` schema is installed and at which version, running set-up, and the two connection strings
 * with ready snippets.
 *
 * Nothing here reads a secret: role names come from `pgauthorize.role_credentials` (never its password
 * column), and the owner connection string is always masked.
 *
 * @module
 */
import { maskUrl } from '../database/connect.js'
import { installedVersion, LATEST_VERSION } from '../database/migrations.js'
import { withOwner } from '../database/providers.js'
import { SETUP_ROLES, setup, type SetupResult } from '../database/setup.js'
import type { ConsoleBackend } from './backend.js'

/** Where clients reach this gateway (known only once it listens). */
export interface ConsoleEndpoints {
  /** `http://host:port` of the HTTP listener. */
  httpUrl: string
  /** Host clients use for the wire port. */
  host: string
  /** The wire port, or undefined when it is off. */
  pgPort: number | undefined
}

export interface RoleView {
  name: string
  exists: boolean
  canLogin: boolean
  bypassRls: boolean
  superuser: boolean
}

export interface TableGrants {
  name: string
  kind: string
  rls: boolean
  forceRls: boolean
  /** Privileges per role, e.g. `{ authenticated: ['SELECT', 'INSERT'] }`. */
  privileges: Record<string, string[]>
}

export interface SchemaGrants {
  schema: string
  /** USAGE on the schema, per role. */
  usage: Record<string, boolean>
  tables: TableGrants[]
}

export interface RolesView {
  database: string
  auth: { installed: boolean; version: number | null; latest: number }
  roles: RoleView[]
  schemas: SchemaGrants[]
  connection: ConnectionView
}

export interface ConnectionView {
  /** The owner's connection string, password masked. */
  owner: string
  /** The `authenticated` connection string (the JWT is the password). */
  authenticated: string
  /** The SQL-over-HTTP endpoint (`neonConfig.fetchEndpoint`). */
  sqlEndpoint: string
  snippets: { neon: string; drizzle: string; pg: string; psql: string }
}

const KINDS: Record<string, string> = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table' }

export function connectionView(ownerUrl: string, database: string, ep: ConsoleEndpoints): ConnectionView {
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host
  const port = ep.pgPort ?? Number(new URL(ep.httpUrl).port)
  const authenticated = `postgresql://authenticated@${host}:${port}/${encodeURIComponent(database)}`
  const sqlEndpoint = `${ep.httpUrl}/sql`
  const neon = [
    `import { neon, neonConfig } from '@neondatabase/serverless'`,
    ``,
    `neonConfig.fetchEndpoint = '${sqlEndpoint}'`,
    `const sql = neon('${authenticated}', { authToken: async () => getToken() })`,
    `const rows = await sql\`select * from users\``,
  ].join('\n')
  const drizzle = [
    `import { neon, neonConfig } from '@neondatabase/serverless'`,
    `import { drizzle } from 'drizzle-orm/neon-http'`,
    ``,
    `neonConfig.fetchEndpoint = '${sqlEndpoint}'`,
    `const db = drizzle(neon('${authenticated}'))`,
    `const rows = await db.$withAuth(token).select().from(users)`,
  ].join('\n')
  const pg = [
    `import pg from 'pg'`,
    ``,
    `// The JWT is the password. (Give fields, not a URL: a URL's empty password would override it.)`,
    `const client = new pg.Client({`,
    `  host: '${ep.host}', port: ${port}, database: '${database}',`,
    `  user: 'authenticated', password: token,`,
    `})`,
    `await client.connect()`,
    `const { rows } = await client.query('select * from users')`,
  ].join('\n')
  const psql = `PGPASSWORD="$TOKEN" psql '${authenticated}' -c 'select * from users'`
  return {
    owner: maskUrl(ownerUrl),
    authenticated,
    sqlEndpoint,
    snippets: { neon, drizzle, pg: ep.pgPort ? pg : '// the wire port is off (serve --no-pg)', psql: ep.pgPort ? psql : '# the wire port is off (serve --no-pg)' },
  }
}

export async function rolesView(ownerUrl: string, ep: ConsoleEndpoints): Promise<RolesView> {
  return withOwner(ownerUrl, async (c) => {
    const database = (await c.query<{ d: string }>('select current_database() as d')).rows[0]!.d
    const version = await installedVersion(c)
    const names = version === null
      ? [...SETUP_ROLES]
      : (await c.query<{ role: string }>('select role from pgauthorize.role_credentials order by role')).rows.map((r) => r.role)
    const found = await c.query<{ rolname: string; rolcanlogin: boolean; rolbypassrls: boolean; rolsuper: boolean }>(
      'select rolname, rolcanlogin, rolbypassrls, rolsuper from pg_roles where rolname = any($1)',
      [names],
    )
    const byName = new Map(found.rows.map((r) => [r.rolname, r]))
    const roles: RoleView[] = names.map((name) => {
      const r = byName.get(name)
      return { name, exists: !!r, canLogin: !!r?.rolcanlogin, bypassRls: !!r?.rolbypassrls, superuser: !!r?.rolsuper }
    })
    const existing = roles.filter((r) => r.exists).map((r) => r.name)
    const grants = await c.query<{
      schema: string
      table: string
      relkind: string
      rls: boolean
      force: boolean
      role: string
      usage: boolean
      privileges: string[]
    }>(
      `select n.nspname as schema, c.relname as table, c.relkind::text as relkind, c.relrowsecurity as rls,
              c.relforcerowsecurity as force, r.role, has_schema_privilege(r.role, n.oid, 'USAGE') as usage,
              array_remove(array[
                case when has_table_privilege(r.role, c.oid, 'SELECT') then 'SELECT' end,
                case when has_table_privilege(r.role, c.oid, 'INSERT') then 'INSERT' end,
                case when has_table_privilege(r.role, c.oid, 'UPDATE') then 'UPDATE' end,
                case when has_table_privilege(r.role, c.oid, 'DELETE') then 'DELETE' end,
                case when has_table_privilege(r.role, c.oid, 'TRUNCATE') then 'TRUNCATE' end], null) as privileges
         from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         cross join unnest($1::text[]) as r(role)
        where c.relkind in ('r', 'p', 'v', 'm', 'f')
          and n.nspname not in ('pg_catalog', 'information_schema', 'auth')
          and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
        order by n.nspname = 'pgauthorize', n.nspname, c.relname, r.role`,
      [existing],
    )
    const schemas = new Map<string, SchemaGrants>()
    for (const g of grants.rows) {
      let s = schemas.get(g.schema)
      if (!s) schemas.set(g.schema, (s = { schema: g.schema, usage: {}, tables: [] }))
      s.usage[g.role] = g.usage
      let t = s.tables.find((x) => x.name === g.table)
      if (!t) s.tables.push((t = { name: g.table, kind: KINDS[g.relkind] ?? g.relkind, rls: g.rls, forceRls: g.force, privileges: {} }))
      t.privileges[g.role] = g.privileges
    }
    return {
      database,
      auth: { installed: version !== null, version, latest: LATEST_VERSION() },
      roles,
      schemas: [...schemas.values()],
      connection: connectionView(ownerUrl, database, ep),
    }
  })
}

/** Runs set-up (idempotent), then reloads what the gateway caches. Returns no secret. */
export async function runSetup(ownerUrl: string, databases: ConsoleBackend): Promise<Omit<SetupResult, never> & { log: string[] }> {
  const log: string[] = []
  const result = await setup(ownerUrl, { log: (line) => log.push(line) })
  await databases.reload()
  return { ...result, log }
}
