/**
 * The Data API's one adapter to the gateway's internals: authentication through the `Authenticator`, role
 * connections from `GatewayPools` (with the pool's reset as the lease's `prelude`), the sealed claims installed transaction-locally (exactly as `/sql` does:
 * a bind parameter of `set_config('pg_authorize.session', $1, true)`, never `request.jwt.claims`), the
 * pool's pipelined reset, and the `LISTEN pgrst` that reloads the schema cache.
 *
 * Everything else in `src/gateway/rest/` codes against {@link RestBackend} only: moving from `Databases` to
 * the `Authenticator` changed this file's imports and the reset prelude, and nothing else.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError, isPgAuthorizeError } from '../../errors.js'
import { installClaimsParamSql } from '../../database/session.js'
import type { GatewayEvent } from '../../observability/events.js'
import { connectOwner } from '../../database/connect.js'
import type { Authenticator, Identity } from '../../auth/authenticator.js'
import type { GatewayPools, Lease } from '../http/pool.js'
import { createRestHandler, type RestBackend, type RestHandler, type RestHandlerOptions, type RestIdentity } from './handler.js'
import { RestPipeline, type PipelineStep } from './pipeline.js'

export interface RestMountOptions extends Omit<RestHandlerOptions, 'backend'> {
  /** Run requests without a token as `anonymous` (the gateway's own `allowAnonymous`). */
  allowAnonymous: boolean
}

interface MountedIdentity extends RestIdentity {
  readonly envelope: string | null
  readonly provider: string | undefined
  readonly subject: string | undefined
}

/** The channel PostgREST listens on; `NOTIFY pgrst` (or `'reload schema'`) reloads the schema cache. */
export const RELOAD_CHANNEL = 'pgrst'

/** The role a token asks for in its `role` claim (read before verification only to choose what to verify it for). */
function claimedRole(token: string): string | undefined {
  if (token.length > 16_384) return undefined
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const role = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { role?: unknown }).role
    return typeof role === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(role) ? role : undefined
  } catch {
    return undefined
  }
}

const DEFAULT_ROLE = 'authenticated'

/** Makes the current transaction read-only (allowed at any point of it; only the way back is refused). */
const READ_ONLY_SQL = `pg_catalog.set_config('transaction_read_only', 'on', true)`

/**
 * Creates the Data API handler over a gateway's `databases` and `pools`. `close()` ends the schema-reload
 * listeners.
 */
export function mountRest(deps: { databases: Authenticator; pools: GatewayPools; onEvent?: (e: GatewayEvent) => void }, options: RestMountOptions): { handler: RestHandler; close(): Promise<void> } {
  const { databases, pools } = deps
  const maxResponse = options.maxResponseBytes ?? 10 * 1024 * 1024
  const listeners = new Map<string, Promise<pg.Client | undefined>>()
  let closed = false

  const toIdentity = (id: Identity): MountedIdentity => ({
    role: id.role,
    database: id.database,
    // PostgREST: a 42501 is 401 for the anonymous role (with or without a token), 403 for any other.
    anonymous: id.envelope === null || id.role === 'anonymous',
    envelope: id.envelope,
    provider: id.provider,
    subject: id.subject,
  })

  /** One owner connection per database LISTENs for `pgrst`; opened after a first verified request only. */
  function listen(database: string): void {
    if (closed || listeners.has(database)) return
    const started = (async () => {
      const { ctx } = await databases.open(database)
      const c = await connectOwner(ctx.ownerUrl)
      c.on('notification', (msg) => {
        if (msg.channel !== RELOAD_CHANNEL) return
        const payload = msg.payload ?? ''
        if (payload === '' || payload === 'reload schema') void handler.caches.invalidate(database)
      })
      const drop = () => {
        listeners.delete(database)
        c.end().catch(() => {})
        // Whatever changed while nobody listened is picked up now.
        if (!closed) void handler.caches.invalidate(database)
      }
      c.on('error', drop)
      c.on('end', () => listeners.delete(database))
      await c.query(`LISTEN ${RELOAD_CHANNEL}`)
      if (closed) {
        await c.end().catch(() => {})
        return undefined
      }
      return c
    })().catch((err: unknown) => {
      listeners.delete(database)
      deps.onEvent?.({ kind: 'error', message: `Data API: LISTEN ${RELOAD_CHANNEL} on ${database} failed (${(err as { code?: string }).code ?? 'error'})` })
      return undefined
    })
    listeners.set(database, started)
  }

  async function authenticate(token: string | undefined, database: string): Promise<RestIdentity> {
    if (!token) {
      if (!options.allowAnonymous) throw new PgAuthorizeError('ERR_REST_ANONYMOUS_DISABLED', 'Anonymous access is disabled')
      const id = toIdentity(await databases.authenticate({ token: undefined, role: 'anonymous', database, transport: 'http' }))
      listen(id.database)
      return id
    }
    databases.checkCredential(token)
    const claimed = claimedRole(token)
    let id: Identity
    try {
      id = await databases.authenticate({ token, role: claimed ?? DEFAULT_ROLE, database, transport: 'http' })
    } catch (err) {
      // The claimed role is not one this provider (or this database) allows: the provider's default instead.
      if (!(isPgAuthorizeError(err) && err.code === 'ERR_ROLE_NOT_ALLOWED') || claimed === undefined || claimed === DEFAULT_ROLE) throw err
      id = await databases.authenticate({ token, role: DEFAULT_ROLE, database, transport: 'http' })
    }
    listen(id.database)
    return toIdentity(id)
  }

  const tooLarge = () => new PgAuthorizeError('ERR_RESPONSE_TOO_LARGE', `response is too large (max is ${maxResponse} bytes)`)

  /** Gives a lease back according to how its request ended. */
  function finish(lease: Lease, err: unknown): void {
    if (isPgAuthorizeError(err) && err.code === 'ERR_RESPONSE_TOO_LARGE') lease.cancel().catch(() => {})
    else if (err instanceof pg.DatabaseError && err.severity !== 'FATAL' && err.severity !== 'PANIC') lease.release()
    else lease.destroy()
  }

  const backend: RestBackend = {
    get defaultDatabase() {
      return databases.defaultDatabase
    },
    authenticate,
    async runAs(identity, mode, fn) {
      const id = identity as MountedIdentity
      const lease = await pools.acquire(id.database, id.role, mode.signal, {
        pipelineReset: true,
        identity: { provider: id.provider, subject: id.subject },
      })
      const onAbort = () => lease.cancel().catch(() => {})
      mode.signal?.addEventListener('abort', onAbort, { once: true })
      let first = true
      let ended = false
      try {
        const { value, commit } = await fn({
          async query(statement, end) {
            if (ended) throw new PgAuthorizeError('ERR_INTERNAL', 'the transaction has ended')
            const steps: PipelineStep[] = []
            // A read that commits in the same round trip needs no BEGIN/COMMIT: like /sql's single query, its
            // steps up to the one Sync are one implicit transaction, and the claims and READ ONLY (settable at
            // any point of a transaction) are installed by one statement, transaction-locally.
            const implicit = first && mode.readOnly && end === 'commit'
            if (first) {
              // The previous request's session state is undone first, in this request's pipeline (pool.ts).
              for (const step of lease.prelude) steps.push({ text: step.text, values: step.values, capture: false })
              if (implicit) {
                steps.push(id.envelope !== null
                  ? { text: `${installClaimsParamSql(true)}, ${READ_ONLY_SQL}`, values: [id.envelope], capture: false }
                  : { text: `select ${READ_ONLY_SQL}`, values: [], capture: false })
              } else {
                steps.push({ text: mode.readOnly ? 'BEGIN READ ONLY' : 'BEGIN', values: [], capture: false })
                if (id.envelope !== null) steps.push({ text: installClaimsParamSql(true), values: [id.envelope], capture: false })
              }
              first = false
            }
            steps.push({ text: statement.text, values: statement.values, capture: true })
            if (implicit) ended = true
            else if (end) {
              steps.push({ text: end === 'commit' ? 'COMMIT' : 'ROLLBACK', values: [], capture: false })
              ended = true
            }
            const p = new RestPipeline(steps, maxResponse, tooLarge)
            lease.client.query(p as unknown as pg.QueryConfig)
            const [result] = await p.promise
            return result ?? { rows: [], command: '' }
          },
        })
        if (!ended && !first) await lease.client.query(commit ? 'COMMIT' : 'ROLLBACK')
        mode.signal?.removeEventListener('abort', onAbort)
        lease.release()
        return value
      } catch (err) {
        mode.signal?.removeEventListener('abort', onAbort)
        finish(lease, err)
        throw err
      }
    },
    catalog(database, role) {
      return async (fn) => {
        // The reset and BEGIN in one simple query (one round trip, and one server connection through a
        // transaction-mode pooler); no claims: the catalog is the role's.
        const lease = await pools.acquire(database, role, undefined, { pipelineReset: true })
        try {
          await lease.client.query([...lease.prelude.map((step) => step.text), 'BEGIN READ ONLY'].join('; '))
          const value = await fn(async (sql, values) => (await lease.client.query(sql, values)).rows as Record<string, unknown>[])
          await lease.client.query('COMMIT')
          lease.release()
          return value
        } catch (err) {
          finish(lease, err)
          throw err
        }
      }
    },
  }

  const handler = createRestHandler({
    ...options,
    backend,
    // Only what was not raised on purpose reaches the gateway's events (it is logged as an internal error).
    onEvent: (e) => {
      if (e.kind === 'internal-error') deps.onEvent?.({ kind: 'internal-error', error: e.error })
    },
  })
  return {
    handler,
    async close() {
      closed = true
      const all = [...listeners.values()]
      listeners.clear()
      for (const l of all) {
        const c = await l
        await c?.end().catch(() => {})
      }
    },
  }
}
