/**
 * `pg-authorize dev`: the whole stack locally, offline, in one command (also `npm start`). Ctrl-C stops
 * everything; a second run reuses the data. A second `dev` on the same folder is refused
 * (ERR_ALREADY_RUNNING, exit 1).
 *
 * @module
 */
import { int, listenFailure, settingOption } from '../options.js'
import { defineCommand } from '../define.js'
import { runUntilSignal } from '../signals.js'
import { startDev } from '../../dev/dev.js'

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export const devCommand = defineCommand({
  name: 'dev',
  summary: 'run everything locally on an embedded Postgres, with the guide\'s demo',
  description: `Runs the whole journey locally: an embedded Postgres, signing keys and their JWKS, setup, the guide's
demo (two tenants, two users, crudPolicy policies) and the gateway, then prints tokens and snippets.
One dev per state folder: a second is refused. If dev dies, even by SIGKILL, its Postgres stops with
it; an orphaned Postgres or a stale postmaster.pid left in the folder is cleared on the next start.`,
  options: {
    dir: { type: 'string', value: 'DIR', help: 'state folder (default .pg-authorize)' },
    // The gateway's own settings, as serve takes them (src/config/schema.ts).
    port: settingOption('port'),
    'pg-port': settingOption('pgPort'),
    'jwks-port': { type: 'string', value: 'PORT', help: 'JWKS server port (default 8787)' },
    'postgres-port': { type: 'string', value: 'PORT', help: 'embedded Postgres port (default 55432)' },
    database: { type: 'string', value: 'NAME', help: 'database to create and serve (default neondb)' },
    'no-demo': { type: 'boolean', help: 'do not load the demo schema' },
    'allow-anonymous': settingOption('allowAnonymous'),
    'no-console': { type: 'boolean', help: 'do not serve the web console (on by default in dev)' },
  },
  async run({ values }, io) {
    const started = Date.now()
    const ports = {
      '--port': int(values.port, '--port', 4444, 0, 65535),
      '--pg-port': int(values['pg-port'], '--pg-port', 5433, 0, 65535),
      '--jwks-port': int(values['jwks-port'], '--jwks-port', 8787, 0, 65535),
      '--postgres-port': int(values['postgres-port'], '--postgres-port', 55432, 1, 65535),
    }
    const stack = await startDev({
      dir: values.dir ?? `${io.cwd}/.pg-authorize`,
      port: ports['--port'],
      pgPort: ports['--pg-port'],
      jwksPort: ports['--jwks-port'],
      postgresPort: ports['--postgres-port'],
      ...(values.database ? { database: values.database } : {}),
      demo: !values['no-demo'],
      allowAnonymous: values['allow-anonymous'] ?? false,
      ...(values['no-console'] ? { console: false as const } : {}),
      log: (line) => io.stdout(line),
    }).catch((err: unknown) => {
      throw listenFailure(err, ports)
    })
    // Signal handlers first: whoever reads the banner may send SIGINT at once, and a signal that arrives
    // before a handler exists kills the process with Postgres still running.
    const stopped = runUntilSignal(() => stack.close(), {
      reload: () => stack.gateway.reload(),
      onSignal: (s) => io.stderr(`${s}: stopping`),
    })
    const out = (s = '') => io.stdout(s)
    out('')
    out(`pg-authorize dev is ready (${((Date.now() - started) / 1000).toFixed(1)} s). Ctrl-C stops everything.`)
    out('')
    out(`  owner URL (migrations, full rights): ${stack.ownerUrl}`)
    out(`  authenticated URL (your app):        ${stack.authenticatedUrl}`)
    out(`  SQL over HTTP endpoint:              ${stack.sqlEndpoint}`)
    out(`  WebSocket endpoint:                  ${stack.webSocketUrl}`)
    out(`  JWKS URL (provider "local"):         ${stack.jwksUrl}`)
    if (stack.gateway.console) {
      out(`  Console:                             ${stack.gateway.console.url}`)
      out(`  Console admin token:                 ${stack.gateway.console.adminToken}`)
    }
    if (stack.tokens.length) {
      out('')
      out('Tokens for the demo users (valid 24 h):')
      for (const t of stack.tokens) {
        out(`  ${t.user} (sub ${t.sub}, tenant ${t.tenantId}):`)
        out(`    ${t.token}`)
      }
      const first = stack.tokens[0]!
      out('')
      // @neondatabase/serverless is a devDependency of pg-authorize: the snippet resolves it from here.
      out(`Query as ${first.user} with @neondatabase/serverless (a 4-line script; run it in the pg-authorize`)
      out(`folder, or anywhere @neondatabase/serverless is installed):`)
      out('')
      out(`TOKEN=${shellQuote(first.token)} node --input-type=module -e ${shellQuote(stack.snippet)}`)
      out('')
      out(`Or with psql (the JWT is the password):`)
      out(`  PGPASSWORD=${shellQuote(first.token)} psql ${shellQuote(stack.authenticatedUrl)} -c 'select * from users'`)
    }
    return stopped
  },
})
