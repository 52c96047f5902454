/**
 * Bounds on wire and WebSocket sessions (issue 22). Each session holds its own upstream connection, so
 * without them one identity could open enough sessions to exhaust the cluster's `max_connections` for
 * everyone. A login past a limit is refused with FATAL 53300 before anything is opened upstream, and a
 * client address may hold only so many connections still logging in.
 *
 * @module
 */
import type { Duplex } from 'node:stream'
import { PgAuthorizeError } from '../../errors.js'
import { identityKey, subjectHash, type Identity, type Transport } from '../../auth/identity.js'
import type { EventSink } from '../../observability/events.js'

export interface WireLimits {
  /** Most sessions one identity (provider + `sub`) may have open or opening at once. Default 20; 0: no limit. */
  maxSessionsPerIdentity?: number
  /** Most sessions in all, open or opening. Default 500; 0: no limit. */
  maxSessions?: number
  /**
   * Most connections from one client address still in the startup phase (before a login succeeds); one
   * more is refused at once with 53300, before its startup packet is read. Default 20; 0: no limit.
   */
  maxStartupPerAddress?: number
}

/** A count that is given back once, when its stream closes or on demand. */
function counted(stream: Duplex, release: () => void): () => void {
  let held = true
  const once = (): void => {
    if (!held) return
    held = false
    release()
  }
  if (stream.destroyed) once()
  else stream.once('close', once)
  return once
}

export class SessionLimits {
  readonly maxPerIdentity: number
  readonly maxSessions: number
  readonly maxStartupPerAddress: number
  readonly #emit: EventSink
  /** Sessions open or opening, in all and by identity key; each is counted until its client stream closes. */
  #sessions = 0
  readonly #byIdentity = new Map<string, number>()
  /** Connections still in the startup phase, by client address. */
  readonly #starting = new Map<string, number>()

  constructor(limits: WireLimits | undefined, emit: EventSink) {
    this.maxPerIdentity = limits?.maxSessionsPerIdentity ?? 20
    this.maxSessions = limits?.maxSessions ?? 500
    this.maxStartupPerAddress = limits?.maxStartupPerAddress ?? 20
    this.#emit = emit
  }

  /**
   * Counts a connection in its startup phase from `address` until `stream` closes or the returned function
   * is called (the startup is over). Returns undefined, counting nothing, when the address is at its limit.
   */
  enterStartup(stream: Duplex, address: string): (() => void) | undefined {
    const starting = this.#starting.get(address) ?? 0
    if (this.maxStartupPerAddress > 0 && starting >= this.maxStartupPerAddress) return undefined
    this.#starting.set(address, starting + 1)
    return counted(stream, () => decrement(this.#starting, address))
  }

  /**
   * Counts a verified session against the limits, before anything is opened upstream, until `stream`
   * closes (however the session ends). Throws ERR_TOO_MANY_SESSIONS past a limit.
   */
  admit(stream: Duplex, identity: Identity, transport: Transport): void {
    const key = identityKey(identity.provider, identity.subject)
    const held = this.#byIdentity.get(key) ?? 0
    const reason = this.maxPerIdentity > 0 && held >= this.maxPerIdentity
      ? 'identity'
      : this.maxSessions > 0 && this.#sessions >= this.maxSessions ? 'total' : undefined
    if (reason !== undefined) {
      this.#emit({
        kind: 'limit-refused', transport, reason: reason === 'identity' ? 'wire-identity' : 'wire-total',
        database: identity.database, role: identity.role, provider: identity.provider, subjectHash: subjectHash(identity.subject),
      })
      throw new PgAuthorizeError(
        'ERR_TOO_MANY_SESSIONS',
        reason === 'identity'
          ? `too many sessions for this identity: ${held} open (the limit is ${this.maxPerIdentity})`
          : `too many sessions: the gateway's limit of ${this.maxSessions} is reached`,
        { hint: reason === 'identity' ? 'close sessions you no longer use, or share one through a client-side pool' : 'retry later' },
      )
    }
    this.#sessions++
    this.#byIdentity.set(key, held + 1)
    counted(stream, () => {
      this.#sessions--
      decrement(this.#byIdentity, key)
    })
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1
  if (n <= 0) map.delete(key)
  else map.set(key, n)
}
