/** Argument helpers shared by the CLI commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { isSystemError, PgAuthorizeError, systemError } from '../errors.js'
import { parseDatabaseUrl } from '../database/connect.js'
import type { CliIO } from './command.js'
import { loadDatabaseUrl } from '../config/load.js'

/** The options every command that talks to a database takes. */
export const DATABASE_OPTIONS = {
  'database-url': { type: 'string' },
  config: { type: 'string' },
} as const

/**
 * The owner connection string, from the one configuration `serve` reads, with its precedence:
 * `--database-url`, then `PG_AUTHORIZE_DATABASE_URL` / `DATABASE_URL`, then `databaseUrl` in the
 * configuration file (`--config FILE`, `PG_AUTHORIZE_CONFIG`, or ./pg-authorize.config.json). Validated,
 * never echoed.
 */
export function databaseUrl(values: { 'database-url'?: string | undefined; config?: string | undefined }, io: CliIO): string {
  const { url } = loadDatabaseUrl({
    flags: { 'database-url': values['database-url'] },
    env: io.env,
    cwd: io.cwd,
    ...(values.config !== undefined ? { configFile: values.config } : {}),
  })
  parseDatabaseUrl(url)
  return url
}

/** parseArgs with strict checking and the errors mapped to ERR_INVALID_ARGUMENT. */
export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ options: O; allowPositionals: boolean; strict: true }>> {
  // parseArgs calls `--pool-size -3` ambiguous (the value looks like an option); a negative number is
  // a value, so it is passed as `--pool-size=-3` and the flag's own check says what is wrong with it.
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const next = argv[i + 1]
    if (a.startsWith('--') && options[a.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${a}=${next}`)
      i++
    } else {
      args.push(a)
    }
  }
  try {
    return parseArgs({ args, options, allowPositionals, strict: true })
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', (err as Error).message)
  }
}

/** Splits a comma-separated flag value (`--algorithms RS256,ES256`). */
export function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  return value.split(',').map((s) => s.trim()).filter(Boolean)
}

/** A positive integer flag (ports, sizes), naming the flag when it is not one. */
export function int(value: string | undefined, flag: string, fallback: number, min = 0, max = 2 ** 31): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${flag} must be an integer between ${min} and ${max}`)
  }
  return n
}

/**
 * A listener that could not start, as the user can act on it: the port, what is wrong with it and the
 * flag that chose it (`port 4444 is already in use (--port)`). Other errors pass through unchanged.
 */
export function listenFailure(err: unknown, ports: Record<string, number | false | undefined>): unknown {
  if (!isSystemError(err) || err.syscall !== 'listen') return err
  const { port, address } = err as { port?: number; address?: string }
  const flag = Object.entries(ports).find(([, p]) => p !== false && p !== undefined && p === port)?.[0]
  const what =
    err.code === 'EADDRINUSE'
      ? 'is already in use'
      : err.code === 'EACCES'
        ? 'needs privileges this process lacks (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
        : err.code === 'EADDRNOTAVAIL'
          ? `cannot be bound: ${address ?? 'the address'} is not an address of this machine`
          : `cannot be bound (${err.code})`
  return systemError(err, `port ${port ?? '?'} ${what}${flag ? ` (${flag})` : ''}`)
}
