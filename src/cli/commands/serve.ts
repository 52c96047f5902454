/**
 * pg-authorize serve --database-url OWNER_URL [--port 4444] [--host 127.0.0.1] [--pg-port 5433] [--no-pg]
 *                    [--allow-anonymous] [--tls-cert FILE --tls-key FILE] [--allow-insecure-password]
 *                    [--pool-size 10] [--pool-timeout 5000]
 *
 * Runs the gateway: POST /sql (Neon's SQL over HTTP), the Postgres wire protocol with the JWT as password,
 * and the same over WebSocket at /v2. Ctrl-C (SIGINT) or SIGTERM stops it cleanly; SIGHUP reloads providers.
 */
import { readFileSync } from 'node:fs'
import type { Command } from '../command.js'
import { PgAuthorizeError } from '../../errors.js'
import { databaseUrl, int, parse } from '../options.js'
import { runUntilSignal } from '../signals.js'
import { startGateway, type Gateway } from '../../gateway/gateway.js'

const HELP = `Usage: pg-authorize serve [--database-url OWNER_URL] [options]

Options:
  --database-url URL         owner connection string of the database to serve (default: $DATABASE_URL)
  --port PORT                HTTP port: POST /sql and WebSocket /v2 (default 4444)
  --host HOST                address to bind (default 127.0.0.1)
  --pg-port PORT             Postgres wire-protocol port (default 5433)
  --pg-host HOST             address for the wire port (default: --host)
  --no-pg                    do not listen for the wire protocol
  --allow-anonymous          run requests without a token as the anonymous role
  --tls-cert FILE            PEM certificate for the wire port (with --tls-key)
  --tls-key FILE             PEM private key
  --allow-insecure-password  accept JWTs without TLS from non-loopback clients
  --pool-size N              connections per database and role (default 10)
  --pool-timeout MS          how long a request waits for a connection (default 5000)`

/** Reads TLS files, naming the flag on failure (never printing contents). */
export function readTls(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (!cert && !key) return undefined
  if (!cert || !key) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--tls-cert and --tls-key go together')
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file)
    } catch {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${flag}: cannot read ${file}`)
    }
  }
  return { cert: read(cert, '--tls-cert'), key: read(key, '--tls-key') }
}

/** Prints where a running gateway listens. */
export function describeGateway(gw: Gateway): string[] {
  const wsHost = gw.url.replace(/^http/, 'ws')
  return [
    `SQL over HTTP:   ${gw.url}/sql`,
    `WebSocket:       ${wsHost}/v2`,
    ...(gw.pgPort ? [`Postgres wire:   postgresql://authenticated@${gw.host.includes(':') ? `[${gw.host}]` : gw.host}:${gw.pgPort}/${gw.databases.defaultDatabase}  (the JWT is the password)`] : []),
  ]
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the gateway (SQL over HTTP, Postgres wire protocol, WebSocket)',
  async run(argv, io) {
    const { values } = parse(argv, {
      'database-url': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'pg-port': { type: 'string' },
      'pg-host': { type: 'string' },
      'no-pg': { type: 'boolean' },
      'allow-anonymous': { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'allow-insecure-password': { type: 'boolean' },
      'pool-size': { type: 'string' },
      'pool-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      io.stdout(HELP)
      return 0
    }
    const tls = readTls(values['tls-cert'], values['tls-key'])
    const gw = await startGateway({
      databaseUrl: databaseUrl(values['database-url'], io),
      port: int(values.port, '--port', 4444, 0, 65535),
      host: values.host ?? '127.0.0.1',
      pgPort: values['no-pg'] ? false : int(values['pg-port'], '--pg-port', 5433, 0, 65535),
      ...(values['pg-host'] ? { pgHost: values['pg-host'] } : {}),
      allowAnonymous: values['allow-anonymous'] ?? false,
      ...(tls ? { tls } : {}),
      allowInsecurePassword: values['allow-insecure-password'] ?? false,
      poolSize: int(values['pool-size'], '--pool-size', 10, 1, 10_000),
      poolTimeoutMs: int(values['pool-timeout'], '--pool-timeout', 5000, 1, 3_600_000),
    })
    io.stdout('pg-authorize gateway ready')
    for (const line of describeGateway(gw)) io.stdout(`  ${line}`)
    return runUntilSignal(() => gw.close(), {
      reload: () => gw.reload(),
      onSignal: (s) => io.stderr(`${s}: stopping`),
    })
  },
}
