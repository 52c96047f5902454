/**
 * Signing keys: generate key pairs as JWK files, rotate and retire them in a key directory, and read
 * the public JWK Set a directory publishes.
 *
 * @module
 */
export { ALGORITHMS, isAlgorithm, keySuitsAlgorithm, algorithmForKey } from './algorithms.js'
export type { Algorithm } from './algorithms.js'
export { PRIVATE_MEMBERS, isPrivateJwk, toPublicJwk } from './public.js'
export type { Jwk } from './public.js'
export { generateSigningKey } from './generate.js'
export type { SigningKey, GenerateOptions } from './generate.js'
export { parseJwk, readJwkFile } from './jwk-file.js'
export type { CheckedJwk } from './jwk-file.js'
export {
  PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, KEYSET_FILE,
  loadKeyDir, writeKeyDir, generateKeyDir, ensureKeys, rotateKeys, retireKey, listKeys, publishedJwks, writeFileAtomic,
} from './keydir.js'
export type { KeyDir, KeyInfo, KeySetEntry, KeyState, PublicJwks } from './keydir.js'
