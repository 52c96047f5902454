/**
 * Where `token sign` gets its private key: a JWK file, a key directory (its current key), or the
 * environment variable `PG_AUTHORIZE_PRIVATE_KEY` holding the JWK JSON (as the guide recommends).
 *
 * @module
 */
import { stat } from 'node:fs/promises'
import { PgAuthorizeError } from '../errors.js'
import { parseJwk, readJwkFile } from '../keys/jwk-file.js'
import { loadKeyDir } from '../keys/keydir.js'
import type { Jwk } from '../keys/public.js'

export const PRIVATE_KEY_ENV = 'PG_AUTHORIZE_PRIVATE_KEY'

/** Reads and checks the private signing key from `file` (a JWK file or key directory), else from `env`. */
export async function readSigningKey(file: string | undefined, env: Record<string, string | undefined> = {}): Promise<Jwk> {
  if (file !== undefined) {
    const isDir = await stat(file).then((s) => s.isDirectory(), () => false)
    if (isDir) return (await loadKeyDir(file)).current.privateJwk
    return (await readJwkFile(file, 'private')).jwk
  }
  const fromEnv = env[PRIVATE_KEY_ENV]
  if (fromEnv !== undefined && fromEnv.trim() !== '') return (await parseJwk(fromEnv, PRIVATE_KEY_ENV, 'private')).jwk
  throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `no signing key: pass --key FILE or set ${PRIVATE_KEY_ENV}`)
}
