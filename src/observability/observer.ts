/**
 * Turns the gateway's events into metrics, log lines and audit records, in one place.
 *
 * Events (events.ts) come from the HTTP handler (`request` when a request ends), the pools, the wire
 * gateway (`session-start`, `auth-failed`, `session-end`, ...), the authenticator and the verifiers. None carries a token, a claim
 * value other than `sub` (for the audit trail), a query parameter or a secret, and nothing here adds one.
 *
 * @module
 */
import type { AuditTrail } from './audit.js'
import type { GatewayEvent } from './events.js'
import type { Logger } from './logger.js'
import type { GatewayMetrics } from './metrics.js'

export interface ObserverOptions {
  logger: Logger
  metrics?: GatewayMetrics | undefined
  audit?: AuditTrail | undefined
}

export class Observer {
  readonly #logger: Logger
  readonly #metrics: GatewayMetrics | undefined
  #audit: AuditTrail | undefined
  /** Last successful JWKS fetch per `database/provider`, for the age gauge. */
  readonly #jwksFetched = new Map<string, { database: string; provider: string; at: number }>()

  constructor(options: ObserverOptions) {
    this.#logger = options.logger
    this.#metrics = options.metrics
    this.#audit = options.audit
  }

  get logger(): Logger {
    return this.#logger
  }

  /** Turns the audit trail on or off (SIGHUP). */
  setAudit(audit: AuditTrail | undefined): void {
    this.#audit = audit
  }

  jwksAges(): Array<{ database: string; provider: string; ageSeconds: number }> {
    const now = Date.now()
    return [...this.#jwksFetched.values()].map((f) => ({ database: f.database, provider: f.provider, ageSeconds: (now - f.at) / 1000 }))
  }

  /** Every event of the gateway. */
  readonly onEvent = (e: GatewayEvent): void => {
    const m = this.#metrics
    switch (e.kind) {
      case 'request': {
        const r = e
        m?.requests.inc({ transport: 'http', outcome: r.outcome })
        m?.requestDuration.observe({ outcome: r.outcome }, r.ms / 1000)
        if (r.poolWaitMs !== undefined) m?.poolWait.observe(r.poolWaitMs / 1000)
        if (r.queryMs !== undefined) m?.queryDuration.observe(r.queryMs / 1000)
        if (r.outcome === 'sql_error' && r.code !== undefined && Object.hasOwn(TIMEOUT_SQLSTATES, r.code)) {
          m?.timeouts.inc({ transport: 'http', reason: TIMEOUT_SQLSTATES[r.code]! })
        }
        this.#logger.info(
          {
            requestId: r.requestId, transport: 'http', status: r.status, outcome: r.outcome, code: r.code,
            role: r.role, database: r.database, statements: r.statements, ms: round(r.ms),
          },
          'request',
        )
        if (r.role !== undefined && r.database !== undefined && r.provider !== undefined) {
          this.#audit?.record({
            requestId: r.requestId, provider: r.provider, subject: r.subject, role: r.role, database: r.database,
            transport: 'http', statement: r.statements, outcome: r.outcome, code: r.code,
          })
        }
        return
      }
      case 'session-start':
        m?.requests.inc({ transport: e.transport, outcome: 'ok' })
        this.#logger.info({ transport: e.transport, role: e.role, database: e.database }, 'wire session started')
        return
      case 'auth-failed':
        m?.requests.inc({ transport: e.transport, outcome: 'unauthorized' })
        this.#logger.warn({ transport: e.transport, role: e.user, database: e.database, code: e.code }, 'wire authentication failed')
        return
      case 'session-end':
        m?.wireSessionsTotal.inc({ transport: e.transport, reason: e.reason })
        this.#logger.info({ transport: e.transport, role: e.role, database: e.database, reason: e.reason, ms: e.ms }, 'wire session ended')
        return
      case 'session-expired':
        this.#logger.info({ transport: e.transport, role: e.role, database: e.database }, 'wire session ended: token expired')
        return
      case 'pool-timeout':
        m?.timeouts.inc({ transport: 'http', reason: 'pool_wait' })
        this.#logger.warn({ role: e.role, database: e.database }, 'timed out waiting for a pooled connection')
        return
      case 'queue-wait':
        m?.queueWaits.observe({ reason: e.reason }, e.ms / 1000)
        return
      case 'limit-refused':
        // The identity as its provider and a hash of its sub: enough to find a noisy user, never a token.
        m?.limitRefusals.inc({ transport: e.transport, reason: e.reason })
        this.#logger.warn(
          {
            transport: e.transport, reason: e.reason, role: e.role, database: e.database,
            provider: e.provider, subjectHash: e.subjectHash, remoteAddress: e.remoteAddress,
          },
          'refused by a fair-share or session limit',
        )
        return
      case 'connect-error':
      case 'pool-error':
        this.#logger.error({ role: e.role, database: e.database, kind: e.kind, cause: e.cause }, 'database connection failed')
        return
      case 'upstream-failed':
        this.#logger.error({ role: e.role, database: e.database, kind: e.kind }, 'database connection failed')
        return
      case 'role-repair':
        // One count per repair run; logins that joined a repair already in flight are not counted again.
        if (!e.led) return
        m?.roleRepairs.inc({ database: e.database, role: e.role, reason: e.reason })
        this.#logger.warn(
          { role: e.role, database: e.database, reason: e.reason, transport: e.transport },
          'restricted role altered by a client (ALTER ROLE CURRENT_USER); repaired through the owner',
        )
        return
      case 'reset-failed':
        this.#logger.warn({ role: e.role, database: e.database }, 'connection reset failed; connection discarded')
        return
      case 'internal-error':
        this.#logger.error({ kind: e.kind, error: errorName(e.error) }, 'internal error')
        return
      case 'error':
        this.#logger.error({ kind: e.kind }, 'internal error')
        return
      case 'verified':
        m?.verifyDuration.observe(e.ms / 1000)
        return
      case 'verify-failed':
        m?.verifyDuration.observe(e.ms / 1000)
        m?.verificationFailures.inc({ code: e.code })
        return
      case 'token-cache':
        m?.tokenCache.inc({ result: e.result })
        return
      case 'jwks-fetch':
        m?.jwksFetches.inc({ provider: e.provider, reason: e.reason, result: e.ok ? 'ok' : 'error' })
        if (e.ok) {
          this.#jwksFetched.set(`${e.database}/${e.provider}`, { database: e.database, provider: e.provider, at: Date.now() })
          this.#logger.debug({ database: e.database, provider: e.provider, keys: e.keys, reason: e.reason }, 'JWKS fetched')
        } else {
          this.#logger.warn({ database: e.database, provider: e.provider, code: e.code, reason: e.reason }, 'JWKS fetch failed')
        }
        return
      case 'discovery-fetch':
        if (e.ok) this.#logger.debug({ database: e.database, provider: e.provider, changed: e.changed }, 'OIDC discovery document read')
        else this.#logger.warn({ database: e.database, provider: e.provider, code: e.code }, 'OIDC discovery failed; keeping the last jwks_uri')
        return
      case 'provider-reload-failed':
        this.#logger.warn({ code: e.code, reason: e.reason }, 'provider reload failed')
        return
      default:
        this.#logger.debug({ event: e.kind }, 'gateway event')
    }
  }

  /** A verified wire identity, for the audit trail. */
  auditSession(r: { transport: string; role: string; database: string; provider?: string | undefined; subject?: string | undefined }): void {
    this.#audit?.record({ ...r, statement: 'SESSION', outcome: 'authenticated' })
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100

/** SQLSTATEs of the session time limits setup installs, as metric reasons. */
const TIMEOUT_SQLSTATES: Readonly<Record<string, string>> = {
  '57014': 'statement_timeout',
  '25P03': 'idle_in_transaction_timeout',
}

/** The error's class name only: messages of unexpected errors may hold data. */
function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
