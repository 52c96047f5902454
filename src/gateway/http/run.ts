/**
 * Runs a planned `/sql` request on a connection logged in as the identity's role, in one pipelined round
 * trip (execute.ts), and turns what happened into the response: the results, a Postgres error with its
 * fields, a cancelled request (the client went away: the backend query is cancelled and the connection
 * discarded), or a lost connection.
 *
 * The pool's lease carries a prelude (the previous request's reset, pool.ts) that runs first in the same
 * pipeline, at no round trip of its own; a failed reset skips the request's statements, and the connection
 * is closed rather than lent again with a reset that fails.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import type { Identity } from '../../auth/identity.js'
import type { EventSink, HttpRequestInfo } from '../../observability/events.js'
import { Pipeline, StepError, type Step } from './execute.js'
import type { SqlPlan } from './plan.js'
import type { GatewayPools, Lease } from './pool.js'
import type { AbortLike, SqlResponse } from './request.js'
import { cancelled, errorBody, jsonResponse, ownError } from './respond.js'
import { RESET_NEEDS_OWN_TRANSACTION } from '../../database/session.js'

export interface RunContext {
  pools: Pick<GatewayPools, 'acquire'>
  maxResponseBytes: number
  onEvent: EventSink | undefined
  signal: AbortLike
  /** Filled in as the request runs (pool wait, query time, outcome). */
  info: Partial<HttpRequestInfo>
}

/** Runs `plan` as `identity`; returns the results as Neon's JSON (one result, or `{ results }` for a batch). */
export async function runSql(plan: SqlPlan, identity: Identity, batch: boolean, ctx: RunContext): Promise<SqlResponse> {
  const { signal, info, onEvent } = ctx
  const waitStart = performance.now()
  const lease: Lease = await ctx.pools.acquire(identity.database, identity.role, signal, {
    pipelineReset: true,
    identity: { provider: identity.provider, subject: identity.subject },
  })
  // A single query is one implicit transaction of its own: the reset needs no COMMIT before it (pool.ts). A
  // batch starts with BEGIN and its isolation level, which must come before any statement of its transaction.
  let prelude = batch ? lease.prelude : lease.inlinePrelude
  const queryStart = performance.now()
  info.poolWaitMs = queryStart - waitStart
  const onAbort = () => {
    onEvent?.({ kind: 'cancelled', database: identity.database, role: identity.role })
    lease.cancel().catch(() => {})
  }
  if (signal.aborted) {
    lease.release()
    return cancelled()
  }
  signal.addEventListener('abort', onAbort, { once: true })
  let results: string[]
  try {
    try {
      results = await runPipeline(lease, prelude, plan, ctx.maxResponseBytes)
    } catch (err) {
      // The previous user left a LISTEN, which only a committed reset undoes: again, resetting first in a
      // transaction of its own (the inline reset refused before anything ran).
      if (!(err instanceof StepError && err.step < prelude.length && (err.error as { code?: string }).code === RESET_NEEDS_OWN_TRANSACTION)) throw err
      prelude = lease.prelude
      results = await runPipeline(lease, prelude, plan, ctx.maxResponseBytes)
    }
  } catch (err) {
    info.queryMs = performance.now() - queryStart
    signal.removeEventListener('abort', onAbort)
    if (signal.aborted) return cancelled()
    if (isPgAuthorizeError(err)) {
      // Response too large: stop the backend from producing the rest.
      lease.cancel().catch(() => {})
      return ownError(err)
    }
    const cause = err instanceof StepError ? err.error : err
    if (cause instanceof pg.DatabaseError && cause.severity !== 'FATAL' && cause.severity !== 'PANIC') {
      // A reset that fails (a limit the last user set, a database not upgraded) would fail again for the
      // next request: that connection is closed, the pool opens a fresh one.
      if (err instanceof StepError && err.step < prelude.length) lease.destroy()
      else lease.release()
      if (err instanceof StepError && err.step < prelude.length + plan.firstUser) onEvent?.({ kind: 'setup-step-failed', code: cause.code })
      info.outcome = 'sql_error'
      if (cause.code) info.code = cause.code
      return jsonResponse(400, errorBody(cause.message, cause.code ?? 'XX000', cause as unknown as Record<string, unknown>))
    }
    // The connection itself failed (terminated, socket error): its state is unknown.
    lease.destroy()
    if (cause instanceof pg.DatabaseError) {
      return jsonResponse(400, errorBody(cause.message, cause.code ?? 'XX000', cause as unknown as Record<string, unknown>))
    }
    return ownError(new PgAuthorizeError('ERR_DB_CONNECT', 'the database connection was lost', { cause }))
  }
  info.queryMs = performance.now() - queryStart
  signal.removeEventListener('abort', onAbort)
  lease.release()
  return jsonResponse(200, batch ? `{"results":[${results.join(',')}]}` : results[0]!, plan.headers)
}

/** `prelude` and the plan's steps as one pipeline on the lease's connection; the captured results. */
function runPipeline(lease: Lease, prelude: readonly Step[], plan: SqlPlan, maxBytes: number): Promise<string[]> {
  const pipeline = new Pipeline(prelude.length === 0 ? plan.steps : [...prelude, ...plan.steps], maxBytes)
  lease.client.query(pipeline as unknown as pg.QueryConfig)
  return pipeline.promise
}
