/** Argument helpers shared by the CLI commands, and the options several of them take. */
import { isSystemError, PgAuthorizeError, systemError } from '../errors.js'
import { parseDatabaseUrl } from '../database/connect.js'
import type { CliIO } from './command.js'
import type { OptionSpec, Options } from './define.js'
import { loadDatabaseUrl } from '../config/load.js'
import { SETTINGS, type Setting } from '../config/schema.js'

export const CONFIG_OPTION = { type: 'string', value: 'FILE', help: 'configuration file (default ./pg-authorize.config.json if present)' } as const satisfies OptionSpec

/** The options every command that talks to a database takes. */
export const DATABASE_OPTIONS = {
  'database-url': {
    type: 'string',
    value: 'URL',
    help: 'owner connection string (default: $PG_AUTHORIZE_DATABASE_URL, $DATABASE_URL,\nthen databaseUrl in the configuration file)',
  },
  config: CONFIG_OPTION,
} as const satisfies Options

const PLACEHOLDER: Record<Setting['type'], string> = { string: 'VALUE', url: 'URL', host: 'HOST', port: 'PORT', int: 'N', bool: '', level: 'LEVEL', file: 'FILE' }

type SettingKey = (typeof SETTINGS)[number]['key']

/** The option of setting `K`: a boolean (with `--no-x`) for a bool setting, else a string. */
export type SettingOption<K extends SettingKey> =
  Extract<(typeof SETTINGS)[number], { key: K }>['type'] extends 'bool'
    ? { type: 'boolean'; negatable: true; help: string }
    : { type: 'string'; value: string; help: string }

/** A setting of the table as a flag, as `serve` parses it (booleans also as `--no-x`). */
export function settingOption<const K extends SettingKey>(key: K): SettingOption<K> {
  const s: Setting = SETTINGS.find((row) => row.key === key)!
  const def = s.type === 'bool' ? (s.default === true && !s.description.includes(`--no-${s.flag}`) ? ' (on by default)' : '') : s.default === undefined ? '' : ` (default ${s.default})`
  const option: OptionSpec =
    s.type === 'bool'
      ? { type: 'boolean', negatable: true, help: s.description + def }
      : { type: 'string', value: PLACEHOLDER[s.type], help: s.description + def }
  return option as SettingOption<K>
}

/** Every setting as a flag, in the table's order: `serve` and `config print` take them all. */
export function settingOptions(): Record<string, OptionSpec> {
  return Object.fromEntries(SETTINGS.map((s) => [s.flag, settingOption(s.key)]))
}

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
