/**
 * The lint rules about functions: `function_search_path_mutable`, and a SECURITY DEFINER function a
 * restricted role can execute (`anon_security_definer_function_executable` for the `anonymous` role,
 * `authenticated_security_definer_function_executable` for any other restricted role). Functions of
 * extensions and of the `auth` and `pgauthorize` schemas are not checked.
 *
 * @module
 */
import { quoteIdent } from '../database/connect.js'
import { USER_SCHEMA, type LintContext, type RawFinding } from './lint.js'

/** The restricted role of requests without a token (setup's default role names). */
const ANONYMOUS = 'anonymous'

export async function functionFindings(ctx: LintContext): Promise<RawFinding[]> {
  const { c, roles } = ctx
  const findings: RawFinding[] = []
  const fns = await c.query<{ oid: string; fn: string; definer: boolean; pinned: boolean; public: boolean; roles: string[] }>(
    `select p.oid::text as oid, p.oid::regprocedure::text as fn, p.prosecdef as definer,
            exists (select 1 from unnest(coalesce(p.proconfig, '{}')) x where x like 'search\\_path=%') as pinned,
            exists (select 1 from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x
                     where x.grantee = 0 and x.privilege_type = 'EXECUTE') as public,
            array(select r from unnest($1::text[]) r where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE')) as roles
       from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where p.prokind in ('f', 'p') and ${USER_SCHEMA}
        and not exists (select 1 from pg_catalog.pg_depend d where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      order by 2`,
    [roles],
  )
  for (const f of fns.rows) {
    const anchors = [{ kind: 'function' as const, oid: f.oid }]
    if (!f.pinned) {
      findings.push({
        rule: 'function_search_path_mutable',
        // A definer function runs the caller's search_path with its owner's rights: a caller's own objects can hijack it.
        severity: f.definer && f.roles.length ? 'error' : undefined,
        object: f.fn,
        anchors,
        message: `${f.fn} does not set search_path, so its unqualified names resolve through the caller's` +
          (f.definer && f.roles.length ? `; it is SECURITY DEFINER and ${f.roles.join(', ')} can call it, so they can make it run their own objects with its owner's rights` : ''),
        fix: `ALTER FUNCTION ${f.fn} SET search_path = pg_catalog, pg_temp; -- and schema-qualify the names it uses (or list their schemas before pg_temp)`,
      })
    }
    if (!f.definer || !f.roles.length) continue
    for (const [rule, who] of [
      ['anon_security_definer_function_executable', f.roles.filter((r) => r === ANONYMOUS)],
      ['authenticated_security_definer_function_executable', f.roles.filter((r) => r !== ANONYMOUS)],
    ] as const) {
      if (!who.length) continue
      findings.push({
        rule,
        severity: f.public ? 'error' : 'warning',
        object: f.fn,
        anchors,
        message: `${who.join(', ')} can execute SECURITY DEFINER function ${f.fn}${f.public ? ' (through PUBLIC, the default)' : ''}: it runs with its owner's rights, which bypass RLS`,
        fix: `REVOKE EXECUTE ON FUNCTION ${f.fn} FROM PUBLIC, ${who.map(quoteIdent).join(', ')}; -- or, if it need not bypass RLS: ALTER FUNCTION ${f.fn} SECURITY INVOKER;`,
      })
    }
  }
  return findings
}
