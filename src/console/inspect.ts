/**
 * The token inspector: a pasted JWT's header and claims, and whether it verifies (against which provider
 * and key) or the exact reason it does not, as the gateway's verifier reports it (stable code + message).
 *
 * The token arrives in a POST body only; it is never stored, logged, or put in a message. Verification
 * uses the console's own verifier, built without a verified-token cache, so inspecting a token leaves no
 * trace of it even as a digest.
 *
 * @module
 */
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { isPgAuthorizeError } from '../errors.js'
import { Verifier } from '../verify/verifier.js'
import type { ConsoleBackend } from './backend.js'
import { fail } from './http.js'

export interface InspectResult {
  header: Record<string, unknown> | null
  claims: Record<string, unknown> | null
  verified: boolean
  provider?: { name: string; issuer: string | null; roles: string[] }
  key?: { kid: string | null; alg: string }
  expiresAt?: number | null
  error?: { code: string; message: string }
}

/** The console's verifier, kept in step with the gateway's providers; no token cache. */
export class ConsoleVerifier {
  readonly #databases: ConsoleBackend
  readonly #verifier = new Verifier({ cache: false })

  constructor(databases: ConsoleBackend) {
    this.#databases = databases
  }

  async get(): Promise<Verifier> {
    const { verifier } = await this.#databases.open()
    // Unchanged providers keep their cached keys (setProviders compares configs).
    this.#verifier.setProviders([...verifier.providers])
    return this.#verifier
  }

  close(): void {
    this.#verifier.close()
  }
}

/** Accepts `Bearer <jwt>` and surrounding whitespace, as people paste it. */
export function cleanToken(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw fail('ERR_INVALID_ARGUMENT', 'paste a token first')
  return raw.trim().replace(/^bearer\s+/i, '')
}

export async function inspectToken(verifier: Verifier, raw: unknown): Promise<InspectResult> {
  const token = cleanToken(raw)
  let header: Record<string, unknown> | null = null
  let claims: Record<string, unknown> | null = null
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>
  } catch {
    // reported by the verifier below, with its code
  }
  try {
    claims = decodeJwt(token) as Record<string, unknown>
  } catch {
    // idem
  }
  try {
    const v = await verifier.verify(token)
    return {
      header,
      claims,
      verified: true,
      provider: { name: v.provider.name, issuer: v.provider.issuer ?? null, roles: [...(v.provider.roles ?? [])] },
      key: { kid: typeof v.header.kid === 'string' ? v.header.kid : null, alg: String(v.header.alg) },
      expiresAt: v.expiresAt ?? null,
    }
  } catch (err) {
    const error = isPgAuthorizeError(err)
      ? { code: err.code, message: err.message }
      : { code: 'ERR_INTERNAL', message: 'verification failed unexpectedly' }
    return { header, claims, verified: false, error }
  }
}
