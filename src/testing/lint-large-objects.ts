/**
 * Lint rule `large_objects_executable` (error): a restricted role may still execute large-object functions, so any
 * user can read, overwrite and unlink every other user's large objects (they are outside RLS, and all
 * users share the role that owns them). `setup` closes this when run by a superuser; see
 * src/database/large-objects.ts. The object is a role, which a `pg-authorize:ignore` comment cannot sit
 * on (role comments are shared by every database), so this rule cannot be suppressed: revoke instead.
 *
 * @module
 */
import type pg from 'pg'
import { LARGE_OBJECT_FUNCTIONS, largeObjectExposure } from '../database/large-objects.js'
import type { RawFinding } from './lint.js'

export async function largeObjectFindings(c: pg.ClientBase, roles: readonly string[]): Promise<RawFinding[]> {
  const exposed = await largeObjectExposure(c, roles)
  return [...exposed].map(([role, fns]) => ({
    rule: 'large_objects_executable' as const,
    object: role,
    anchors: [],
    message: `${role} can execute ${fns.length} large-object function(s) (${fns.slice(0, 3).join(', ')}${fns.length > 3 ? ', ...' : ''}): ` +
      'large objects are outside RLS and belong to the role, so every user of it can read and unlink the others\'',
    fix: `-- as a superuser (or re-run pg-authorize setup as one):\nREVOKE EXECUTE ON FUNCTION ${LARGE_OBJECT_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ')} FROM PUBLIC; ` +
      `GRANT EXECUTE ON FUNCTION <the same list> TO <roles that use large objects>;`,
  }))
}
