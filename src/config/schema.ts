/**
 * The one configuration model of the gateway: every setting, its flag, its environment variable, its
 * type, default and meaning, in one table. The CLI flags, the environment, the configuration file,
 * `config print` and the README's reference table are all derived from it.
 *
 * @module
 */

export type SettingType = 'string' | 'url' | 'host' | 'port' | 'int' | 'bool' | 'level' | 'file'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface Setting {
  /** Key in the configuration file (camelCase). */
  key: string
  /** Command-line flag, without the dashes. */
  flag: string
  /** Environment variable. */
  env: string
  /** Further environment variables accepted, lower precedence (e.g. DATABASE_URL). */
  envAliases?: readonly string[]
  type: SettingType
  default: string | number | boolean | undefined
  /** Always present once loaded: `loadConfig` refuses a configuration without it. */
  required?: boolean
  /** Masked by `config print` and never logged. */
  secret?: boolean
  /** Bounds for numbers. */
  min?: number
  max?: number
  description: string
}

const env = (key: string) => 'PG_AUTHORIZE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()
const flag = (key: string) => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())

// Generic so each row keeps its literal key, type and default: GatewayConfig is computed from them.
function s<const K extends string, const T extends SettingType, const D extends Setting['default'], const E extends Partial<Setting> = {}>(
  key: K,
  type: T,
  def: D,
  description: string,
  extra: E = {} as E,
): Setting & { key: K; type: T; default: D } & E {
  return { key, flag: flag(key), env: env(key), type, default: def, description, ...extra }
}

/**
 * Every setting of `serve` (and `dev`, which fills in its own values). Adding one is adding a row: the
 * flag, the environment variable, the file key, `config print`, the reference table, `serve --help`
 * and the type of its value in {@link GatewayConfig} all follow from it.
 */
export const SETTINGS = [
  s('databaseUrl', 'url', undefined, "the database to serve: the gateway role's connection string (printed by setup; no owner rights) or the owner's", { secret: true, required: true, envAliases: ['DATABASE_URL'] }),
  s('databases', 'string', undefined, 'further databases on the same server to serve, comma-separated (default: only the owner URL\'s)'),
  s('host', 'host', '127.0.0.1', 'address the HTTP port binds'),
  s('port', 'port', 4444, 'HTTP port: POST /sql, WebSocket /v1 /v2, /health, /ready'),
  s('pgHost', 'host', undefined, 'address the wire port binds (default: host)'),
  s('pgPort', 'port', 5433, 'Postgres wire-protocol port'),
  s('pg', 'bool', true, 'listen for the Postgres wire protocol (--no-pg turns it off)'),
  s('allowAnonymous', 'bool', false, 'run requests without a token as the anonymous role'),
  s('tlsCert', 'file', undefined, 'PEM certificate for the wire port'),
  s('tlsKey', 'file', undefined, 'PEM private key for the wire port', { secret: true }),
  s('allowInsecurePassword', 'bool', false, 'accept JWTs without TLS from non-loopback clients'),
  s('poolSize', 'int', 10, 'connections per database and role', { min: 1, max: 10_000 }),
  s('poolTimeout', 'int', 5000, 'ms a request waits for a pooled connection before a clear error', { min: 1, max: 3_600_000 }),
  s('poolerUrl', 'url', undefined, 'postgresql://HOST:PORT of a transaction-mode PgBouncer for HTTP and Data API queries (wire and WebSocket stay direct)'),
  s('poolIdentityShare', 'int', 50, 'percent of a pool one identity (provider + sub) may hold at once; past it 429 (0: no caps)', { min: 0, max: 100 }),
  s('poolIdentityQueue', 'int', 10, 'requests one identity may have waiting beyond its share before 429', { min: 0, max: 100_000 }),
  s('wireMaxSessionsPerIdentity', 'int', 20, 'wire and WebSocket sessions one identity may have open (0: no limit)', { min: 0, max: 1_000_000 }),
  s('wireMaxSessions', 'int', 500, 'wire and WebSocket sessions in all (0: no limit)', { min: 0, max: 1_000_000 }),
  s('wireMaxStartupPerAddress', 'int', 20, 'connections from one address still logging in on the wire port (0: no limit)', { min: 0, max: 1_000_000 }),
  s('maxRequestBytes', 'int', 10 * 1024 * 1024, 'largest /sql request body (413 above)', { min: 1024, max: 1024 ** 3 }),
  s('maxResponseBytes', 'int', 10 * 1024 * 1024, 'largest /sql response body (507 above)', { min: 1024, max: 1024 ** 3 }),
  s('clockTolerance', 'int', 30, 'seconds of leeway for exp and nbf', { min: 0, max: 600 }),
  s('maxTokenLength', 'int', 8192, 'longest JWT accepted, bytes, checked before decoding', { min: 256, max: 1024 * 1024 }),
  s('jwksMaxAge', 'int', 600_000, 'ms after which JWKS keys are refreshed in the background when the JWKS response has no Cache-Control max-age or Expires', { min: 1000, max: 86_400_000 }),
  s('jwksCacheMin', 'int', 60_000, 'least ms a JWKS (or discovery) response is kept, whatever its cache headers say', { min: 1000, max: 86_400_000 }),
  s('jwksCacheMax', 'int', 86_400_000, 'most ms a JWKS (or discovery) response is kept, whatever its cache headers say', { min: 1000, max: 604_800_000 }),
  s('jwksCooldown', 'int', 30_000, 'least ms between two JWKS fetches caused by an unknown kid', { min: 0, max: 3_600_000 }),
  s('jwksTimeout', 'int', 5000, 'ms a JWKS fetch may take', { min: 100, max: 60_000 }),
  s('tokenCacheSize', 'int', 10_000, 'verified-token cache entries (0 turns it off)', { min: 0, max: 10_000_000 }),
  s('tokenCacheTtl', 'int', 60_000, 'most ms a verified token stays cached (never past its exp)', { min: 0, max: 86_400_000 }),
  s('rest', 'bool', false, 'serve the Data API (PostgREST-compatible REST) at /rest/v1 and /<database>/rest/v1'),
  s('restSchema', 'string', 'public', 'schemas the Data API exposes, comma-separated; the first is the default'),
  s('restMaxRows', 'int', 1000, 'the most rows one Data API read returns (0: no limit)', { min: 0, max: 100_000_000 }),
  s('console', 'bool', false, 'serve the web console at /console'),
  s('consoleToken', 'string', undefined, 'admin token for the console (default: a random one, printed at start)', { secret: true }),
  s('trustProxy', 'bool', false, 'believe X-Forwarded-Proto and X-Forwarded-For from the one proxy in front (console: Secure cookie, login limit)'),
  s('metricsPort', 'port', undefined, 'serve /metrics on this separate port (bound like host) instead of the HTTP port'),
  s('metricsToken', 'string', undefined, 'bearer token required for /metrics on the HTTP port', { secret: true }),
  s('logLevel', 'level', 'info', 'log level: fatal, error, warn, info, debug, trace or silent'),
  s('audit', 'bool', false, 'write an audit record for each verified identity to the log'),
  s('auditTable', 'bool', false, 'also write audit records to pgauthorize.audit_log'),
  s('auditRetentionDays', 'int', 30, 'days audit rows are kept in the table', { min: 1, max: 3650 }),
  s('shutdownTimeout', 'int', 10_000, 'ms in-flight requests get to finish on SIGTERM', { min: 0, max: 600_000 }),
  s('workers', 'string', '1', 'gateway processes sharing the ports, a number or auto (one per core); pool sizes and limits are divided among them'),
] as const satisfies readonly Setting[]

type AnySetting = (typeof SETTINGS)[number]

/** The type a setting's value has once loaded (`coerce` in load.ts checks exactly this). */
export type SettingValue<S extends Setting> =
  | { bool: boolean; int: number; port: number; level: (typeof LOG_LEVELS)[number]; string: string; url: string; host: string; file: string }[S['type']]
  | (S['default'] extends undefined ? (S extends { required: true } ? never : undefined) : never)

/** The resolved configuration: one field per row of {@link SETTINGS}, typed by its `type` and default. */
export type GatewayConfig = { [S in AnySetting as S['key']]: SettingValue<S> }

/** Where a value came from, for `config print`. */
export type Source = 'flag' | 'env' | 'file' | 'default'
