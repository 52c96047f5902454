/**
 * Reading and checking one JWK (from a file, an environment variable or a string) before it is used,
 * so bad input fails with a clear code and nothing is written. Messages name the source, never its content.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { importJWK } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { algorithmForKey, type Algorithm } from './algorithms.js'
import { isPrivateJwk, type Jwk } from './public.js'

/** A checked JWK and the algorithm it is used with. */
export interface CheckedJwk {
  jwk: Jwk
  alg: Algorithm
}

/**
 * Parses and checks JWK JSON text. `source` names where it came from, for the message.
 * With `expect: 'private'` a public key is refused with ERR_KEY_NOT_PRIVATE.
 */
export async function parseJwk(text: string, source: string, expect: 'private' | 'public' | 'any' = 'any'): Promise<CheckedJwk> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} is not valid JSON (expected a JWK)`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} is not a JWK (expected a JSON object)`)
  }
  const jwk = value as Jwk
  if (Array.isArray((jwk as { keys?: unknown }).keys)) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} holds a JWK Set, not a single key`)
  }
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} is not an asymmetric signing key (kty must be RSA, EC or OKP)`)
  }
  const alg = algorithmForKey(jwk)
  if (!alg) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} has an unsupported or mismatched alg/curve for its key type`)
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} is not a signing key (use is '${String(jwk.use)}')`)
  }
  const isPrivate = isPrivateJwk(jwk)
  if (expect === 'private' && !isPrivate) {
    throw new PgAuthorizeError('ERR_KEY_NOT_PRIVATE', `${source} is a public key; signing needs the private key`)
  }
  if (expect === 'public' && isPrivate) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} holds private key material where a public key was expected`)
  }
  try {
    await importJWK(jwk as never, alg)
  } catch {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${source} is not a usable ${alg} key (its members do not form a valid key)`)
  }
  return { jwk, alg }
}

/** Reads and checks a JWK file. */
export async function readJwkFile(file: string, expect: 'private' | 'public' | 'any' = 'any'): Promise<CheckedJwk> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new PgAuthorizeError(
      code === 'ENOENT' ? 'ERR_KEY_NOT_FOUND' : 'ERR_KEY_INVALID',
      code === 'ENOENT' ? `key file ${file} does not exist` : `cannot read key file ${file} (${code ?? 'error'})`,
    )
  }
  return parseJwk(text, file, expect)
}
