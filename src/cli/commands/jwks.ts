/**
 * `pg-authorize jwks serve`: publish a key directory's public keys at /.well-known/jwks.json.
 * Rotated or retired keys are picked up without a restart. Stops on SIGINT/SIGTERM.
 *
 * @module
 */
import path from 'node:path'
import { PgAuthorizeError } from '../../errors.js'
import { serveJwks } from '../../jwks/serve.js'
import { runUntilSignal } from '../signals.js'
import { defineCommand, defineGroup } from '../define.js'

function int(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) > max) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--${name} must be a whole number from 0 to ${max}`)
  }
  return Number(value)
}

const serve = defineCommand({
  name: 'jwks serve',
  summary: 'serve the public keys of a key directory at /.well-known/jwks.json',
  description: 'Serves the public keys of DIR at http://HOST:PORT/.well-known/jwks.json. Rotated or retired keys are\npicked up without a restart. Stops on SIGINT/SIGTERM.',
  options: {
    dir: { type: 'string', value: 'DIR', help: 'key directory (default ./keys)' },
    port: { type: 'string', value: 'PORT', help: 'port (default 8787; 0 picks a free one)' },
    host: { type: 'string', value: 'HOST', help: 'address to bind (default 127.0.0.1)' },
    'max-age': { type: 'string', value: 'N', help: 'Cache-Control max-age in seconds (default 300)' },
  },
  async run({ values }, io) {
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
  },
})

export const jwks = defineGroup({ name: 'jwks', summary: 'serve the public keys as a JWKS endpoint', subcommands: [serve] })
