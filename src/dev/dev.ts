/**
 * `pg-authorize dev`: the whole journey of the guide, locally, offline, in one command.
 *
 * 1. an embedded Postgres 17 (from npm), data under `.pg-authorize/postgres/`;
 * 2. signing keys in `.pg-authorize/keys/` (generated on the first run) and a JWKS server for them;
 * 3. `setup`, and that JWKS registered as the provider `local`;
 * 4. the guide's demo (tenants and users with crudPolicy policies), unless `demo: false`;
 * 5. the gateway: SQL over HTTP, the wire protocol and WebSocket;
 * 6. a ready token for each demo user.
 *
 * A second run reuses the data, the keys, the ports and the console admin token.
 *
 * After a crash: a `dev` still running on the folder is refused (`dev.lock`, see lock.ts); an orphaned
 * Postgres left by a dead one is stopped and a stale `postmaster.pid` removed (postmaster-lock.ts). A
 * watchdog stops this run's Postgres if this process dies, even by SIGKILL (embedded.ts).
 *
 * @module
 */
import { chmod, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../database/embedded.js'
import { clearPostmasterLock } from '../database/postmaster-lock.js'
import { ensureDir } from '../lib/fs.js'
import { newAdminToken } from '../console/index.js'
import { acquireDevLock } from './lock.js'
import { gatewayUrl, setup } from '../database/setup.js'
import { addProvider, withOwner } from '../database/providers.js'
import { ensureKeys } from '../keys/keydir.js'
import { serveJwks, type JwksServer } from '../jwks/serve.js'
import { signToken } from '../tokens/sign.js'
import { startGateway, type Gateway } from '../gateway/gateway.js'
import { DEMO_USERS, demoClaims, loadDemo } from './demo.js'

export interface DevOptions {
  /** State folder. Default `.pg-authorize` in the current directory. */
  dir?: string
  /** Embedded Postgres port (loopback). Default 55432, so the owner URL is the same on every run. */
  postgresPort?: number
  /** Gateway HTTP port. Default 4444. */
  port?: number
  /** Gateway wire port. Default 5433. */
  pgPort?: number
  /** JWKS server port. Default 8787. */
  jwksPort?: number
  /** Address every listener binds. Default 127.0.0.1. */
  host?: string
  /** Load the guide's demo. Default true. */
  demo?: boolean
  /** Database to create and serve. Default `neondb`, as on Neon. */
  database?: string
  /** Lifetime of the printed demo tokens. Default `24h`. */
  tokenLifetime?: string
  /** Extra gateway settings. */
  allowAnonymous?: boolean
  /** The web console at /console: on by default in dev; `false` turns it off. */
  console?: { adminToken?: string } | false
  /** The Data API at /rest/v1: on by default in dev; `false` turns it off. */
  rest?: { schemas?: string[]; maxRows?: number | null } | false
  log?: (line: string) => void
}

export interface DevToken {
  user: string
  sub: string
  tenantId: string
  token: string
}

export interface DevStack {
  ownerUrl: string
  /** The `authenticated` connection string (wire gateway; the JWT is the password). */
  authenticatedUrl: string
  sqlEndpoint: string
  webSocketUrl: string
  jwksUrl: string
  tokens: DevToken[]
  gateway: Gateway
  postgres: EmbeddedPostgresHandle
  jwks: JwksServer
  /** A copy-paste snippet using @neondatabase/serverless that returns rows. */
  snippet: string
  /** The Data API's URL (`.../rest/v1`), when it is on. */
  restUrl: string | undefined
  /** A copy-paste snippet using @supabase/postgrest-js that returns Alice's row, when the Data API is on. */
  restSnippet: string | undefined
  /** Stops everything: gateway, JWKS server, Postgres. */
  close(): Promise<void>
}

const ident = (s: string) => pg.escapeIdentifier(s)

/**
 * The console admin token, kept in `console-admin-token` (0600) so a restart of `dev` does not log the
 * browser out. Printed only in the banner, as before.
 */
async function consoleToken(dir: string): Promise<string> {
  const file = path.join(dir, 'console-admin-token')
  const kept = await readFile(file, 'utf8').then((s) => s.trim(), () => '')
  if (kept.length >= 16) return kept
  const token = newAdminToken()
  await writeFile(file, token + '\n', { mode: 0o600 })
  await chmod(file, 0o600)
  return token
}

/** Starts the stack; see the module comment. */
export async function startDev(options: DevOptions = {}): Promise<DevStack> {
  const dir = path.resolve(options.dir ?? '.pg-authorize')
  const host = options.host ?? '127.0.0.1'
  const database = options.database ?? 'neondb'
  const log = options.log ?? (() => {})
  const stops: Array<() => Promise<void>> = []
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    stops.length = 0
  }
  const dataDir = path.join(dir, 'postgres', 'data')
  await ensureDir(dir)
  const lock = await acquireDevLock(dir, {
    gateway: options.port ?? 4444,
    wire: options.pgPort ?? 5433,
    jwks: options.jwksPort ?? 8787,
    postgres: options.postgresPort ?? 55432,
  })
  stops.push(() => lock.release())
  try {
    // No other dev holds the folder now: a live postmaster in it is an orphan of a dead one.
    const cleared = await clearPostmasterLock(dataDir)
    if (cleared.action !== 'none') log(cleared.message)
    const postgres = await startEmbeddedPostgres({
      dataDir,
      port: options.postgresPort ?? 55432,
      watchdog: true,
    })
    stops.push(() => postgres.stop())
    // fsync=off (see embedded.ts): fast, and fine for a development copy, but a crash of the machine can lose it.
    log(`Postgres 17 running on 127.0.0.1:${postgres.port} (data in ${path.join(dir, 'postgres')}; fsync=off: for development only)`)

    const exists = await withOwner(postgres.url, (c) => c.query('select 1 from pg_database where datname = $1', [database]))
    if (exists.rows.length === 0) await withOwner(postgres.url, (c) => c.query(`create database ${ident(database)}`))
    const ownerUrl = postgres.urlFor(database)

    const keys = await ensureKeys(path.join(dir, 'keys'))
    const jwks = await serveJwks({ dir: keys.dir, port: options.jwksPort ?? 8787, host })
    stops.push(() => jwks.close())

    const result = await setup(ownerUrl)
    if (result.applied.length) log(`set up pg-authorize in ${database}`)
    await withOwner(ownerUrl, (c) =>
      addProvider(c, { name: 'local', jwksUrl: jwks.url, roles: ['authenticated', 'anonymous'] }, { replace: true }),
    )
    if (options.demo !== false) await loadDemo(ownerUrl)

    // The gateway runs as the least-privilege gateway role (issue 19); only the console gets the owner's URL.
    const gateway = await startGateway({
      databaseUrl: await gatewayUrl(ownerUrl),
      ownerUrl,
      port: options.port ?? 4444,
      pgPort: options.pgPort ?? 5433,
      host,
      allowAnonymous: options.allowAnonymous ?? false,
      console: options.console === false ? false : { adminToken: options.console?.adminToken ?? (await consoleToken(dir)) },
      rest: options.rest === false ? false : { ...options.rest },
    })
    stops.push(() => gateway.close())
    await lock.update({ gateway: gateway.port, wire: gateway.pgPort ?? 0, jwks: Number(new URL(jwks.url).port), postgres: postgres.port })

    const tokens: DevToken[] = []
    if (options.demo !== false) {
      for (const user of DEMO_USERS) {
        const { sub, ...claims } = demoClaims(user)
        const token = await signToken({
          privateJwk: keys.current.privateJwk,
          sub: sub as string,
          claims,
          expiresIn: options.tokenLifetime ?? '24h',
        })
        tokens.push({ user: user.name, sub: user.sub, tenantId: user.tenantId, token })
      }
    }
    const urlHost = host.includes(':') ? `[${host}]` : host
    const authenticatedUrl = `postgresql://authenticated@${urlHost}:${gateway.pgPort}/${database}`
    const sqlEndpoint = `${gateway.url}/sql`
    const snippet = [
      `import { neon, neonConfig } from '@neondatabase/serverless'`,
      `neonConfig.fetchEndpoint = '${sqlEndpoint}'`,
      `const sql = neon('${authenticatedUrl}', { authToken: process.env.TOKEN })`,
      `console.log(await sql\`select * from users\`)`,
    ].join('\n')
    const restUrl = options.rest === false ? undefined : `${gateway.url}/rest/v1`
    const restSnippet = restUrl === undefined ? undefined : [
      `import { PostgrestClient } from '@supabase/postgrest-js'`,
      `const db = new PostgrestClient('${restUrl}', { headers: { Authorization: \`Bearer \${process.env.TOKEN}\` } })`,
      `const { data, error } = await db.from('users').select('name, tenants(name)')`,
      `console.log(JSON.stringify(data ?? error))`,
    ].join('\n')
    return {
      ownerUrl,
      authenticatedUrl,
      sqlEndpoint,
      webSocketUrl: `${gateway.url.replace(/^http/, 'ws')}/v2`,
      jwksUrl: jwks.url,
      tokens,
      gateway,
      postgres,
      jwks,
      snippet,
      restUrl,
      restSnippet,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
