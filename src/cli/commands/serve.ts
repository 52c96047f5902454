/**
 * `pg-authorize serve`: runs the gateway: POST /sql (Neon's SQL over HTTP), the Postgres wire protocol
 * with the JWT as password, and the same over WebSocket at /v2. Ctrl-C (SIGINT) or SIGTERM stops it
 * cleanly; SIGHUP reloads. Its flags are the rows of the settings table (src/config/schema.ts).
 *
 * @module
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { PgAuthorizeError } from '../../errors.js'
import { CONFIG_OPTION, listenFailure, settingOptions } from '../options.js'
import { defineCommand } from '../define.js'
import { flagValues, loadConfig, maskedConfig } from '../../config/load.js'
import { createLogger } from '../../observability/logger.js'
import type { GatewayConfig } from '../../config/schema.js'
import { runUntilSignal } from '../signals.js'
import { startGateway, type Gateway, type GatewayOptions } from '../../gateway/gateway.js'
import { resolveWorkers, runPrimary, runWorker, shareOfTotals, workerHooks, workerSlot } from '../../gateway/cluster.js'
import { newAdminToken } from '../../console/index.js'

/** Reads TLS files, naming the flag on failure (never printing contents). */
export function readTls(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (!cert && !key) return undefined
  if (!cert || !key) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--tls-cert and --tls-key go together')
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  const files = { cert: read(cert, '--tls-cert'), key: read(key, '--tls-key') }
  // Checked here, before anything listens: a bad PEM must stop the start with the flag named. OpenSSL's
  // reasons name the decoder step, never the file's contents.
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(files.key)
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--tls-key: ${key} is not a PEM private key (${(err as Error).message})`)
  }
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(files.cert)
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--tls-cert: ${cert} is not a PEM certificate (${(err as Error).message})`)
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--tls-key: ${key} is not the private key of the certificate in --tls-cert`)
  }
  return files
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

/** A comma-separated list of database names; refuses empty entries. */
function splitList(value: string, flag: string): string[] {
  const names = value.split(',').map((n) => n.trim())
  if (names.some((n) => n === '')) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${flag}: empty database name in the list`)
  return names
}

/** The gateway's options from the resolved configuration. */
export function gatewayOptions(config: GatewayConfig): GatewayOptions {
  const tls = readTls(config.tlsCert, config.tlsKey)
  return {
    databaseUrl: config.databaseUrl,
    port: config.port,
    host: config.host,
    pgPort: config.pg ? config.pgPort : false,
    ...(config.pgHost ? { pgHost: config.pgHost } : {}),
    allowAnonymous: config.allowAnonymous,
    ...(tls ? { tls } : {}),
    allowInsecurePassword: config.allowInsecurePassword,
    poolSize: config.poolSize,
    poolTimeoutMs: config.poolTimeout,
    ...(config.poolerUrl ? { poolerUrl: config.poolerUrl } : {}),
    fairShare: config.poolIdentityShare === 0 ? false : {
      perIdentity: Math.max(1, Math.floor((config.poolSize * config.poolIdentityShare) / 100)),
      queuePerIdentity: config.poolIdentityQueue,
    },
    wireLimits: {
      maxSessionsPerIdentity: config.wireMaxSessionsPerIdentity,
      maxSessions: config.wireMaxSessions,
      maxStartupPerAddress: config.wireMaxStartupPerAddress,
    },
    maxRequestBytes: config.maxRequestBytes,
    maxResponseBytes: config.maxResponseBytes,
    rest: config.rest ? { schemas: splitList(config.restSchema, '--rest-schema'), maxRows: config.restMaxRows === 0 ? null : config.restMaxRows } : false,
    console: config.console ? (config.consoleToken ? { adminToken: config.consoleToken } : {}) : false,
    trustProxy: config.trustProxy,
    metrics: {
      ...(config.metricsPort !== undefined ? { port: config.metricsPort } : {}),
      ...(config.metricsToken ? { token: config.metricsToken } : {}),
    },
    audit: config.audit ? { table: config.auditTable, retentionDays: config.auditRetentionDays } : false,
    shutdownTimeoutMs: config.shutdownTimeout,
    databases: {
      ...(config.databases ? { databases: splitList(config.databases, '--databases') } : {}),
      verifier: {
        clockToleranceSeconds: config.clockTolerance,
        maxTokenLength: config.maxTokenLength,
        jwksMaxAgeMs: config.jwksMaxAge,
        jwksCacheMinMs: config.jwksCacheMin,
        jwksCacheMaxMs: config.jwksCacheMax,
        jwksCooldownMs: config.jwksCooldown,
        jwksTimeoutMs: config.jwksTimeout,
        cache: config.tokenCacheSize > 0 && config.tokenCacheTtl > 0 ? { maxEntries: config.tokenCacheSize, maxTtlMs: config.tokenCacheTtl } : false,
      },
    },
  }
}

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'run the gateway (SQL over HTTP, Postgres wire protocol, WebSocket)',
  usage: '[--database-url OWNER_URL] [options]',
  description: `Runs the gateway: POST /sql (Neon's SQL over HTTP), the Postgres wire protocol with the JWT as password,
and the same over WebSocket at /v2. Ctrl-C (SIGINT) or SIGTERM stops it cleanly; SIGHUP reloads.`,
  // One flag per setting of src/config/schema.ts: a new setting is a new row there, not a line here.
  options: { ...settingOptions(), config: CONFIG_OPTION },
  notes: `Every setting also comes from an environment variable PG_AUTHORIZE_<NAME> or the configuration file;
precedence: flags, environment, file, defaults. 'pg-authorize config reference' lists them all;
'pg-authorize config print' shows the effective values.`,
  async run({ values }, io) {
    const load = () =>
      loadConfig({
        flags: flagValues(values),
        env: io.env,
        cwd: io.cwd,
        ...(typeof values.config === 'string' ? { configFile: values.config } : {}),
      })
    const loaded = load().config
    // JSON log lines go to standard output (for log pipelines); the human banner goes to standard error.
    const root = createLogger({ level: loaded.logLevel })
    const slot = workerSlot()
    // Each worker's lines say which one wrote them (and its pid, for signals and profiles).
    const logger = slot ? root.child({ worker: slot.index, pid: process.pid }) : root
    const workers = resolveWorkers(loaded.workers)
    if (!slot && workers > 1) {
      // The primary (gateway/cluster.ts): forks the workers, holds the signals, prints the banner.
      logger.info({ config: maskedConfig(loaded), workers }, 'starting')
      // One console token for all workers (each would otherwise make its own).
      const consoleToken = loaded.console && !loaded.consoleToken ? newAdminToken() : undefined
      return runPrimary({
        count: workers,
        logger,
        ...(consoleToken ? { env: { PG_AUTHORIZE_CONSOLE_TOKEN: consoleToken } } : {}),
        shutdownTimeoutMs: loaded.shutdownTimeout,
        onReady: (lines) => {
          io.stderr(`pg-authorize gateway ready (${workers} workers)`)
          for (const line of lines) io.stderr(`  ${line}`)
          if (consoleToken) io.stderr(`  Console admin token: ${consoleToken}`)
        },
      })
    }
    // A worker runs with its share of the totals (pools, limits, token cache).
    const config = slot ? shareOfTotals(loaded, slot.count) : loaded
    if (!slot) logger.info({ config: maskedConfig(config) }, 'starting')
    const gw = await startGateway({ ...gatewayOptions(config), logger, ...(slot ? { worker: workerHooks(slot) } : {}) }).catch((err: unknown) => {
      throw listenFailure(err, { '--port': config.port, '--pg-port': config.pg && config.pgPort, '--metrics-port': config.metricsPort })
    })
    // SIGHUP: re-read flags, environment and file; apply what can change without dropping connections.
    const reload = async () => {
      try {
        const next = load().config
        await gw.reload({
          logLevel: next.logLevel,
          audit: next.audit ? { table: next.auditTable, retentionDays: next.auditRetentionDays } : false,
        })
      } catch (err) {
        logger.error({ code: (err as { code?: string }).code ?? 'ERR_INTERNAL', reason: (err as Error).message }, 'reload failed; keeping the running configuration')
      }
    }
    const lines = describeGateway(gw)
    if (gw.metricsUrl) lines.push(`Metrics:         ${gw.metricsUrl}`)
    if (gw.console) lines.push(`Console:         ${gw.console.url}`)
    // A worker's signals and banner are the primary's (cluster.ts).
    if (slot) return runWorker(gw, lines, reload)
    // Signal handlers before the banner: a supervisor that reads it may signal at once, and a signal that
    // arrives before a handler exists kills the process without a clean stop.
    const stopped = runUntilSignal(() => gw.close(), {
      reload,
      onSignal: (s) => logger.info({ signal: s }, 'stopping'),
    })
    io.stderr('pg-authorize gateway ready')
    for (const line of lines) io.stderr(`  ${line}`)
    // Shown once, at start, and only when generated here (a configured token is not repeated).
    if (gw.console && !config.consoleToken) io.stderr(`  Console admin token: ${gw.console.adminToken}`)
    return stopped
  },
})
