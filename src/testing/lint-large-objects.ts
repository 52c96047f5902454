/**
 * Lint rule `large-objects` (error): a restricted role may still execute large-object functions, so any
 * user can read, overwrite and unlink every other user's large objects (they are outside RLS, and all
 * users share the role that owns them). `setup` closes this when run by a superuser; see
 * src/database/large-objects.ts.
 *
 * @module
 */
import type pg from 'pg'
import { LARGE_OBJECT_FUNCTIONS, largeObjectExposure } from '../database/large-objects.js'
import type { Finding } from './lint.js'

export async function largeObjectFindings(c: pg.ClientBase, roles: readonly string[]): Promise<Finding[]> {
  const exposed = await largeObjectExposure(c, roles)
  return [...exposed].map(([role, fns]) => ({
    rule: 'large-objects' as const,
    severity: 'error' as const,
    object: role,
    message: `${role} can execute ${fns.length} large-object function(s) (${fns.slice(0, 3).join(', ')}${fns.length > 3 ? ', ...' : ''}): ` +
      'large objects are outside RLS and belong to the role, so every user of it can read and unlink the others\'',
    fix: `-- as a superuser (or re-run pg-authorize setup as one):\nREVOKE EXECUTE ON FUNCTION ${LARGE_OBJECT_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ')} FROM PUBLIC; ` +
      `GRANT EXECUTE ON FUNCTION <the same list> TO <roles that use large objects>;`,
  }))
}
