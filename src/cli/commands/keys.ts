/**
 * `pg-authorize keys`: signing keys in a key directory (layout documented in src/keys/keydir.ts).
 *
 *   pg-authorize keys generate [--alg RS256|ES256|EdDSA] [--kid ID] [--dir ./keys] [--force]
 *   pg-authorize keys rotate   [--dir ./keys] [--alg ALG] [--kid ID]   new current key; old one stays published
 *   pg-authorize keys retire   [--dir ./keys] --kid ID                 stop publishing a previous key
 *   pg-authorize keys list     [--dir ./keys] [--json]                 kid, alg, state, created
 *
 * @module
 */
import path from 'node:path'
import { parse } from '../options.js'
import { PgAuthorizeError } from '../../errors.js'
import { ALGORITHMS, isAlgorithm, type Algorithm } from '../../keys/algorithms.js'
import { generateKeyDir, listKeys, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, retireKey, rotateKeys } from '../../keys/keydir.js'
import type { CliIO, Command } from '../command.js'

const HELP = `Usage:
  pg-authorize keys generate [--alg RS256|ES256|EdDSA] [--kid ID] [--dir DIR] [--force]
  pg-authorize keys rotate   [--dir DIR] [--alg ALG] [--kid ID]
  pg-authorize keys retire   [--dir DIR] --kid ID
  pg-authorize keys list     [--dir DIR] [--json]

Options:
  --dir DIR    key directory (default ./keys)
  --alg ALG    RS256 (default), ES256, EdDSA, or another of ${ALGORITHMS.join(', ')}
  --kid ID     key id (default: the RFC 7638 thumbprint; write --kid=ID when ID starts with -)
  --force      generate: replace an existing key
  --json       list: print JSON`

function alg(value: string | undefined): Algorithm | undefined {
  if (value === undefined) return undefined
  if (!isAlgorithm(value)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unsupported --alg '${value}'`, { hint: `use one of ${ALGORITHMS.join(', ')}` })
  }
  return value
}

async function run(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv
  const { values, positionals } = parse(
    rest,
    {
      alg: { type: 'string' },
      kid: { type: 'string' },
      dir: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  )
  if (values.help || sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    io.stdout(HELP)
    return sub === undefined ? 2 : 0
  }
  if (positionals.length) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unexpected argument '${positionals[0]}'`)
  const dir = path.resolve(io.cwd, values.dir ?? 'keys')
  switch (sub) {
    case 'generate': {
      const key = await generateKeyDir(dir, { alg: alg(values.alg), kid: values.kid, force: values.force })
      io.stdout(
        `Generated ${key.alg} key ${key.kid}\n` +
          `  private: ${path.join(dir, PRIVATE_KEY_FILE)} (mode 0600; keep it secret)\n` +
          `  public:  ${path.join(dir, PUBLIC_KEY_FILE)}`,
      )
      return 0
    }
    case 'rotate': {
      const { current, keys } = await rotateKeys(dir, { alg: alg(values.alg), kid: values.kid })
      const previous = keys.filter((k) => k.state === 'previous').map((k) => k.kid)
      io.stdout(`New current ${current.alg} key ${current.kid}; still published: ${previous.join(', ') || 'none'}`)
      return 0
    }
    case 'retire': {
      if (!values.kid) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'keys retire needs --kid ID')
      await retireKey(dir, values.kid)
      io.stdout(`Retired key ${values.kid}; it is no longer published`)
      return 0
    }
    case 'list': {
      const keys = await listKeys(dir)
      if (values.json) {
        io.stdout(JSON.stringify(keys, null, 2))
      } else {
        const w = Math.max(3, ...keys.map((k) => k.kid.length))
        io.stdout(
          [`${'KID'.padEnd(w)}  ALG    STATE     CREATED`, ...keys.map((k) => `${k.kid.padEnd(w)}  ${k.alg.padEnd(5)}  ${k.state.padEnd(8)}  ${k.created}`)].join('\n'),
        )
      }
      return 0
    }
    default:
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unknown keys command '${sub}'`, { hint: 'use generate, rotate, retire or list' })
  }
}

export const keys: Command = { name: 'keys', summary: 'generate, rotate, retire and list signing keys (JWK files)', help: HELP, subcommands: ['generate', 'rotate', 'retire', 'list'], run }
