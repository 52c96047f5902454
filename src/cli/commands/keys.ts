/**
 * `pg-authorize keys generate | rotate | retire | list`: signing keys in a key directory (layout
 * documented in src/keys/keydir.ts).
 *
 * @module
 */
import path from 'node:path'
import { PgAuthorizeError } from '../../errors.js'
import { ALGORITHMS, isAlgorithm, type Algorithm } from '../../keys/algorithms.js'
import { generateKeyDir, listKeys, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, retireKey, rotateKeys } from '../../keys/keydir.js'
import { defineCommand, defineGroup } from '../define.js'

const DIR = { type: 'string', value: 'DIR', help: 'key directory (default ./keys)' } as const
const ALG = { type: 'string', value: 'ALG', help: `RS256 (default), ES256, EdDSA, or another of ${ALGORITHMS.join(', ')}` } as const
const KID = { type: 'string', value: 'ID', help: 'key id (default: the RFC 7638 thumbprint; write --kid=ID when ID starts with -)' } as const

function alg(value: string | undefined): Algorithm | undefined {
  if (value === undefined) return undefined
  if (!isAlgorithm(value)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unsupported --alg '${value}'`, { hint: `use one of ${ALGORITHMS.join(', ')}` })
  }
  return value
}

const generate = defineCommand({
  name: 'keys generate',
  summary: 'make a signing key pair in the key directory',
  options: { alg: ALG, kid: KID, dir: DIR, force: { type: 'boolean', help: 'replace an existing key' } },
  async run({ values }, io) {
    const dir = path.resolve(io.cwd, values.dir ?? 'keys')
    const key = await generateKeyDir(dir, { alg: alg(values.alg), kid: values.kid, force: values.force })
    io.stdout(
      `Generated ${key.alg} key ${key.kid}\n` +
        `  private: ${path.join(dir, PRIVATE_KEY_FILE)} (mode 0600; keep it secret)\n` +
        `  public:  ${path.join(dir, PUBLIC_KEY_FILE)}`,
    )
    return 0
  },
})

const rotate = defineCommand({
  name: 'keys rotate',
  summary: 'make a new current key; the old one stays published',
  options: { dir: DIR, alg: ALG, kid: KID },
  async run({ values }, io) {
    const dir = path.resolve(io.cwd, values.dir ?? 'keys')
    const { current, keys } = await rotateKeys(dir, { alg: alg(values.alg), kid: values.kid })
    const previous = keys.filter((k) => k.state === 'previous').map((k) => k.kid)
    io.stdout(`New current ${current.alg} key ${current.kid}; still published: ${previous.join(', ') || 'none'}`)
    return 0
  },
})

const retire = defineCommand({
  name: 'keys retire',
  summary: 'stop publishing a previous key',
  usage: '--kid ID [options]',
  options: { dir: DIR, kid: { ...KID, help: 'the key to retire (write --kid=ID when ID starts with -)' } },
  async run({ values }, io) {
    const dir = path.resolve(io.cwd, values.dir ?? 'keys')
    if (!values.kid) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'keys retire needs --kid ID')
    await retireKey(dir, values.kid)
    io.stdout(`Retired key ${values.kid}; it is no longer published`)
    return 0
  },
})

const list = defineCommand({
  name: 'keys list',
  summary: 'kid, alg, state and creation time of every key',
  options: { dir: DIR, json: { type: 'boolean', help: 'print JSON' } },
  async run({ values }, io) {
    const keys = await listKeys(path.resolve(io.cwd, values.dir ?? 'keys'))
    if (values.json) {
      io.stdout(JSON.stringify(keys, null, 2))
    } else {
      const w = Math.max(3, ...keys.map((k) => k.kid.length))
      io.stdout(
        [`${'KID'.padEnd(w)}  ALG    STATE     CREATED`, ...keys.map((k) => `${k.kid.padEnd(w)}  ${k.alg.padEnd(5)}  ${k.state.padEnd(8)}  ${k.created}`)].join('\n'),
      )
    }
    return 0
  },
})

export const keys = defineGroup({
  name: 'keys',
  summary: 'generate, rotate, retire and list signing keys (JWK files)',
  subcommands: [generate, rotate, retire, list],
})
