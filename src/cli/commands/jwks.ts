/**
 * `pg-authorize jwks serve`: publish a key directory's public keys at /.well-known/jwks.json.
 * Rotated or retired keys are picked up without a restart. Stops on SIGINT/SIGTERM.
 *
 *   pg-authorize jwks serve [--dir ./keys] [--port 8787] [--host 127.0.0.1] [--max-age 300]
 *
 * @module
 */
import path from 'node:path'
import { parse } from '../options.js'
import { PgAuthorizeError } from '../../errors.js'
import { serveJwks } from '../../jwks/serve.js'
import { runUntilSignal } from '../signals.js'
import type { CliIO, Command } from '../command.js'

const HELP = `Usage: pg-authorize jwks serve [--dir DIR] [--port 8787] [--host 127.0.0.1] [--max-age 300]

Serves the public keys of DIR (default ./keys) at http://HOST:PORT/.well-known/jwks.json.
  --max-age N   Cache-Control max-age in seconds (default 300)
  --port 0      picks a free port`

function int(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) > max) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--${name} must be a whole number from 0 to ${max}`)
  }
  return Number(value)
}

async function run(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv
  const { values } = parse(rest, {
    dir: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'max-age': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help || sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(HELP)
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'serve') throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unknown jwks command '${sub}'`, { hint: 'use serve' })
  const server = await serveJwks({
    dir: path.resolve(io.cwd, values.dir ?? 'keys'),
    port: int(values.port, 'port', 8787, 65535),
    host: values.host ?? '127.0.0.1',
    maxAge: int(values['max-age'], 'max-age', 300, 31_536_000),
  })
  // The handlers before the line that says it is listening (see runUntilSignal's callers).
  const stopped = runUntilSignal(() => server.close())
  io.stdout(`JWKS: ${server.url}`)
  return stopped
}

export const jwks: Command = { name: 'jwks', summary: 'serve the public keys as a JWKS endpoint', help: HELP, subcommands: ['serve'], run }
