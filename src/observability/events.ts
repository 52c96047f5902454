/**
 * Everything the gateway reports, as one discriminated union on `kind`: the HTTP handler, the pools, the
 * wire sessions, the authenticator and the verifiers all emit a {@link GatewayEvent}, and one consumer
 * (observer.ts) turns them into metrics, log lines and audit records. Tests read the same events.
 *
 * No event carries a token, a password, a claim other than `sub` (for the audit trail; limits carry only
 * its hash), a query parameter or a secret.
 *
 * @module
 */
import type { ErrorCode } from '../errors.js'
import type { Transport } from '../auth/identity.js'
import type { VerifierEvent } from '../verify/types.js'

/** What one `POST /sql` did, emitted when it ends. */
export interface HttpRequestInfo {
  requestId: string
  status: number
  outcome: 'ok' | 'unauthorized' | 'rejected' | 'sql_error' | 'cancelled' | 'error'
  /** SQLSTATE of a Postgres error, or the pg-authorize error code. */
  code?: string
  role?: string
  database?: string
  provider?: string
  subject?: string
  /** Statement kinds, e.g. `SELECT` or `INSERT,SELECT` for a batch. */
  statements?: string
  /** Time from asking for a connection to having one. */
  poolWaitMs?: number
  /** Time from having a connection to the last result. */
  queryMs?: number
  ms: number
}

interface Target {
  database: string
  role: string
}

/** Why a fair-share or session limit refused. */
export type LimitReason = 'share-timeout' | 'queue-full' | 'wire-identity' | 'wire-total' | 'startup-address'

export type GatewayEvent =
  // The HTTP handler.
  | ({ kind: 'request' } & HttpRequestInfo)
  | { kind: 'rejected'; code: ErrorCode }
  | ({ kind: 'cancelled' } & Target)
  | { kind: 'setup-step-failed'; code: string | undefined }
  | { kind: 'internal-error'; error: unknown }
  // The HTTP pools.
  | ({ kind: 'queue-wait'; reason: 'share' | 'pool'; ms: number } & Target)
  | ({ kind: 'pool-timeout' } & Target)
  // `cause`: the SQLSTATE or system error code of what failed (28P01, ECONNREFUSED...), safe to log where the
  // message is not (it may name hosts or users).
  | ({ kind: 'pool-error'; message: string; cause?: string | undefined } & Target)
  | ({ kind: 'connect-error'; message: string; cause?: string | undefined } & Target)
  | ({ kind: 'reset-failed'; message: string } & Target)
  // Limits of both transports.
  | {
      kind: 'limit-refused'
      transport: Transport
      reason: LimitReason
      database?: string
      role?: string
      held?: number
      provider?: string | undefined
      subjectHash?: string | undefined
      remoteAddress?: string | undefined
    }
  // Wire sessions.
  | { kind: 'session-start'; transport: Transport; remoteAddress: string | undefined; database: string; role: string }
  | { kind: 'session-end'; transport: Transport; reason: string; ms: number; database: string; role: string }
  | ({ kind: 'session-expired'; transport: Transport } & Target)
  | ({ kind: 'session-resealed' | 'reseal-failed'; transport?: Transport; message?: string; database: string; role?: string })
  | { kind: 'auth-failed'; transport: Transport; remoteAddress: string | undefined; user: string; database: string; code: string }
  | { kind: 'startup-timeout'; transport: Transport; remoteAddress: string | undefined }
  | ({ kind: 'upstream-failed'; message: string } & Target)
  | { kind: 'cancel'; matched: boolean }
  | { kind: 'error'; message: string }
  // The authenticator and the verifiers (one per served database).
  | ({ kind: 'role-repair'; reason: 'settings' | 'password'; led: boolean; transport: Transport } & Target)
  | { kind: 'key-rotated'; database: string; generation: number; sessions: number }
  | { kind: 'verified'; database: string; provider: string; ms: number }
  | { kind: 'verify-failed'; database: string; code: ErrorCode; ms: number }
  // A verifier's own events (token cache, JWKS and discovery fetches), tagged with its database.
  | (Exclude<VerifierEvent, { kind: 'verified' | 'verify-failed' }> & { database: string })
  | { kind: 'provider-reload-failed'; code: string; reason: string }

export type GatewayEventKind = GatewayEvent['kind']

/** Where events go. */
export type EventSink = (e: GatewayEvent) => void
