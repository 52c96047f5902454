/**
 * Who a request or session runs as: the one `Identity` every transport gets from the authenticator
 * (HTTP `/sql`, the wire protocol over TCP, TLS and WebSocket, and the in-process mode), and the keys
 * derived from it for limits and logs.
 *
 * @module
 */
import { createHash } from 'node:crypto'

/** How a credential reached the gateway. HTTP requests get short-lived envelopes; sessions long-lived ones. */
export type Transport = 'http' | 'tcp' | 'tls' | 'websocket'

/** A credential and what it asks for: run as `role` in `database`. */
export interface AuthRequest {
  /** The JWT; undefined when none was given (anonymous, where allowed). Never log it. */
  token: string | undefined
  role: string
  database: string
  transport: Transport
}

export interface Identity {
  role: string
  database: string
  /** Sealed claims (see database/session.ts); null for an anonymous request without a token. */
  envelope: string | null
  /** When the identity stops being valid (epoch seconds); undefined when it never does (anonymous). */
  expiresAt?: number | undefined
  /** The provider that verified the token, when there was one. */
  provider?: string | undefined
  /** The verified `sub`, for audit logs and the per-identity limits. */
  subject?: string | undefined
  /** Seals the same identity again with the current key (sessions only, after a key rotation). */
  reseal?: (() => string) | undefined
}

/**
 * The key of an identity for fair share and session limits: its provider and `sub`. Requests with no
 * provider (anonymous, no token) share one key: client addresses are no identity (proxies, NAT, IPv6
 * rotation), and one shared key keeps anonymous traffic as a whole from taking more than its share from
 * signed-in users. Tokens without a `sub` share their provider's key.
 */
export function identityKey(provider: string | undefined, subject: string | undefined): string {
  return provider === undefined ? '' : provider + '\0' + (subject ?? '')
}

/** A short, stable hash of a `sub` for logs and events (never the sub itself next to a refusal). */
export function subjectHash(subject: string | undefined): string | undefined {
  if (subject === undefined) return undefined
  return createHash('sha256').update(subject).digest('hex').slice(0, 16)
}
