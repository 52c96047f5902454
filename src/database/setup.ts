/**
 * `pg-authorize setup`: installs everything a database needs, idempotently, in one transaction.
 *
 * - the migrations under `sql/` (the private `pgauthorize` schema and the `auth` schema);
 * - the per-database sealing key;
 * - the restricted roles (`authenticated`, `anonymous`, and any custom ones), which log in with a random
 *   password that only the owner can read (security property 5), and which can never bypass RLS;
 * - the grants of Neon's "set up roles" step, plus sequences and the `auth` functions;
 * - the restricted roles' time limits (`statement_timeout`, `idle_in_transaction_session_timeout`), stored
 *   in `pgauthorize.session_limits` and sent by every gateway connection in its startup packet (see
 *   {@link SESSION_LIMIT_DEFAULTS} for why not `ALTER ROLE ... SET`).
 *
 * `uninstall` removes what setup installed and leaves user data alone.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { applyMigrations, installedVersion } from './migrations.js'
import { rotateSessionKey } from './session.js'
import { connectOwner, maskUrl, quoteIdent, quoteLiteral, withDatabase, withUser } from './connect.js'
import { scramVerifier } from './scram.js'
import { restrictLargeObjects, unrestrictLargeObjects } from './large-objects.js'

/** The restricted roles every setup makes (a provider's default allowed roles are verify's DEFAULT_PROVIDER_ROLES). */
export const SETUP_ROLES = ['authenticated', 'anonymous'] as const

/**
 * The login role gateways and embedded authorizers run as (issue 19): NOINHERIT NOBYPASSRLS, owns nothing,
 * granted only what a running gateway does (see `grantGateway`). Not `pg_...`: Postgres reserves that prefix.
 */
export const GATEWAY_ROLE = 'pgauthorize_gateway'

export interface SetupOptions {
  /**
   * Schemas whose tables the restricted roles are granted. Default `['public']`; a list replaces it, so a
   * private `public` is never granted implicitly.
   */
  schemas?: string[]
  /** Grant table and sequence privileges in those schemas. Default true. */
  grants?: boolean
  /** Custom restricted roles, in addition to `authenticated` and `anonymous`. */
  roles?: string[]
  /** Make a new sealing key and retire the current one (`setup --rotate-secret`). */
  rotateSecret?: boolean
  /** With `rotateSecret`: how long envelopes sealed with the old key stay valid. Default 30 s. */
  rotateGraceSeconds?: number
  /**
   * `statement_timeout` of the restricted roles, ms (0: none). Default: keep what an earlier setup stored,
   * else {@link SESSION_LIMIT_DEFAULTS} (30 s).
   */
  statementTimeoutMs?: number
  /** `idle_in_transaction_session_timeout` of the restricted roles, ms (0: none). Default: kept, else 60 s. */
  idleInTransactionTimeoutMs?: number
  /** Name of the gateway role. Default {@link GATEWAY_ROLE}. */
  gatewayRole?: string
  /** Progress lines (never secrets). */
  log?: (line: string) => void
}

/**
 * Time limits for the restricted roles' sessions. Why they live in a table and travel in the startup
 * packet (`-c statement_timeout=...`, source `client`) rather than as `ALTER ROLE ... SET` (source `user`):
 * the gateway refuses, and repairs, any restricted session with settings of source `user` or `database
 * user`, because a client can store those itself (`ALTER ROLE CURRENT_USER SET ...`, role-repair.ts). A
 * role default would be indistinguishable from tampering and wiped by the first repair. Startup-packet
 * values are the session's reset values too, so the pool's `RESET ALL` between requests returns to them:
 * a client's `SET statement_timeout = 0` lasts until the end of its own request, never into another's.
 */
export const SESSION_LIMIT_DEFAULTS = { statementTimeoutMs: 30_000, idleInTransactionTimeoutMs: 60_000 } as const

/** The largest time limit Postgres accepts (INT_MAX ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2_147_483_647

/** How long a rotated key keeps working: long enough for in-flight requests and for gateways to reseal. */
export const DEFAULT_ROTATE_GRACE_SECONDS = 30

export interface SetupResult {
  database: string
  /** Migrations applied by this run (empty when already up to date). */
  applied: string[]
  /** Roles created by this run. */
  rolesCreated: string[]
  /** Roles whose login password was (re)set by this run. */
  passwordsSet: string[]
  /** Every restricted role set up in this database. */
  roles: string[]
  /** Installed schema version after the run. */
  version: number
  /** The generation of the current sealing key after the run. */
  keyGeneration?: number
  /** The restricted roles' time limits after the run, ms (0: none). */
  limits?: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number }
  /** The gateway role and its connection string, password masked (read it with `gatewayUrl`). */
  gateway?: { role: string; url: string }
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/

function validateNames(options: SetupOptions): { schemas: string[]; roles: string[]; gatewayRole: string } {
  const schemas = options.schemas?.length ? [...new Set(options.schemas)] : ['public']
  for (const s of schemas) {
    if (!SCHEMA_NAME.test(s)) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `invalid schema name '${s}'`)
    if (s === 'auth' || s === 'pgauthorize' || s.startsWith('pg_')) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `schema '${s}' is reserved and cannot be granted`)
    }
  }
  const roles = [...new Set([...SETUP_ROLES, ...(options.roles ?? [])])]
  for (const r of roles) {
    if (!ROLE_NAME.test(r)) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `invalid role name '${r}' (lowercase letters, digits, _)`)
    }
    if (r.startsWith('pg_') || r === 'public' || r === 'postgres') {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `role name '${r}' is reserved`)
    }
  }
  const gatewayRole = options.gatewayRole ?? GATEWAY_ROLE
  if (!ROLE_NAME.test(gatewayRole) || gatewayRole.startsWith('pg_') || gatewayRole === 'public' || gatewayRole === 'postgres' || roles.includes(gatewayRole)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `invalid gateway role name '${gatewayRole}' (lowercase letters, digits, _; not a restricted role)`)
  }
  return { schemas, roles, gatewayRole }
}

/** Checks the connection may run setup: owner of the database, able to create roles, Postgres 14+. */
async function checkOwner(client: pg.ClientBase): Promise<void> {
  const r = await client.query<{
    version: number
    super: boolean
    createrole: boolean
    owns: boolean
    can_create: boolean
  }>(`select current_setting('server_version_num')::int as version,
            r.rolsuper as super, r.rolcreaterole as createrole,
            pg_has_role(current_user, d.datdba, 'USAGE') as owns,
            has_database_privilege(current_user, current_database(), 'CREATE') as can_create
       from pg_roles r, pg_database d
      where r.rolname = current_user and d.datname = current_database()`)
  const row = r.rows[0]!
  if (row.version < 140000) {
    throw new PgAuthorizeError('ERR_DB_UNSUPPORTED_VERSION', `Postgres ${Math.floor(row.version / 10000)} is not supported; pg-authorize needs 14 or later`)
  }
  if (!row.super && !(row.owns && row.can_create && row.createrole)) {
    throw new PgAuthorizeError(
      'ERR_DB_NOT_OWNER',
      'setup needs the database owner with CREATEROLE (or a superuser); this connection is not',
      { hint: 'use the owner connection string (the one you run migrations with)' },
    )
  }
}

interface RoleRow {
  rolname: string
  rolsuper: boolean
  rolbypassrls: boolean
  rolcreaterole: boolean
  rolcreatedb: boolean
  rolreplication: boolean
  rolcanlogin: boolean
  rolinherit: boolean
  member_of: string[] | null
}

/**
 * Roles are cluster-wide, but each database keeps its own copy of their passwords. When a role already
 * exists and this database holds no password for it, look for the password another database of the
 * cluster set up by pg-authorize holds (reachable with the same owner credentials), and keep it if it
 * logs in: setting a new one would lock out the gateways of those other databases.
 */
async function sharedPassword(ownerUrl: string, client: pg.ClientBase, role: string, table: CredentialTable): Promise<string | undefined> {
  const dbs = await client.query<{ datname: string }>(
    `select datname from pg_database where datallowconn and datname <> current_database() order by datname limit 100`,
  )
  for (const { datname } of dbs.rows) {
    const other = new pg.Client({ connectionString: withDatabase(ownerUrl, datname), connectionTimeoutMillis: 3000 })
    other.on('error', () => {})
    let candidate: string | undefined
    try {
      await other.connect()
      const t = await other.query(`select to_regclass('pgauthorize.${table}') as t`)
      if (t.rows[0]?.t) {
        const r = await other.query<{ password: string }>(`select password from pgauthorize.${table} where role = $1`, [role])
        candidate = r.rows[0]?.password
      }
    } catch {
      // Not ours to read (no CONNECT, another owner): look elsewhere.
    } finally {
      await other.end().catch(() => {})
    }
    if (candidate === undefined) continue
    const login = new pg.Client({ connectionString: withUser(ownerUrl, role, candidate), connectionTimeoutMillis: 3000 })
    login.on('error', () => {})
    try {
      await login.connect()
      return candidate
    } catch {
      // Stale copy: keep looking.
    } finally {
      await login.end().catch(() => {})
    }
  }
  return undefined
}

/** Where a role's login password is kept: restricted roles' (read by gateways) or gateway roles' (owner only). */
type CredentialTable = 'role_credentials' | 'gateway_credentials'

async function ensureRole(
  ownerUrl: string,
  client: pg.ClientBase,
  role: string,
  result: SetupResult,
  table: CredentialTable = 'role_credentials',
): Promise<string> {
  const existing = await client.query<RoleRow>(
    `select r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
            r.rolcanlogin, r.rolinherit,
            (select array_agg(g.rolname::text) from pg_auth_members m join pg_roles g on g.oid = m.roleid
              where m.member = r.oid) as member_of
       from pg_roles r where r.rolname = $1`,
    [role],
  )
  const stored = await client.query<{ password: string }>(
    `select password from pgauthorize.${table} where role = $1`,
    [role],
  )
  let password: string | undefined = stored.rows[0]?.password
  const attrs = 'LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'
  if (existing.rows.length === 0) {
    password ??= randomBytes(24).toString('base64url')
    // A SCRAM verifier, never the password, in SQL text (a failed statement is logged with its text).
    await client.query(`create role ${quoteIdent(role)} ${attrs} password ${quoteLiteral(await scramVerifier(password))}`)
    result.rolesCreated.push(role)
    result.passwordsSet.push(role)
  } else {
    const r = existing.rows[0]!
    if (r.rolsuper || r.rolbypassrls || r.rolreplication) {
      throw new PgAuthorizeError(
        'ERR_INVALID_ARGUMENT',
        `role '${role}' already exists with SUPERUSER, BYPASSRLS or REPLICATION; a restricted role must not bypass RLS`,
        { hint: `drop or alter the role first (ALTER ROLE ${role} NOSUPERUSER NOBYPASSRLS NOREPLICATION)` },
      )
    }
    if (r.member_of?.length) {
      throw new PgAuthorizeError(
        'ERR_INVALID_ARGUMENT',
        `role '${role}' is a member of ${r.member_of.join(', ')}; a restricted role must not be able to SET ROLE to anything`,
        { hint: `REVOKE ${r.member_of.join(', ')} FROM ${role}` },
      )
    }
    if (r.rolcreaterole || r.rolcreatedb || !r.rolcanlogin || r.rolinherit) {
      await client.query(`alter role ${quoteIdent(role)} ${attrs}`)
    }
    password ??= await sharedPassword(ownerUrl, client, role, table)
    if (password === undefined) {
      // The role exists (made by hand, or by setup in a database we cannot read) but no password for it
      // could be found: set a new one. Gateways of other databases using it must re-run setup.
      password = randomBytes(24).toString('base64url')
      await client.query(`alter role ${quoteIdent(role)} password ${quoteLiteral(await scramVerifier(password))}`)
      result.passwordsSet.push(role)
    }
  }
  if (stored.rows.length === 0) {
    await client.query(`insert into pgauthorize.${table} (role, password) values ($1, $2)`, [role, password])
  }
  return password
}

/**
 * What a gateway (`serve`, `createAuthorizer`) may do at run time, and nothing more (sql/0009): connect;
 * read providers, the current and retiring sealing keys (not the HMAC pads), the restricted roles'
 * credentials and time limits; append to the audit table; and call the three SECURITY DEFINER functions
 * for role repair, reaping backends and audit retention. LISTEN needs no grant. Idempotent.
 */
async function grantGateway(client: pg.ClientBase, role: string): Promise<void> {
  const r = quoteIdent(role)
  await client.query(`grant connect on database ${quoteIdent(await currentDatabase(client))} to ${r}`)
  await client.query(`grant usage on schema pgauthorize to ${r}`)
  await client.query(`grant select on pgauthorize.providers, pgauthorize.role_credentials, pgauthorize.session_limits to ${r}`)
  await client.query(`grant select (generation, key, retire_at) on pgauthorize.sealing_key to ${r}`)
  await client.query(`grant insert on pgauthorize.audit_log to ${r}`)
  await client.query(`grant execute on function pgauthorize.repair_role(name, text), pgauthorize.reap_backends(int[], numeric[], text[]),
    pgauthorize.purge_audit_log(int) to ${r}`)
}

/** The gateway role's connection string for the database of `ownerUrl`, with its password (never print it). */
export async function gatewayUrl(ownerUrl: string, role: string = GATEWAY_ROLE): Promise<string> {
  const client = await connectOwner(ownerUrl)
  try {
    const r = await client.query<{ password: string }>('select password from pgauthorize.gateway_credentials where role = $1', [role])
    if (r.rows.length === 0) {
      throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', `no gateway role '${role}' is set up in this database`, { hint: 'run: pg-authorize setup' })
    }
    return withUser(ownerUrl, role, r.rows[0]!.password)
  } finally {
    await client.end().catch(() => {})
  }
}

async function grant(client: pg.ClientBase, roles: string[], schemas: string[], tables: boolean): Promise<void> {
  const list = roles.map(quoteIdent).join(', ')
  await client.query(`grant usage on schema auth to ${list}`)
  await client.query(`grant execute on all functions in schema auth to ${list}`)
  await client.query(`grant connect on database ${quoteIdent((await currentDatabase(client)))} to ${list}`)
  if (!tables) return
  for (const s of schemas) {
    const schema = quoteIdent(s)
    const exists = await client.query('select 1 from pg_namespace where nspname = $1', [s])
    if (exists.rows.length === 0) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `schema '${s}' does not exist`)
    }
    await client.query(`grant usage on schema ${schema} to ${list}`)
    await client.query(`grant select, insert, update, delete on all tables in schema ${schema} to ${list}`)
    await client.query(`alter default privileges in schema ${schema} grant select, insert, update, delete on tables to ${list}`)
    await client.query(`grant usage, select on all sequences in schema ${schema} to ${list}`)
    await client.query(`alter default privileges in schema ${schema} grant usage, select on sequences to ${list}`)
  }
}

async function currentDatabase(client: pg.ClientBase): Promise<string> {
  return (await client.query<{ d: string }>('select current_database() as d')).rows[0]!.d
}

/**
 * Checks that each role can log in with its stored password, and resets the password of any that cannot
 * (someone changed it by hand). Runs after commit, because logging in needs the committed role.
 */
async function verifyLogins(ownerUrl: string, client: pg.ClientBase, roles: string[], result: SetupResult): Promise<void> {
  const creds = await client.query<{ role: string; password: string }>(
    `select role, password from pgauthorize.role_credentials where role = any($1)
     union all select role, password from pgauthorize.gateway_credentials where role = any($1)`,
    [roles],
  )
  for (const { role, password } of creds.rows) {
    const c = new pg.Client({ connectionString: withUser(ownerUrl, role, password) })
    try {
      await c.connect()
      await c.end()
    } catch (err) {
      await c.end().catch(() => {})
      if ((err as { code?: string }).code === '28P01') {
        await client.query(`alter role ${quoteIdent(role)} password ${quoteLiteral(await scramVerifier(password))}`)
        result.passwordsSet.push(role)
      }
      // Other failures (pg_hba not allowing this host, say) are left for the gateway to report.
    }
  }
}

/**
 * Stores the restricted roles' time limits (created here, not in a migration, so that `setup` owns it
 * like the roles themselves). Values not given keep what is stored; the first run stores the defaults.
 */
async function storeSessionLimits(
  client: pg.ClientBase,
  options: SetupOptions,
): Promise<{ statementTimeoutMs: number; idleInTransactionTimeoutMs: number }> {
  for (const [name, v] of [['statement timeout', options.statementTimeoutMs], ['idle-in-transaction timeout', options.idleInTransactionTimeoutMs]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0 || v > MAX_TIMEOUT_MS)) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `the ${name} must be a whole number of ms between 0 and ${MAX_TIMEOUT_MS}`)
    }
  }
  await client.query(`create table if not exists pgauthorize.session_limits (
    id int primary key default 1 check (id = 1),
    statement_timeout_ms int not null check (statement_timeout_ms >= 0),
    idle_in_transaction_timeout_ms int not null check (idle_in_transaction_timeout_ms >= 0),
    updated_at timestamptz not null default now()
  )`)
  await client.query(`revoke all on pgauthorize.session_limits from public`)
  const r = await client.query<{ s: number; i: number }>(
    `insert into pgauthorize.session_limits (statement_timeout_ms, idle_in_transaction_timeout_ms) values ($1, $2)
     on conflict (id) do update set
       statement_timeout_ms = coalesce($3, session_limits.statement_timeout_ms),
       idle_in_transaction_timeout_ms = coalesce($4, session_limits.idle_in_transaction_timeout_ms),
       updated_at = case when $3::int is null and $4::int is null then session_limits.updated_at else now() end
     returning statement_timeout_ms as s, idle_in_transaction_timeout_ms as i`,
    [
      options.statementTimeoutMs ?? SESSION_LIMIT_DEFAULTS.statementTimeoutMs,
      options.idleInTransactionTimeoutMs ?? SESSION_LIMIT_DEFAULTS.idleInTransactionTimeoutMs,
      options.statementTimeoutMs ?? null,
      options.idleInTransactionTimeoutMs ?? null,
    ],
  )
  return { statementTimeoutMs: r.rows[0]!.s, idleInTransactionTimeoutMs: r.rows[0]!.i }
}

/** Installs or upgrades pg-authorize in the database named by `ownerUrl`. Idempotent. */
export async function setup(ownerUrl: string, options: SetupOptions = {}): Promise<SetupResult> {
  const { schemas, roles, gatewayRole } = validateNames(options)
  const log = options.log ?? (() => {})
  const client = await connectOwner(ownerUrl)
  try {
    await checkOwner(client)
    const database = await currentDatabase(client)
    const result: SetupResult = { database, applied: [], rolesCreated: [], passwordsSet: [], roles: [], version: 0 }
    await client.query('begin')
    try {
      // One setup at a time per cluster: roles are cluster-wide.
      await client.query(`select pg_advisory_xact_lock(hashtext('pgauthorize.setup'))`)
      result.applied = await applyMigrations(client)
      for (const m of result.applied) log(`applied migration ${m}`)
      // Migration 0006 makes the first key. A later run rotates only when asked (or when none is current).
      const current = await client.query(`select 1 from pgauthorize.sealing_key where retire_at is null`)
      if (current.rows.length === 0 || options.rotateSecret) {
        result.keyGeneration = await rotateSessionKey(client, options.rotateGraceSeconds ?? DEFAULT_ROTATE_GRACE_SECONDS)
        if (!result.applied.some((m) => m.startsWith('0006'))) log(`rotated the sealing key (generation ${result.keyGeneration})`)
      }
      result.keyGeneration ??= (await client.query<{ g: number }>(
        `select generation as g from pgauthorize.sealing_key where retire_at is null`,
      )).rows[0]!.g
      for (const role of roles) await ensureRole(ownerUrl, client, role, result)
      const all = await client.query<{ role: string }>('select role from pgauthorize.role_credentials order by role')
      result.roles = all.rows.map((r) => r.role)
      await grant(client, result.roles, schemas, options.grants !== false)
      result.limits = await storeSessionLimits(client, options)
      const gatewayPassword = await ensureRole(ownerUrl, client, gatewayRole, result, 'gateway_credentials')
      await grantGateway(client, gatewayRole)
      result.gateway = { role: gatewayRole, url: maskUrl(withUser(ownerUrl, gatewayRole, gatewayPassword)) }
      // Large objects are outside RLS and shared by every user of a role (large-objects.ts).
      if (await restrictLargeObjects(client)) log('large-object functions revoked from PUBLIC')
      else log('warning: large objects stay readable by every user of a restricted role (setup needs a superuser to revoke them; see pg-authorize lint)')
      result.version = (await installedVersion(client)) ?? 0
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => {})
      throw err
    }
    await verifyLogins(ownerUrl, client, [...result.roles, gatewayRole], result)
    for (const r of result.rolesCreated) log(`created role ${r}`)
    return result
  } finally {
    await client.end().catch(() => {})
  }
}

export interface UninstallOptions {
  /** Also drop RLS policies that call `auth.*` functions. Without it, such policies stop the uninstall. */
  cascade?: boolean
  schemas?: string[]
  log?: (line: string) => void
}

export interface UninstallResult {
  droppedRoles: string[]
  /** Roles kept because objects (policies, grants) in this database still refer to them; set NOLOGIN. */
  keptRoles: string[]
  /**
   * Roles left exactly as they are (LOGIN, password) because other databases of the server grant them
   * privileges, i.e. another database's pg-authorize (or its owner) still uses them; with those databases.
   */
  sharedRoles: Array<{ role: string; databases: string[] }>
  droppedPolicies: string[]
}

/** Removes what setup installed: the `auth` and `pgauthorize` schemas, the grants and (when unused) the roles. */
export async function uninstall(ownerUrl: string, options: UninstallOptions = {}): Promise<UninstallResult> {
  const schemas = options.schemas?.length ? options.schemas : ['public']
  const client = await connectOwner(ownerUrl)
  const result: UninstallResult = { droppedRoles: [], keptRoles: [], sharedRoles: [], droppedPolicies: [] }
  try {
    await checkOwner(client)
    await client.query('begin')
    try {
      await client.query(`select pg_advisory_xact_lock(hashtext('pgauthorize.setup'))`)
      const policies = await client.query<{ name: string }>(
        `select distinct format('%I on %s', p.polname, p.polrelid::regclass) as name
           from pg_depend d
           join pg_policy p on d.classid = 'pg_policy'::regclass and d.objid = p.oid
           join pg_proc f on d.refclassid = 'pg_proc'::regclass and d.refobjid = f.oid
           join pg_namespace n on n.oid = f.pronamespace
          where n.nspname = 'auth'`,
      )
      if (policies.rows.length && !options.cascade) {
        throw new PgAuthorizeError(
          'ERR_INVALID_ARGUMENT',
          `${policies.rows.length} polic${policies.rows.length === 1 ? 'y calls' : 'ies call'} auth functions: ${policies.rows.map((r) => r.name).join(', ')}`,
          { hint: 'drop those policies first, or pass --cascade to drop them with the auth schema' },
        )
      }
      result.droppedPolicies = policies.rows.map((r) => r.name)
      const hasPrivate = (await client.query(`select to_regclass('pgauthorize.role_credentials') as t`)).rows[0]?.t
      const hasGateway = (await client.query(`select to_regclass('pgauthorize.gateway_credentials') as t`)).rows[0]?.t
      // The gateway roles too: granted CONNECT here, and dropped with the rest unless another database uses them.
      const roles = hasPrivate
        ? (await client.query<{ role: string }>(
            `select role from pgauthorize.role_credentials${hasGateway ? ' union select role from pgauthorize.gateway_credentials' : ''}`,
          )).rows.map((r) => r.role)
        : [...SETUP_ROLES, GATEWAY_ROLE]
      const existing = (
        await client.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1)', [roles])
      ).rows.map((r) => r.rolname)
      await unrestrictLargeObjects(client)
      await client.query('drop schema if exists auth cascade')
      await client.query('drop schema if exists pgauthorize cascade')
      if (existing.length) {
        const list = existing.map(quoteIdent).join(', ')
        for (const s of schemas) {
          const ok = await client.query('select 1 from pg_namespace where nspname = $1', [s])
          if (!ok.rows.length) continue
          const schema = quoteIdent(s)
          await client.query(`revoke all on all tables in schema ${schema} from ${list}`)
          await client.query(`revoke all on all sequences in schema ${schema} from ${list}`)
          await client.query(`alter default privileges in schema ${schema} revoke all on tables from ${list}`)
          await client.query(`alter default privileges in schema ${schema} revoke all on sequences from ${list}`)
          await client.query(`revoke all on schema ${schema} from ${list}`)
        }
        await client.query(`revoke connect on database ${quoteIdent(await currentDatabase(client))} from ${list}`)
      }
      for (const role of existing) {
        // Roles are cluster-wide. Another database that grants them anything (its own pg-authorize set
        // them up, or its owner did) still logs in as them: disabling LOGIN here would lock its gateway out.
        // pg_shdepend is the server's shared record of which database refers to which role.
        const elsewhere = await client.query<{ datname: string }>(
          `select distinct d.datname
             from pg_shdepend s
             join pg_database d
               on d.oid = case when s.dbid = 0 and s.classid = 'pg_database'::regclass then s.objid else s.dbid end
            where s.refclassid = 'pg_authid'::regclass
              and s.refobjid = (select oid from pg_roles where rolname = $1)
              and d.datname <> current_database()
            order by 1`,
          [role],
        )
        if (elsewhere.rows.length) {
          result.sharedRoles.push({ role, databases: elsewhere.rows.map((r) => r.datname) })
          continue
        }
        await client.query('savepoint drop_role')
        try {
          await client.query(`drop role ${quoteIdent(role)}`)
          await client.query('release savepoint drop_role')
          result.droppedRoles.push(role)
        } catch {
          // Still referenced (policies TO the role, or objects in another database): keep it, but nobody
          // can log in with a password that no longer exists anywhere.
          await client.query('rollback to savepoint drop_role')
          await client.query(`alter role ${quoteIdent(role)} nologin password null`)
          result.keptRoles.push(role)
        }
      }
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => {})
      throw err
    }
    return result
  } finally {
    await client.end().catch(() => {})
  }
}

/** A stable fingerprint of everything setup manages, for idempotency checks and `status`. */
export async function setupFingerprint(ownerUrl: string): Promise<string> {
  const client = await connectOwner(ownerUrl)
  try {
    const r = await client.query(`
      select
        (select json_agg(x order by x) from (select rolname || ':' || rolsuper || rolinherit || rolcanlogin || rolbypassrls
           || coalesce(array_to_string(rolconfig, ','), '') as x
           from pg_roles where rolname in (select role from pgauthorize.role_credentials)) r) as roles,
        (select json_agg(x order by x) from (select c.oid::regclass::text || coalesce(c.relacl::text, '') as x
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')) t) as acls,
        (select json_agg(x order by x) from (select p.oid::regprocedure::text || coalesce(p.proacl::text, '') || md5(coalesce(p.prosrc, '')) as x
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('auth', 'pgauthorize')) f) as funcs,
        (select json_agg(x order by x) from (select coalesce(defaclacl::text, '') || defaclobjtype::text as x from pg_default_acl) d) as defaults,
        (select json_agg(x order by x) from (select nspname || coalesce(nspacl::text, '') as x from pg_namespace) n) as schemas,
        (select json_agg(version order by version) from pgauthorize.migrations) as migrations,
        (select json_agg(md5(key::text) || coalesce(retire_at::text, '') order by generation) from pgauthorize.sealing_key) as secret,
        (select json_agg(role || md5(password) order by role) from pgauthorize.role_credentials) as creds`)
    return createHash('sha256').update(JSON.stringify(r.rows[0])).digest('hex')
  } finally {
    await client.end().catch(() => {})
  }
}
