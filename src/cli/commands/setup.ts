/**
 * `pg-authorize setup`: installs the auth schema, the restricted roles and their grants (idempotent),
 * then prints the two connection strings of the guide: the owner's and the `authenticated` one
 * applications use. Also `--rotate-secret` and `--uninstall`.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl, int } from '../options.js'
import { defineCommand } from '../define.js'
import { DEFAULT_ROTATE_GRACE_SECONDS, setup, uninstall } from '../../database/setup.js'
import { maskUrl } from '../../database/connect.js'
import { parseDuration } from '../../tokens/time.js'
import { loadSettings } from '../../config/load.js'
import { urlHost } from '../../lib/listen.js'

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

export const setupCommand = defineCommand({
  name: 'setup',
  summary: 'install the auth schema, roles and grants in a database',
  usage: ['[--database-url OWNER_URL] [options]', '--rotate-secret [--grace SECONDS] [--database-url OWNER_URL]', '--uninstall [--cascade] [--database-url OWNER_URL]'],
  description: `Installs pg-authorize in a database (idempotent): the auth schema, the roles authenticated and
anonymous (logging in with a secret password only the gateway reads), and Neon's grants.`,
  options: {
    ...DATABASE_OPTIONS,
    schema: {
      type: 'string',
      multiple: true,
      value: 'NAME',
      help: 'grant tables in this schema instead of public (repeatable; name public too\nto keep it: --schema app --schema public). Grants made by an earlier setup stay',
    },
    role: { type: 'string', multiple: true, value: 'NAME', help: 'also set up this custom restricted role (repeatable)' },
    'no-grants': { type: 'boolean', help: 'do not grant table privileges' },
    'statement-timeout': {
      type: 'string',
      value: 'D',
      help: 'statement_timeout of the restricted roles: 30s, 2m, 500ms, or 0 for none\n(default: keep the stored one; 30s on the first setup)',
    },
    'idle-in-transaction-timeout': { type: 'string', value: 'D', help: 'idle_in_transaction_session_timeout of the restricted roles (default: kept; 60s)' },
    'gateway-host': {
      type: 'string',
      value: 'HOST',
      help: "host shown in the authenticated connection string (default: serve's pgHost or\nhost when set and not a wildcard or loopback address, else localhost)",
    },
    'pg-port': {
      type: 'string',
      value: 'PORT',
      help: "the wire gateway's port, for that string (default: serve's pgPort:\n$PG_AUTHORIZE_PG_PORT, pgPort in the configuration file, else 5433)",
    },
    'http-port': {
      type: 'string',
      value: 'PORT',
      help: "the HTTP gateway's port, for the /sql endpoint shown (default: serve's port:\n$PG_AUTHORIZE_PORT, port in the configuration file, else 4444)",
    },
    'rotate-secret': {
      type: 'boolean',
      help: 'make a new sealing key; running gateways pick it up at once and reseal\nlive sessions; envelopes sealed with the old key work until --grace ends',
    },
    grace: {
      type: 'string',
      value: 'SECONDS',
      help: 'with --rotate-secret: how long the old key keeps working (default 30; 0 ends\nit at once, for a key you believe exposed)',
    },
    uninstall: { type: 'boolean', help: 'remove what setup installed (keeps your data)' },
    cascade: { type: 'boolean', help: 'with --uninstall: also drop policies that call auth functions' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  async run({ values }, io) {
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
})
