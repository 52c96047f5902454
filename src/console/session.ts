/**
 * The console's admin credential and sessions.
 *
 * One admin token (random, printed at start, or given in the configuration) is exchanged at the login
 * form for a session: a random id in an `HttpOnly; SameSite=Strict; Path=/console` cookie, looked up in a
 * server-side map with an absolute expiry. Each session carries its own random CSRF token, which every
 * state-changing request must echo (see `http.ts`).
 *
 * Sessions live in memory: restarting the gateway logs everyone out, which is what an admin console on a
 * stateless gateway should do.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { PgAuthorizeError } from '../errors.js'

/** The session cookie's name. */
export const SESSION_COOKIE = 'pga_console'

/** A new random admin token (192 bits). */
export function newAdminToken(): string {
  return randomBytes(24).toString('base64url')
}

export interface AdminSession {
  readonly id: string
  /** Echoed by the page in `X-CSRF-Token` (or a hidden `csrf` field) on every state-changing request. */
  readonly csrf: string
  readonly expiresAt: number
}

export interface AdminSessionsOptions {
  /** Session lifetime, ms. Default 8 hours. */
  ttlMs?: number
  /** Most sessions kept at once; the oldest is dropped beyond it. Default 100. */
  maxSessions?: number
  /** Clock seam, epoch ms. */
  now?: () => number
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

export class AdminSessions {
  readonly #token: Buffer
  readonly #ttlMs: number
  readonly #max: number
  readonly #now: () => number
  readonly #sessions = new Map<string, AdminSession>()

  constructor(adminToken: string, options: AdminSessionsOptions = {}) {
    if (typeof adminToken !== 'string' || adminToken.length < 16) {
      throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'the console admin token must be at least 16 characters')
    }
    // Only a digest is kept, and compared in constant time.
    this.#token = digest(adminToken)
    this.#ttlMs = options.ttlMs ?? 8 * 3600_000
    this.#max = options.maxSessions ?? 100
    this.#now = options.now ?? Date.now
  }

  get ttlMs(): number {
    return this.#ttlMs
  }

  /** True when `candidate` is the admin token. */
  checkToken(candidate: unknown): boolean {
    if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 1024) return false
    return timingSafeEqual(digest(candidate.trim()), this.#token)
  }

  /** Starts a session (after a successful login). */
  create(): AdminSession {
    const now = this.#now()
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id)
    while (this.#sessions.size >= this.#max) this.#sessions.delete(this.#sessions.keys().next().value!)
    const session: AdminSession = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      expiresAt: now + this.#ttlMs,
    }
    this.#sessions.set(session.id, session)
    return session
  }

  /** The live session with this id, if any. */
  get(id: string | undefined): AdminSession | undefined {
    if (!id) return undefined
    const s = this.#sessions.get(id)
    if (!s) return undefined
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(id)
      return undefined
    }
    return s
  }

  end(id: string): void {
    this.#sessions.delete(id)
  }
}

/** True when `given` is this session's CSRF token (constant time). */
export function csrfMatches(session: AdminSession, given: string | null | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 256) return false
  return timingSafeEqual(digest(given), digest(session.csrf))
}

/** One cookie's value from a `Cookie` header. */
export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
