/**
 * pg-authorize setup [--database-url OWNER_URL] [--schema NAME]... [--role NAME]... [--no-grants]
 *                    [--statement-timeout 30s] [--idle-in-transaction-timeout 60s]
 *                    [--gateway-host HOST] [--pg-port 5433] [--http-port 4444] [--json]
 * pg-authorize setup --rotate-secret [--grace SECONDS] [--database-url OWNER_URL]
 * pg-authorize setup --uninstall [--cascade] [--database-url OWNER_URL]
 *
 * Installs the auth schema, the restricted roles and their grants (idempotent), then prints the two
 * connection strings of the guide: the owner's and the `authenticated` one applications use.
 */
import type { Command } from '../command.js'
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl, int, parse } from '../options.js'
import { DEFAULT_ROTATE_GRACE_SECONDS, setup, uninstall } from '../../database/setup.js'
import { maskUrl } from '../../database/connect.js'
import { parseDuration } from '../../tokens/time.js'
import { loadSettings } from '../../config/load.js'
import { urlHost } from '../../lib/listen.js'

const HELP = `Usage: pg-authorize setup [--database-url OWNER_URL] [options]

Installs pg-authorize in a database (idempotent): the auth schema, the roles authenticated and
anonymous (logging in with a secret password only the gateway reads), and Neon's grants.

Options:
  --database-url URL   owner connection string (default: $PG_AUTHORIZE_DATABASE_URL, $DATABASE_URL, then databaseUrl in the configuration file)
  --config FILE        configuration file (default ./pg-authorize.config.json if present)
  --schema NAME        grant tables in this schema instead of public (repeatable; name public too
                       to keep it: --schema app --schema public). Grants made by an earlier setup stay
  --role NAME          also set up this custom restricted role (repeatable)
  --no-grants          do not grant table privileges
  --statement-timeout D
                       statement_timeout of the restricted roles: 30s, 2m, 500ms, or 0 for none
                       (default: keep the stored one; 30s on the first setup)
  --idle-in-transaction-timeout D
                       idle_in_transaction_session_timeout of the restricted roles (default: kept; 60s)
  --gateway-host HOST  host shown in the authenticated connection string (default: serve's pgHost or
                       host when set and not a wildcard or loopback address, else localhost)
  --pg-port PORT       the wire gateway's port, for that string (default: serve's pgPort:
                       $PG_AUTHORIZE_PG_PORT, pgPort in the configuration file, else 5433)
  --http-port PORT     the HTTP gateway's port, for the /sql endpoint shown (default: serve's port:
                       $PG_AUTHORIZE_PORT, port in the configuration file, else 4444)
  --rotate-secret      make a new sealing key; running gateways pick it up at once and reseal
                       live sessions; envelopes sealed with the old key work until --grace ends
  --grace SECONDS      with --rotate-secret: how long the old key keeps working (default 30; 0 ends
                       it at once, for a key you believe exposed)
  --uninstall          remove what setup installed (keeps your data)
  --cascade            with --uninstall: also drop policies that call auth functions
  --json               print the result as JSON`

/** A duration flag as milliseconds: `0`/`off` for none, `500ms`, or what parseDuration takes (`30s`, `2m`). */
function timeout<K extends string>(key: K, value: string | undefined, flag: string): { [k in K]?: number } {
  if (value === undefined) return {}
  const v = value.trim().toLowerCase()
  let ms: number
  if (v === '0' || v === 'off' || v === 'none') ms = 0
  else if (/^\d+\s*ms$/.test(v)) ms = Number(v.replace(/\s*ms$/, ''))
  else ms = parseDuration(v, flag) * 1000
  return { [key]: ms } as { [k in K]?: number }
}

export const setupCommand: Command = {
  name: 'setup',
  summary: 'install the auth schema, roles and grants in a database',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {
      ...DATABASE_OPTIONS,
      schema: { type: 'string', multiple: true },
      role: { type: 'string', multiple: true },
      'no-grants': { type: 'boolean' },
      'statement-timeout': { type: 'string' },
      'idle-in-transaction-timeout': { type: 'string' },
      'gateway-host': { type: 'string' },
      'pg-port': { type: 'string' },
      'http-port': { type: 'string' },
      'rotate-secret': { type: 'boolean' },
      grace: { type: 'string' },
      uninstall: { type: 'boolean' },
      cascade: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      io.stdout(HELP)
      return 0
    }
    if (values.cascade && !values.uninstall) {
      // Without --uninstall, --cascade would silently run setup: the opposite of what was asked.
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--cascade goes with --uninstall', { hint: 'pg-authorize setup --uninstall --cascade' })
    }
    const url = databaseUrl(values, io)
    if (values.uninstall) {
      const r = await uninstall(url, { cascade: values.cascade ?? false, schemas: values.schema ?? [] })
      if (values.json) io.stdout(JSON.stringify(r, null, 2))
      else {
        io.stdout('pg-authorize was removed; your tables and data are untouched.')
        if (r.droppedPolicies.length) io.stdout(`dropped policies: ${r.droppedPolicies.join(', ')}`)
        if (r.droppedRoles.length) io.stdout(`dropped roles: ${r.droppedRoles.join(', ')}`)
        if (r.keptRoles.length) io.stdout(`kept roles still referenced by this database's objects (login disabled): ${r.keptRoles.join(', ')}`)
        for (const { role, databases } of r.sharedRoles) {
          io.stdout(`kept role ${role} unchanged: still used by database${databases.length === 1 ? '' : 's'} ${databases.join(', ')} on this server`)
        }
      }
      return 0
    }
    if (values.grace !== undefined && !values['rotate-secret']) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--grace goes with --rotate-secret')
    }
    const result = await setup(url, {
      schemas: values.schema ?? [],
      roles: values.role ?? [],
      grants: !values['no-grants'],
      ...(values['rotate-secret']
        ? { rotateSecret: true, rotateGraceSeconds: int(values.grace, '--grace', DEFAULT_ROTATE_GRACE_SECONDS, 0, 86_400) }
        : {}),
      ...timeout('statementTimeoutMs', values['statement-timeout'], '--statement-timeout'),
      ...timeout('idleInTransactionTimeoutMs', values['idle-in-transaction-timeout'], '--idle-in-transaction-timeout'),
    })
    // The strings must name what `serve` listens on: its flags here, else serve's environment, file, defaults.
    const gw = loadSettings(['host', 'pgHost', 'port', 'pgPort'], {
      env: io.env,
      cwd: io.cwd,
      ...(values.config !== undefined ? { configFile: values.config } : {}),
    })
    const bound = gw.pgHost ?? (gw.sources.host === 'default' ? undefined : gw.host)
    // A wildcard or loopback bind address is no host to give applications; localhost stands for it.
    const host = values['gateway-host'] ?? (bound && !/^(0\.0\.0\.0|::|\[::\]|127\.0\.0\.1|::1)$/.test(bound) ? urlHost(bound) : 'localhost')
    const pgPort = int(values['pg-port'], '--pg-port', gw.pgPort, 1, 65535)
    const httpPort = int(values['http-port'], '--http-port', gw.port, 1, 65535)
    const db = encodeURIComponent(result.database)
    const strings = {
      owner: maskUrl(url),
      ...(result.gateway ? { gateway: result.gateway.url } : {}),
      authenticated: `postgresql://authenticated@${host}:${pgPort}/${db}`,
      sqlEndpoint: `http://${host}:${httpPort}/sql`,
    }
    if (values.json) {
      io.stdout(JSON.stringify({ ...result, connectionStrings: strings }, null, 2))
      return 0
    }
    const changed = result.applied.length || result.rolesCreated.length || result.passwordsSet.length || values['rotate-secret']
    io.stdout(
      changed
        ? `pg-authorize is set up in database "${result.database}" (schema version ${result.version}).`
        : `pg-authorize is up to date in database "${result.database}" (schema version ${result.version}); nothing changed.`,
    )
    for (const m of result.applied) io.stdout(`  applied migration ${m}`)
    if (values['rotate-secret']) io.stdout(`  rotated the sealing key: generation ${result.keyGeneration} is current`)
    for (const r of result.rolesCreated) io.stdout(`  created role ${r}`)
    for (const r of result.passwordsSet.filter((r) => !result.rolesCreated.includes(r))) {
      io.stdout(`  set a new login password for existing role ${r} (gateways of other databases on this server must re-run setup)`)
    }
    io.stdout(`  restricted roles: ${result.roles.join(', ')}`)
    if (result.limits) {
      const show = (ms: number) => (ms === 0 ? 'none' : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`)
      io.stdout(`  time limits: statement_timeout ${show(result.limits.statementTimeoutMs)}, idle_in_transaction_session_timeout ${show(result.limits.idleInTransactionTimeoutMs)}`)
    }
    io.stdout('')
    io.stdout('Connection strings:')
    io.stdout(`  owner (migrations, full rights):      ${strings.owner}`)
    if (strings.gateway) {
      io.stdout(`  gateway (serve and createAuthorizer; no owner rights):`)
      io.stdout(`                                        ${strings.gateway}`)
      io.stdout(`    its password, as the owner: select password from pgauthorize.gateway_credentials`)
    }
    io.stdout(`  authenticated (your app, through the gateway, the JWT is the credential):`)
    io.stdout(`                                        ${strings.authenticated}`)
    io.stdout(`  SQL over HTTP (@neondatabase/serverless: neonConfig.fetchEndpoint): ${strings.sqlEndpoint}`)
    return 0
  },
}
