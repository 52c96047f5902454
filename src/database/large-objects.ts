/**
 * Large objects are outside RLS. One belongs to the role that created it, and every user of a restricted
 * role is that role, so any of them can read, overwrite and unlink the others' (`lo_get`, `lo_open` +
 * `loread`, `lo_put`, `lo_unlink`, ...). Large-object ACLs cannot help (the users share the owner), and
 * `REVOKE ... FROM authenticated` changes nothing: the functions are executable through PUBLIC.
 *
 * What works is taking EXECUTE on the large-object functions away from PUBLIC in the database (pg_proc
 * is per database) and giving it back to the database's owner and the role running setup. Only the
 * functions' owner, a superuser, may do that; for any other owner `lint` reports the exposure
 * (rule `large-objects`). Other roles of the database that use large objects need an explicit GRANT.
 *
 * @module
 */
import type pg from 'pg'
import { quoteIdent } from './connect.js'

/** Every large-object function of the core that a client can call (server-file ones are superuser-only). */
export const LARGE_OBJECT_FUNCTIONS = [
  'lo_create(oid)', 'lo_creat(integer)', 'lo_from_bytea(oid,bytea)', 'lo_open(oid,integer)', 'lo_close(integer)',
  'loread(integer,integer)', 'lowrite(integer,bytea)', 'lo_lseek(integer,integer,integer)',
  'lo_lseek64(integer,bigint,integer)', 'lo_tell(integer)', 'lo_tell64(integer)', 'lo_truncate(integer,integer)',
  'lo_truncate64(integer,bigint)', 'lo_unlink(oid)', 'lo_get(oid)', 'lo_get(oid,bigint,integer)',
  'lo_put(oid,bigint,bytea)',
] as const

const LIST = LARGE_OBJECT_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ')

/**
 * Revokes the large-object functions from PUBLIC in the current database and grants them to its owner
 * and to the current user. Returns false, changing nothing, when the connection is not a superuser.
 * Idempotent.
 */
export async function restrictLargeObjects(client: pg.ClientBase): Promise<boolean> {
  const r = await client.query<{ su: boolean; dba: string }>(
    `select r.rolsuper as su, pg_catalog.pg_get_userbyid(d.datdba) as dba
       from pg_catalog.pg_roles r, pg_catalog.pg_database d
      where r.rolname = current_user and d.datname = pg_catalog.current_database()`,
  )
  const row = r.rows[0]
  if (!row?.su) return false
  await client.query(`revoke execute on function ${LIST} from public`)
  await client.query(`grant execute on function ${LIST} to ${quoteIdent(row.dba)}, current_user`)
  return true
}

/** Gives the large-object functions back to PUBLIC (uninstall), when the connection may. */
export async function unrestrictLargeObjects(client: pg.ClientBase): Promise<void> {
  const r = await client.query<{ su: boolean }>(`select rolsuper as su from pg_catalog.pg_roles where rolname = current_user`)
  if (r.rows[0]?.su) await client.query(`grant execute on function ${LIST} to public`)
}

/** For each of `roles`, the large-object functions it may still execute. */
export async function largeObjectExposure(client: pg.ClientBase, roles: readonly string[]): Promise<Map<string, string[]>> {
  const r = await client.query<{ role: string; fns: string[] }>(
    `select r.rolname as role, pg_catalog.array_agg(f order by f) as fns
       from pg_catalog.pg_roles r, pg_catalog.unnest($2::text[]) as f
      where r.rolname = any($1::text[]) and pg_catalog.has_function_privilege(r.oid, ('pg_catalog.' || f)::pg_catalog.regprocedure, 'EXECUTE')
      group by r.rolname`,
    [roles, [...LARGE_OBJECT_FUNCTIONS]],
  )
  return new Map(r.rows.map((x) => [x.role, x.fns]))
}
