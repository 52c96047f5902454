/**
 * Generating a signing key pair as JWKs, the way the Neon guide does it (jose `generateKeyPair` +
 * `exportJWK`), with `kid`, `alg` and `use: "sig"` on both halves.
 *
 * @module
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { ALGORITHMS, isAlgorithm, type Algorithm } from './algorithms.js'
import { toPublicJwk, type Jwk } from './public.js'

/** A freshly generated key pair. */
export interface SigningKey {
  kid: string
  alg: Algorithm
  /** The private JWK (holds `d`); keep it secret. */
  privateJwk: Jwk
  /** The public JWK, safe to publish. */
  publicJwk: Jwk
}

export interface GenerateOptions {
  /** Default `RS256`, as in the guide. */
  alg?: Algorithm
  /** Default: the RFC 7638 SHA-256 thumbprint of the public key. */
  kid?: string
}

/**
 * Generates a new signing key pair (RSA keys are 2048-bit).
 *
 * @example
 * const { kid, privateJwk, publicJwk } = await generateSigningKey({ alg: 'ES256' })
 */
export async function generateSigningKey(options: GenerateOptions = {}): Promise<SigningKey> {
  const alg = options.alg ?? 'RS256'
  if (!isAlgorithm(alg)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unsupported algorithm '${String(alg)}'`, {
      hint: `use one of ${ALGORITHMS.join(', ')}`,
    })
  }
  if (options.kid !== undefined && (typeof options.kid !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(options.kid))) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'kid must be 1 to 200 printable ASCII characters')
  }
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 })
  const exported = (await exportJWK(privateKey)) as Jwk
  const publicOnly = toPublicJwk(exported)!
  const kid = options.kid ?? (await calculateJwkThumbprint(publicOnly as never, 'sha256'))
  const privateJwk: Jwk = { ...exported, kid, alg, use: 'sig' }
  const publicJwk: Jwk = { ...publicOnly, kid, alg, use: 'sig' }
  return { kid, alg, privateJwk, publicJwk }
}
