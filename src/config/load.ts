/**
 * Loads the configuration with one written-down precedence:
 *
 *   1. command-line flags;  2. environment variables `PG_AUTHORIZE_*`;
 *   3. a configuration file (`--config FILE`, else `pg-authorize.config.json` in the working directory);
 *   4. defaults.
 *
 * Every value is validated; a bad one fails with ERR_INVALID_CONFIG naming the key, where it came from
 * and why, without repeating secret values. The result is frozen.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { PgAuthorizeError } from '../errors.js'
import { maskUrl } from '../database/connect.js'
import { LOG_LEVELS, SETTINGS as TABLE, type GatewayConfig, type Setting, type Source } from './schema.js'

// The rows as plain Settings: this file works on any row; the literal types serve GatewayConfig.
const SETTINGS: readonly Setting[] = TABLE

export const CONFIG_FILE = 'pg-authorize.config.json'

export interface LoadInput {
  /** Flag values as parsed (`{ 'pool-size': '20', 'allow-anonymous': true }`), keyed by flag name. */
  flags?: Record<string, string | boolean | undefined>
  env?: NodeJS.ProcessEnv
  /** `--config FILE`; when absent, `pg-authorize.config.json` in `cwd` is read if it exists. */
  configFile?: string
  cwd?: string
  /** Values that replace defaults (e.g. `dev`'s own ports). Still below file, env and flags. */
  defaults?: Partial<GatewayConfig>
}

export interface LoadedConfig {
  config: Readonly<GatewayConfig>
  sources: Readonly<Record<keyof GatewayConfig, Source>>
  file: string | undefined
}

function invalid(setting: Setting, source: Source, reason: string, where: string): never {
  const name = source === 'flag' ? `--${setting.flag}` : source === 'env' ? where : source === 'file' ? `${setting.key} (in ${where})` : setting.key
  throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: ${name}: ${reason}`)
}

function coerce(setting: Setting, raw: unknown, source: Source, where: string): unknown {
  const show = setting.secret ? '' : ` (got ${JSON.stringify(raw)})`
  switch (setting.type) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw)) return true
      if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw)) return false
      return invalid(setting, source, `must be true or false${show}`, where)
    }
    case 'int':
    case 'port': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
      const min = setting.type === 'port' ? 0 : (setting.min ?? 0)
      const max = setting.type === 'port' ? 65535 : (setting.max ?? Number.MAX_SAFE_INTEGER)
      if (!Number.isInteger(n) || n < min || n > max) {
        return invalid(setting, source, `must be an integer from ${min} to ${max}${show}`, where)
      }
      return n
    }
    case 'level': {
      if (typeof raw === 'string' && (LOG_LEVELS as readonly string[]).includes(raw)) return raw
      return invalid(setting, source, `must be one of ${LOG_LEVELS.join(', ')}${show}`, where)
    }
    case 'url': {
      if (typeof raw !== 'string') return invalid(setting, source, 'must be a string', where)
      let u: URL
      try {
        u = new URL(raw)
      } catch {
        return invalid(setting, source, 'is not a valid URL', where)
      }
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
        return invalid(setting, source, 'must be a postgresql:// URL', where)
      }
      return raw
    }
    case 'host':
    case 'string':
    case 'file': {
      if (typeof raw !== 'string' || raw === '') return invalid(setting, source, `must be a non-empty string${show}`, where)
      if (setting.type === 'host' && /[\s/]/.test(raw)) return invalid(setting, source, `is not a host name or address${show}`, where)
      return raw
    }
  }
}

function readFile(file: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: cannot read ${file}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: ${file} is not valid JSON (${(err as Error).message})`)
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: ${file} must hold a JSON object`)
  }
  const known = new Set(SETTINGS.map((s) => s.key))
  for (const key of Object.keys(data)) {
    if (key === '$schema') continue
    if (!known.has(key)) throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: unknown key "${key}" in ${file}`)
  }
  return data as Record<string, unknown>
}

/** The configuration file in effect: `--config FILE`, `PG_AUTHORIZE_CONFIG`, else ./pg-authorize.config.json. */
function configFile(input: LoadInput): { file: string | undefined; data: Record<string, unknown> } {
  const env = input.env ?? {}
  const cwd = input.cwd ?? process.cwd()
  const explicit = input.configFile ?? env.PG_AUTHORIZE_CONFIG
  const file = explicit ? path.resolve(cwd, explicit) : existsSync(path.join(cwd, CONFIG_FILE)) ? path.join(cwd, CONFIG_FILE) : undefined
  return { file, data: file ? readFile(file) : {} }
}

/** One setting by the precedence: flag, environment, file, default. */
function resolve(setting: Setting, input: LoadInput, file: string | undefined, fileData: Record<string, unknown>): { value: unknown; source: Source } {
  const env = input.env ?? {}
  const flagValue = input.flags?.[setting.flag]
  const envName = [setting.env, ...(setting.envAliases ?? [])].find((n) => env[n] !== undefined && env[n] !== '')
  if (flagValue !== undefined) return { value: coerce(setting, flagValue, 'flag', setting.flag), source: 'flag' }
  if (envName) return { value: coerce(setting, env[envName], 'env', envName), source: 'env' }
  if (fileData[setting.key] !== undefined) return { value: coerce(setting, fileData[setting.key], 'file', file!), source: 'file' }
  return { value: input.defaults?.[setting.key as keyof GatewayConfig] ?? setting.default, source: 'default' }
}

/**
 * The owner connection string by the same precedence and sources as `serve`, for the commands that need
 * only it (setup, providers, as, matrix, lint). The rest of the file is still checked for unknown keys.
 */
export function loadDatabaseUrl(input: LoadInput = {}): { url: string; source: Source; file: string | undefined } {
  const { file, data } = configFile(input)
  const { value, source } = resolve(SETTINGS.find((s) => s.key === 'databaseUrl')!, input, file, data)
  if (!value) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'invalid configuration: databaseUrl is required (--database-url, PG_AUTHORIZE_DATABASE_URL, DATABASE_URL or databaseUrl in the configuration file)')
  }
  return { url: value as string, source, file }
}

/**
 * Some settings by the same precedence as `serve` (environment, file, default; `flags` as `serve`'s own
 * flag names), for commands that must agree with the gateway on them without needing all of it.
 */
export function loadSettings<K extends keyof GatewayConfig>(keys: readonly K[], input: LoadInput = {}): Pick<GatewayConfig, K> & { sources: Record<K, Source> } {
  const { file, data } = configFile(input)
  const out: Record<string, unknown> = {}
  const sources: Record<string, Source> = {}
  for (const key of keys) {
    const { value, source } = resolve(SETTINGS.find((s) => s.key === key)!, input, file, data)
    out[key] = value
    sources[key] = source
  }
  return { ...(out as Pick<GatewayConfig, K>), sources: sources as Record<K, Source> }
}

/** Resolves every setting by precedence; throws ERR_INVALID_CONFIG naming the bad key. */
export function loadConfig(input: LoadInput = {}): LoadedConfig {
  const { file, data: fileData } = configFile(input)
  const config: Record<string, unknown> = {}
  const sources: Record<string, Source> = {}
  for (const setting of SETTINGS) {
    const { value, source } = resolve(setting, input, file, fileData)
    config[setting.key] = value
    sources[setting.key] = source
  }
  for (const setting of SETTINGS) {
    if (setting.required && config[setting.key] === undefined) {
      const names = [`--${setting.flag}`, setting.env, ...(setting.envAliases ?? [])]
      throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid configuration: ${setting.key} is required (${names.slice(0, -1).join(', ')} or ${names.at(-1)})`)
    }
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'invalid configuration: tlsCert and tlsKey go together')
  }
  if (config.metricsPort !== undefined && config.metricsPort === config.port) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'invalid configuration: metricsPort must differ from port')
  }
  return {
    // Each value passed `coerce` for its setting's type, which is what GatewayConfig derives from the table.
    config: Object.freeze(config as GatewayConfig),
    sources: Object.freeze(sources as Record<keyof GatewayConfig, Source>),
    file,
  }
}

/** The configuration with secrets masked, for `config print` and logs. */
export function maskedConfig(config: GatewayConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const setting of SETTINGS) {
    const v = config[setting.key as keyof GatewayConfig]
    out[setting.key] = v === undefined ? null : setting.secret ? (setting.type === 'url' ? maskUrl(String(v)) : '****') : v
  }
  return out
}

/** Folds `--no-x` into `x: false`. */
export function flagValues(values: Record<string, unknown>): Record<string, string | boolean | undefined> {
  const out: Record<string, string | boolean | undefined> = {}
  for (const s of SETTINGS) {
    if (s.type === 'bool') {
      if (values[`no-${s.flag}`]) out[s.flag] = false
      else if (values[s.flag]) out[s.flag] = true
    } else if (typeof values[s.flag] === 'string') {
      out[s.flag] = values[s.flag] as string
    }
  }
  return out
}

/** The README's reference table, generated from the schema. */
export function referenceTable(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.default === undefined ? '' : `\`${s.default}\``
    return `| \`--${s.flag}\` | \`${s.env}\`${s.envAliases ? ' / ' + s.envAliases.map((a) => `\`${a}\``).join(' / ') : ''} | \`${s.key}\` | ${def} | ${s.description} |`
  })
  return ['| flag | environment | file key | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n')
}
