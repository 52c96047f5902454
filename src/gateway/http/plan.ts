/**
 * The statements one `/sql` request sends, in order, as one pipeline: the gateway's own first (BEGIN with
 * the batch's mode, the sealed claims and application_name, transaction-locally), then the client's, then
 * COMMIT for a batch. The gateway's own are never captured into the response.
 *
 * - single query: claims + application_name + the query, in one implicit transaction (Sync only at the
 *   end), so the query runs in autocommit, never without its claims, and the claims vanish when it ends.
 *   Trade-off: statements that refuse to run in a pipeline/transaction block (VACUUM, CREATE INDEX
 *   CONCURRENTLY, CREATE DATABASE) fail here; restricted roles cannot usefully run them anyway;
 * - batch: `BEGIN <isolation> [READ ONLY] [DEFERRABLE]` + claims + the queries + `COMMIT`; the first error
 *   skips the rest and the pool rolls the transaction back before reuse.
 *
 * @module
 */
import { SESSION_SETTING, installClaimsParamSql } from '../../database/session.js'
import type { Identity } from '../../auth/identity.js'
import type { Step } from './execute.js'
import type { ParsedSqlRequest } from './parse.js'

export interface SqlPlan {
  steps: Step[]
  /** Index of the client's first statement in `steps` (a failure before it is the gateway's own). */
  firstUser: number
  /** Response headers echoing the batch's mode, as Neon does. */
  headers: Record<string, string> | undefined
}

const APP_NAME_SQL = `select pg_catalog.set_config('application_name', $1, true)`
/** Claims and application_name in one statement: one Parse/Bind/Execute less per request. */
const CLAIMS_AND_APP_NAME_SQL = `select pg_catalog.set_config('${SESSION_SETTING}', $1, true), pg_catalog.set_config('application_name', $2, true)`

export function planSql(req: ParsedSqlRequest, identity: Identity): SqlPlan {
  const steps: Step[] = []
  const own = (text: string, values: (string | null)[] = []) => steps.push({ text, values, capture: false, arrayMode: true, rawText: true })
  let headers: Record<string, string> | undefined
  if (req.batch) {
    own(
      'BEGIN' +
        (req.isolation ? ` ISOLATION LEVEL ${req.isolation.sql}` : '') +
        (req.readOnly ? ' READ ONLY' : '') +
        (req.deferrable ? ' DEFERRABLE' : ''),
    )
    headers = {}
    if (req.isolation) headers['neon-batch-isolation-level'] = req.isolation.header
    if (req.readOnly) headers['neon-batch-read-only'] = 'true'
    if (req.deferrable) headers['neon-batch-deferrable'] = 'true'
  }
  const appName = req.conn.applicationName
  // As bind parameters: SQL text shows in pg_stat_activity to other sessions of the role (replayable).
  if (identity.envelope !== null && appName !== undefined) own(CLAIMS_AND_APP_NAME_SQL, [identity.envelope, appName])
  else if (identity.envelope !== null) own(installClaimsParamSql(true), [identity.envelope])
  else if (appName !== undefined) own(APP_NAME_SQL, [appName])
  const firstUser = steps.length
  for (const q of req.queries) {
    steps.push({ text: q.text, values: q.values, capture: true, arrayMode: q.arrayMode ?? req.arrayModeDefault, rawText: req.rawText })
  }
  if (req.batch) own('COMMIT')
  return { steps, firstUser, headers }
}
