/**
 * The compact JWS, read on the calling thread: its JSON segments decoded, its signature checked with
 * `node:crypto`.
 *
 * Why not jose's `jwtVerify` here, when jose does everything else JOSE in this project (signing, key
 * generation, header and payload decoding, the JWKS documents): jose 6 verifies only through Web Crypto,
 * and on Node every `crypto.subtle.verify` is a job on the libuv thread pool plus promise hops. For an
 * RS256 token that wrapper cost four times the signature check itself (docs/benchmarks.md, figure a:
 * 7k verifications/s against 42k for `crypto.verify`). What is written here is the one primitive call per
 * algorithm and the key checks jose makes before it (key type, curve, RSA modulus of at least 2048 bits,
 * ECDSA signature length), and the segment decoding as jose's (strict base64url, fatal UTF-8, a JSON
 * object), with Buffer rather than `atob`, which was a tenth of the remaining cost.
 * test/verify/differential.test.ts checks that the verifier accepts exactly what jose accepts.
 *
 * @module
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto'
import { keySuitsAlgorithm, type Algorithm } from '../keys/algorithms.js'
import type { Jwk } from '../keys/public.js'

const HASH: Record<Algorithm, string | null> = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512',
  PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512',
  EdDSA: null, // Ed25519 hashes internally
}

/** IEEE P1363 signature length (r || s) and OpenSSL curve name per ECDSA algorithm. */
const EC: Partial<Record<Algorithm, { length: number; curve: string }>> = {
  ES256: { length: 64, curve: 'prime256v1' },
  ES384: { length: 96, curve: 'secp384r1' },
  ES512: { length: 132, curve: 'secp521r1' },
}

/**
 * The public key of `jwk` as a KeyObject for `alg`. Throws when the JWK does not describe a key of the
 * type `alg` needs (checked twice: on the JWK, and on what OpenSSL actually parsed) or an RSA key is
 * shorter than 2048 bits (RFC 7518 3.3, as jose).
 */
export function importPublicKey(jwk: Jwk, alg: Algorithm): KeyObject {
  if (!keySuitsAlgorithm(jwk, alg)) throw new Error(`the key does not suit ${alg}`)
  const key = createPublicKey({ key: { ...jwk } as never, format: 'jwk' })
  const details = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if (!alg.startsWith('RS') && !alg.startsWith('PS')) break
      if ((details.modulusLength ?? 0) < 2048) throw new Error(`${alg} needs an RSA key of at least 2048 bits`)
      return key
    case 'ec':
      if (EC[alg]?.curve !== details.namedCurve) break
      return key
    case 'ed25519':
      if (alg !== 'EdDSA') break
      return key
  }
  throw new Error(`the key does not suit ${alg}`)
}

/**
 * Whether `signature` is a valid `alg` signature of the ASCII `signingInput` (`header.payload`) under
 * `key` (from {@link importPublicKey} for the same `alg`). Never throws: malformed input is `false`.
 */
export function verifySignature(alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  try {
    const data = Buffer.from(signingInput, 'latin1')
    const ec = EC[alg]
    if (ec) {
      // JWS carries r || s; a DER signature or a wrong length is not a JWS ECDSA signature.
      if (signature.length !== ec.length) return false
      return verify(HASH[alg], data, { key, dsaEncoding: 'ieee-p1363' }, signature)
    }
    if (alg.startsWith('PS')) {
      return verify(HASH[alg], data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
    }
    return verify(HASH[alg], data, key, signature)
  } catch {
    return false
  }
}

/**
 * Decodes a segment, or `undefined` for a length no base64 encoding has (4n + 1): a malformed token.
 * The alphabet is checked by the caller's shape check.
 */
export function decodeSegment(segment: string): Buffer | undefined {
  return segment.length % 4 === 1 ? undefined : Buffer.from(segment, 'base64url')
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Whether a base64url `segment` is the one canonical spelling of its bytes: the bits its last character
 * carries beyond the data (4 when the length is 4n + 2, 2 when 4n + 3) are zero. So a signature has
 * exactly one accepted spelling and a token exactly one cache key.
 */
export function isCanonical(segment: string): boolean {
  const rest = segment.length % 4
  if (rest === 0) return true
  const last = B64URL.indexOf(segment[segment.length - 1]!)
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A header or payload segment as a JSON object, or `undefined` when it is not base64url of UTF-8 JSON
 * text of an object (the alphabet is checked by the caller's shape check).
 */
export function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeSegment(segment)
  if (!bytes) return undefined
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(bytes))
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
