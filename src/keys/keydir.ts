/**
 * A key directory: the current signing key plus the public keys still published after rotation.
 *
 * Layout (all JSON):
 *
 * - `private.jwk.json` (mode 0600): the current private key, with `kid`, `alg`, `use: "sig"`.
 * - `public.jwk.json`: its public half, the file to hand to whoever verifies.
 * - `keyset.json`: `{ "version": 1, "keys": [{ kid, alg, state, created, retired?, jwk }] }`, every
 *   public key this directory has had, with state `current`, `previous` (still published) or
 *   `retired` (kept for the record, no longer published). The JWKS endpoint serves the current and
 *   previous keys from this file. A directory with only the two key files (e.g. copied by hand) reads
 *   as a key set of one.
 *
 * Every write goes to a temporary file in the same directory, then `rename`s over the target, so a
 * running `jwks serve` never reads half a file. Every input is read and checked before the first write,
 * so bad input changes nothing. Rotation writes `keyset.json` first: the new public key is published
 * before anything can sign with it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { ensureDir } from '../lib/fs.js'
import { isAlgorithm, type Algorithm } from './algorithms.js'
import { generateSigningKey, type GenerateOptions, type SigningKey } from './generate.js'
import { readJwkFile, parseJwk } from './jwk-file.js'
import { toPublicJwk, type Jwk } from './public.js'

export const PRIVATE_KEY_FILE = 'private.jwk.json'
export const PUBLIC_KEY_FILE = 'public.jwk.json'
export const KEYSET_FILE = 'keyset.json'

export type KeyState = 'current' | 'previous' | 'retired'

/** One key of a directory, as listed. */
export interface KeyInfo {
  kid: string
  alg: Algorithm
  state: KeyState
  /** ISO 8601 time the key was made current. */
  created: string
  /** ISO 8601 time the key was retired. */
  retired?: string
}

export interface KeySetEntry extends KeyInfo {
  /** The public JWK. */
  jwk: Jwk
}

/** A loaded, checked key directory. */
export interface KeyDir {
  dir: string
  /** The current signing key. */
  current: SigningKey
  /** Every key, current first, then previous and retired ones, newest first. */
  keys: KeySetEntry[]
}

/** A public JWK Set. */
export interface PublicJwks {
  keys: Jwk[]
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch {
    return false
  }
}

/** Writes a file atomically: temporary file in the same directory, then rename over the target. */
export async function writeFileAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n'

function orderEntries(entries: KeySetEntry[]): KeySetEntry[] {
  const rank = { current: 0, previous: 1, retired: 2 } as const
  return [...entries].sort((a, b) => rank[a.state] - rank[b.state] || b.created.localeCompare(a.created))
}

async function thumbprint(jwk: Jwk): Promise<string> {
  return calculateJwkThumbprint(toPublicJwk(jwk) as never, 'sha256')
}

async function readKeySetFile(file: string): Promise<KeySetEntry[]> {
  let value: unknown
  try {
    value = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${file} is not valid JSON`)
  }
  const keys = (value as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys)) throw new PgAuthorizeError('ERR_KEY_INVALID', `${file} has no "keys" array`)
  const entries: KeySetEntry[] = []
  for (const [i, raw] of keys.entries()) {
    const e = raw as Partial<KeySetEntry> | null
    const where = `${file} key #${i + 1}`
    if (
      !e || typeof e.kid !== 'string' || !isAlgorithm(e.alg) || typeof e.created !== 'string' ||
      (e.state !== 'current' && e.state !== 'previous' && e.state !== 'retired') ||
      e.jwk === null || typeof e.jwk !== 'object'
    ) {
      throw new PgAuthorizeError('ERR_KEY_INVALID', `${where} is missing kid, alg, state, created or jwk`)
    }
    const { jwk } = await parseJwk(JSON.stringify(e.jwk), where, 'public')
    if (jwk.kid !== e.kid) throw new PgAuthorizeError('ERR_KEY_INVALID', `${where}: the JWK's kid differs from the entry's`)
    entries.push({ kid: e.kid, alg: e.alg, state: e.state, created: e.created, ...(e.retired ? { retired: e.retired } : {}), jwk })
  }
  if (entries.filter((e) => e.state === 'current').length !== 1) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${file} must have exactly one current key`)
  }
  if (new Set(entries.map((e) => e.kid)).size !== entries.length) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${file} lists a kid twice`)
  }
  return orderEntries(entries)
}

/**
 * Reads and checks a key directory: the private key is a usable private key, the public key is its
 * public half, and the key set agrees about which key is current.
 */
export async function loadKeyDir(dir: string): Promise<KeyDir> {
  const privateFile = path.join(dir, PRIVATE_KEY_FILE)
  if (!(await exists(privateFile))) {
    throw new PgAuthorizeError('ERR_KEY_NOT_FOUND', `no signing key in ${dir} (missing ${PRIVATE_KEY_FILE})`, {
      hint: `run 'pg-authorize keys generate --dir ${dir}'`,
    })
  }
  const priv = await readJwkFile(privateFile, 'private')
  const kid = priv.jwk.kid
  if (typeof kid !== 'string' || kid === '') {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${privateFile} has no kid`)
  }
  const publicFile = path.join(dir, PUBLIC_KEY_FILE)
  const pub = (await exists(publicFile)) ? await readJwkFile(publicFile, 'public') : undefined
  const privThumb = await thumbprint(priv.jwk)
  if (pub && (pub.jwk.kid !== kid || (await thumbprint(pub.jwk)) !== privThumb)) {
    throw new PgAuthorizeError('ERR_KEY_INVALID', `${publicFile} is not the public half of ${privateFile}`)
  }
  const keysetFile = path.join(dir, KEYSET_FILE)
  let keys: KeySetEntry[]
  if (await exists(keysetFile)) {
    keys = await readKeySetFile(keysetFile)
    const current = keys[0]!
    if (current.kid !== kid || (await thumbprint(current.jwk)) !== privThumb) {
      throw new PgAuthorizeError('ERR_KEY_INVALID', `${keysetFile} names a different current key than ${privateFile}`)
    }
  } else {
    const created = (await stat(privateFile)).mtime.toISOString()
    keys = [{ kid, alg: priv.alg, state: 'current', created, jwk: { ...toPublicJwk(priv.jwk)!, kid, alg: priv.alg, use: 'sig' } }]
  }
  const publicJwk = { ...toPublicJwk(priv.jwk)!, kid, alg: priv.alg, use: 'sig' }
  return { dir, current: { kid, alg: priv.alg, privateJwk: priv.jwk, publicJwk }, keys }
}

async function writeAll(dir: string, key: SigningKey, keys: KeySetEntry[]): Promise<void> {
  await ensureDir(dir, 0o700)
  // keyset first: the new public key is published before the private key can sign anything.
  await writeFileAtomic(path.join(dir, KEYSET_FILE), json({ version: 1, keys: orderEntries(keys) }))
  await writeFileAtomic(path.join(dir, PUBLIC_KEY_FILE), json(key.publicJwk))
  await writeFileAtomic(path.join(dir, PRIVATE_KEY_FILE), json(key.privateJwk), 0o600)
}

const entryFor = (key: SigningKey, state: KeyState, created = new Date().toISOString()): KeySetEntry => ({
  kid: key.kid, alg: key.alg, state, created, jwk: key.publicJwk,
})

async function assertNoKeys(dir: string): Promise<void> {
  for (const name of [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, KEYSET_FILE]) {
    if (await exists(path.join(dir, name))) {
      throw new PgAuthorizeError('ERR_KEY_EXISTS', `${path.join(dir, name)} already exists`, {
        hint: 'use --force to replace it, or `keys rotate` to add a new key and keep the old one published',
      })
    }
  }
}

/**
 * Writes `key` as the only key of `dir` (creating it). Refuses (ERR_KEY_EXISTS) when the directory
 * already holds a key, unless `force`.
 */
export async function writeKeyDir(dir: string, key: SigningKey, options: { force?: boolean } = {}): Promise<void> {
  if (!options.force) await assertNoKeys(dir)
  await writeAll(dir, key, [entryFor(key, 'current')])
}

/** Generates a key and writes it to `dir`; see {@link writeKeyDir}. */
export async function generateKeyDir(dir: string, options: GenerateOptions & { force?: boolean } = {}): Promise<SigningKey> {
  // Check before the (slow) key generation; writeKeyDir checks again.
  if (!options.force) await assertNoKeys(dir)
  const key = await generateSigningKey(options)
  await writeKeyDir(dir, key, options)
  return key
}

/**
 * The key directory's current key, generating one first when the directory has none (for `dev`).
 *
 * @example
 * const { current } = await ensureKeys('.pg-authorize/keys')
 */
export async function ensureKeys(dir: string, options: GenerateOptions = {}): Promise<KeyDir> {
  if (!(await exists(path.join(dir, PRIVATE_KEY_FILE)))) await generateKeyDir(dir, options)
  return loadKeyDir(dir)
}

/**
 * Makes a new current signing key; the old current key becomes `previous` and stays published so
 * tokens it signed keep verifying until they expire. Retire it later with {@link retireKey}.
 */
export async function rotateKeys(dir: string, options: GenerateOptions = {}): Promise<KeyDir> {
  const loaded = await loadKeyDir(dir)
  const key = await generateSigningKey({ alg: options.alg ?? loaded.current.alg, kid: options.kid })
  if (loaded.keys.some((e) => e.kid === key.kid)) {
    throw new PgAuthorizeError('ERR_KEY_EXISTS', `a key with kid '${key.kid}' already exists in ${dir}`)
  }
  const keys = loaded.keys.map((e) => (e.state === 'current' ? { ...e, state: 'previous' as const } : e))
  await writeAll(dir, key, [entryFor(key, 'current'), ...keys])
  return loadKeyDir(dir)
}

/** Stops publishing one previous key. The current key cannot be retired (rotate first). */
export async function retireKey(dir: string, kid: string): Promise<KeyDir> {
  const loaded = await loadKeyDir(dir)
  const entry = loaded.keys.find((e) => e.kid === kid)
  if (!entry) throw new PgAuthorizeError('ERR_KEY_NOT_FOUND', `no key with kid '${kid}' in ${dir}`)
  if (entry.state === 'current') {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `key '${kid}' is the current signing key and cannot be retired`, {
      hint: 'run `keys rotate` first',
    })
  }
  if (entry.state === 'retired') return loaded
  const keys = loaded.keys.map((e) => (e.kid === kid ? { ...e, state: 'retired' as const, retired: new Date().toISOString() } : e))
  await ensureDir(dir, 0o700)
  await writeFileAtomic(path.join(dir, KEYSET_FILE), json({ version: 1, keys: orderEntries(keys) }))
  return loadKeyDir(dir)
}

/** Every key of the directory with its state. */
export async function listKeys(dir: string): Promise<KeyInfo[]> {
  const { keys } = await loadKeyDir(dir)
  return keys.map(({ jwk: _jwk, ...info }) => info)
}

/**
 * The public JWK Set a directory publishes: current and previous keys, current first. Reads only
 * the public files, so a verifier-side copy of a key directory needs no private key.
 */
export async function publishedJwks(dir: string): Promise<PublicJwks> {
  const keysetFile = path.join(dir, KEYSET_FILE)
  if (await exists(keysetFile)) {
    const keys = await readKeySetFile(keysetFile)
    return { keys: keys.filter((e) => e.state !== 'retired').map((e) => toPublicJwk(e.jwk)!) }
  }
  const publicFile = path.join(dir, PUBLIC_KEY_FILE)
  if (await exists(publicFile)) return { keys: [toPublicJwk((await readJwkFile(publicFile, 'public')).jwk)!] }
  const { current } = await loadKeyDir(dir)
  return { keys: [current.publicJwk] }
}
