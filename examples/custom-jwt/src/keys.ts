/**
 * Signing keys, as the guide's `generate-keys.ts` makes them: an RS256 key pair exported as JWKs with
 * `kid`, `alg` and `use: "sig"`, written to `keys/privateKey.jwk.json` and `keys/publicKey.jwk.json`.
 *
 * Run `npx tsx src/keys.ts` once (from examples/custom-jwt). Or skip it and reuse the keys
 * `pg-authorize dev` made (`KEYS_DIR=../../.pg-authorize/keys`): its provider `local` already trusts them.
 *
 * @module
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportJWK, generateKeyPair, type JWK } from 'jose'

export interface KeyPair {
  privateJwk: JWK
  publicJwk: JWK
}

/** Generates a key pair and writes it to `dir` (the private key readable only by you). */
export async function generateKeys(dir: string, kid = 'my-key-id'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const privateJwk = { ...(await exportJWK(privateKey)), use: 'sig', kid, alg: 'RS256' }
  const publicJwk = { ...(await exportJWK(publicKey)), use: 'sig', kid, alg: 'RS256' }
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'privateKey.jwk.json'), JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600 })
  await writeFile(path.join(dir, 'publicKey.jwk.json'), JSON.stringify(publicJwk, null, 2) + '\n')
  return { privateJwk, publicJwk }
}

/**
 * Reads a key pair from `dir`: this example's files, or a `pg-authorize keys` folder
 * (`private.jwk.json` / `public.jwk.json`, e.g. `.pg-authorize/keys`).
 */
export async function loadKeys(dir: string): Promise<KeyPair> {
  const read = async (names: string[]) => {
    for (const name of names) {
      const text = await readFile(path.join(dir, name), 'utf8').catch(() => undefined)
      if (text !== undefined) return JSON.parse(text) as JWK
    }
    throw new Error(`no key in ${dir}: run \`npx tsx src/keys.ts\` or set KEYS_DIR`)
  }
  return {
    privateJwk: await read(['privateKey.jwk.json', 'private.jwk.json']),
    publicJwk: await read(['publicKey.jwk.json', 'public.jwk.json']),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? 'keys')
  const { publicJwk } = await generateKeys(dir)
  console.log(`wrote ${dir}/privateKey.jwk.json and publicKey.jwk.json (kid ${publicJwk.kid})`)
}
