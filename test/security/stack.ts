/**
 * The stack the security tests attack: an embedded Postgres of their own (with `log_connections`, so a test
 * can prove no restricted-role backend was ever opened), `setup`, the guide's demo plus a tenant-scoped
 * `notes` table and a `security_audit` table the restricted role may write (a row there means attacker SQL
 * ran), one provider `app` with RS256, ES256 and EdDSA keys, an issuer and an audience, and the real gateway.
 *
 * Every transport is driven by a real client: `fetch` on `/sql` (raw, so any header can be sent), `pg` over
 * TCP and `@neondatabase/serverless`'s `Client` over the WebSocket endpoint.
 *
 * @module
 */
import type { GatewayEvent } from '../../src/observability/events.js'
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Client as NeonClient, neonConfig } from '@neondatabase/serverless'
import pg from 'pg'
import ws from 'ws'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/database/embedded.js'
import { gatewayUrl, setup, type SetupOptions } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { loadDemo, DEMO_USERS, type DemoUser } from '../../src/dev/demo.js'
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js'
import { generateSigningKey, type SigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { tempDir } from '../helpers/fs.js'


/** One verification the gateway reported. */
export type Verification = Extract<GatewayEvent, { kind: 'verified' | 'verify-failed' }>

export const [alice, bob] = DEMO_USERS as [DemoUser, DemoUser]
export const ISSUER = 'https://issuer.pga-security.test'
export const AUDIENCE = 'pga-security'
export const DATABASE = 'secdb'

/** What one request through one transport came to. */
export type Outcome =
  | { ok: true; rows: Record<string, unknown>[] }
  | { ok: false; code: string; message: string; status?: number }

export type Transport = 'http' | 'tcp' | 'ws'
export const TRANSPORTS: readonly Transport[] = ['http', 'tcp', 'ws']

export interface StackOptions {
  poolSize?: number
  poolTimeoutMs?: number
  /** Verifier clock seam (ms). */
  now?: () => number
  /** Reuse a Postgres (e.g. one the test restarts). */
  postgres?: EmbeddedPostgresHandle
  /** Extra providers beside `app` (e.g. a remote JWKS). */
  jwksUrl?: string
  gateway?: Partial<GatewayOptions>
  /** Options of the `setup` run before the gateway starts (e.g. time limits). */
  setup?: SetupOptions
  /** Receives every line of the server's log. */
  onServerLog?: (line: string) => void
  /**
   * Run the gateway with the owner's URL. Default false: it runs as the least-privilege gateway role
   * (`pgauthorize_gateway`, issue 19), as production should, so every suite on this stack checks that role.
   */
  asOwner?: boolean
}

export interface Stack {
  postgres: EmbeddedPostgresHandle
  ownerUrl: string
  owner: pg.Client
  gateway: Gateway
  keys: { rs: SigningKey; es: SigningKey; ed: SigningKey }
  /** Outcomes of every verification (verify_fail carries the error code). */
  /** The gateway's verification outcomes (`verified`, `verify-failed`: the code a transport may not show). */
  verifierEvents: Verification[]
  gatewayEvents: GatewayEvent[]
  /** `connection authorized` log lines of the restricted roles, counted since start. */
  restrictedLogins(): number
  /**
   * `connection authorized` log lines of the gateway's own credentials (the gateway role) and of the owner
   * (the server's superuser here), counted since start.
   */
  ownerLogins(): number
  /** The server log's lines so far (the last 50,000). */
  serverLog(): string[]
  /** A valid token (RS256, issuer, audience, 10 min) for a user, or any claims. */
  token(claims?: Record<string, unknown>, key?: SigningKey): Promise<string>
  claimsOf(user: DemoUser): Record<string, unknown>
  /** Runs one query through one transport on a fresh session. */
  run(transport: Transport, token: string | undefined, sql: string, params?: unknown[], role?: string): Promise<Outcome>
  /** Opens a wire session and hands over its client itself (notices, multi-statement results). */
  rawSession(transport: 'tcp' | 'ws', token: string, role?: string): Promise<{ client: pg.Client; close(): Promise<void> }>
  /** Opens a session (a connection for tcp/ws; for http, every query is its own request). */
  session(transport: Transport, token: string, role?: string): Promise<Session>
  http(token: string | undefined, body: unknown, headers?: Record<string, string>): Promise<Outcome>
  auditCount(): Promise<number>
  close(): Promise<void>
}

export interface Session {
  query(sql: string, params?: unknown[]): Promise<Outcome>
  close(): Promise<void>
}


/** Creates the schema the tests need, as the owner; idempotent. */
export const EXTRA_SCHEMA = `
create table if not exists security_audit (id bigserial primary key, sub text default auth.user_id(), at timestamptz default now());
create table if not exists notes (
  id bigserial primary key,
  tenant_id uuid not null default (auth.session() ->> 'tenant_id')::uuid,
  user_id text not null default auth.user_id(),
  body text not null
);
alter table notes enable row level security;
drop policy if exists notes_select on notes;
drop policy if exists notes_insert on notes;
drop policy if exists notes_update on notes;
drop policy if exists notes_delete on notes;
create policy notes_select on notes for select to authenticated using (tenant_id = ((select auth.session() ->> 'tenant_id'))::uuid);
create policy notes_insert on notes for insert to authenticated
  with check (tenant_id = ((select auth.session() ->> 'tenant_id'))::uuid and user_id = (select auth.user_id()));
create policy notes_update on notes for update to authenticated
  using (tenant_id = ((select auth.session() ->> 'tenant_id'))::uuid and user_id = (select auth.user_id()))
  with check (tenant_id = ((select auth.session() ->> 'tenant_id'))::uuid and user_id = (select auth.user_id()));
create policy notes_delete on notes for delete to authenticated
  using (tenant_id = ((select auth.session() ->> 'tenant_id'))::uuid and user_id = (select auth.user_id()));
grant select, insert, update, delete on notes, security_audit to authenticated, anonymous;
grant usage on all sequences in schema public to authenticated, anonymous;
`

export async function startPostgres(dir: string, port?: number, onLog?: (line: string) => void): Promise<EmbeddedPostgresHandle> {
  return startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    ...(port ? { port } : {}),
    onLog: onLog ?? (() => {}),
    postgresFlags: ['-c', 'log_connections=on', '-c', 'max_connections=400'],
  })
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = await tempDir('pga-sec-')
  let logins = 0
  let ownerLogins = 0
  const log: string[] = []
  const onLog = (line: string) => {
    options.onServerLog?.(line)
    for (const l of line.split('\n')) {
      if (/connection authorized: user=(authenticated|anonymous)\b/.test(l)) logins++
      else if (/connection authorized: user=(postgres|pgauthorize_gateway)\b/.test(l)) ownerLogins++
      log.push(l)
    }
    if (log.length > 60_000) log.splice(0, log.length - 50_000)
  }
  const postgres = options.postgres ?? (await startPostgres(dir, undefined, onLog))
  const closers: Array<() => Promise<unknown>> = []
  if (!options.postgres) closers.push(() => postgres.stop())
  closers.push(() => rm(dir, { recursive: true, force: true }))
  try {
    await withOwner(postgres.url, async (c) => {
      const r = await c.query('select 1 from pg_database where datname = $1', [DATABASE])
      if (r.rows.length === 0) await c.query(`create database ${DATABASE}`)
    })
    const ownerUrl = postgres.urlFor(DATABASE)
    await setup(ownerUrl, options.setup)
    await loadDemo(ownerUrl)
    const [rs, es, ed] = await Promise.all([
      generateSigningKey({ alg: 'RS256', kid: 'rs-1' }),
      generateSigningKey({ alg: 'ES256', kid: 'es-1' }),
      generateSigningKey({ alg: 'EdDSA', kid: 'ed-1' }),
    ])
    await withOwner(ownerUrl, async (c) => {
      await c.query(EXTRA_SCHEMA)
      await addProvider(c, {
        name: 'app',
        jwks: { keys: [rs.publicJwk, es.publicJwk, ed.publicJwk] },
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['RS256', 'ES256', 'EdDSA'],
        roles: ['authenticated'],
      }, { replace: true })
      if (options.jwksUrl) {
        await addProvider(c, { name: 'remote', jwksUrl: options.jwksUrl, roles: ['authenticated'] }, { replace: true })
      }
    })
    const owner = new pg.Client(ownerUrl)
    // A Postgres restart ends this connection; the fault tests then use `reconnectOwner`.
    owner.on('error', () => {})
    await owner.connect()
    closers.push(() => owner.end())
    const verifierEvents: Verification[] = []
    const gatewayEvents: Stack['gatewayEvents'] = []
    const gateway = await startGateway({
      databaseUrl: options.asOwner ? ownerUrl : await gatewayUrl(ownerUrl),
      port: 0,
      pgPort: 0,
      poolSize: options.poolSize ?? 4,
      poolTimeoutMs: options.poolTimeoutMs ?? 5000,
      onEvent: (e) => {
        gatewayEvents.push(e)
        if (e.kind === 'verified' || e.kind === 'verify-failed') verifierEvents.push(e)
      },
      ...(options.now ? { databases: { verifier: { now: options.now } } } : {}),
      ...options.gateway,
    })
    closers.push(() => gateway.close())

    const claimsOf = (user: DemoUser) => ({ sub: user.sub, tenant_id: user.tenantId, role: 'authenticated' })
    const token: Stack['token'] = async (claims = claimsOf(alice), key = rs) => {
      const { sub, ...rest } = claims
      return signToken({
        privateJwk: key.privateJwk,
        ...(typeof sub === 'string' ? { sub } : {}),
        claims: rest,
        issuer: ISSUER,
        audience: AUDIENCE,
        expiresIn: '10m',
      })
    }

    const http: Stack['http'] = async (tok, body, headers = {}) => {
      const res = await fetch(`${gateway.url}/sql`, {
        method: 'POST',
        headers: {
          'Neon-Connection-String': `postgresql://authenticated@db.localtest.me/${DATABASE}`,
          'Content-Type': 'application/json',
          ...(tok === undefined ? {} : { Authorization: `Bearer ${tok}` }),
          ...headers,
        },
        body: typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body),
      })
      const text = await res.text()
      let json: Record<string, unknown> = {}
      try {
        json = JSON.parse(text)
      } catch {
        return { ok: false, code: `HTTP${res.status}`, message: text.slice(0, 200), status: res.status }
      }
      if (res.ok) return { ok: true, rows: (json.rows ?? (json.results as { rows: unknown[] }[])?.at(-1)?.rows ?? []) as Record<string, unknown>[] }
      return { ok: false, code: String(json.code), message: String(json.message), status: res.status }
    }

    const rawSession: Stack['rawSession'] = async (transport, tok, role = 'authenticated') => {
      let client: pg.Client
      if (transport === 'tcp') {
        client = new pg.Client({ host: '127.0.0.1', port: gateway.pgPort, user: role, database: DATABASE, password: tok })
      } else {
        neonConfig.webSocketConstructor = ws
        neonConfig.wsProxy = (host, port) => `127.0.0.1:${gateway.port}/v2?address=${host}:${port}`
        neonConfig.useSecureWebSocket = false
        neonConfig.pipelineConnect = false
        neonConfig.pipelineTLS = false
        client = new NeonClient({ host: 'db.localtest.me', port: 5432, user: role, database: DATABASE, password: tok, ssl: false }) as unknown as pg.Client
      }
      client.on('error', () => {})
      await client.connect()
      return { client, close: () => client.end().catch(() => {}) }
    }

    const wireSession = async (transport: 'tcp' | 'ws', tok: string, role = 'authenticated'): Promise<Session> => {
      const { client, close } = await rawSession(transport, tok, role)
      return {
        async query(sql, params) {
          try {
            const r = await client.query(sql, params)
            return { ok: true, rows: (Array.isArray(r) ? r.at(-1) : r).rows }
          } catch (err) {
            return { ok: false, code: String((err as { code?: string }).code), message: (err as Error).message }
          }
        },
        close,
      }
    }

    const session: Stack['session'] = async (transport, tok, role) => {
      if (transport !== 'http') return wireSession(transport, tok, role)
      return {
        query: (sql, params) =>
          http(tok, { query: sql, params: params ?? [] }, role ? { 'Neon-Connection-String': `postgresql://${role}@db.localtest.me/${DATABASE}` } : {}),
        close: async () => {},
      }
    }

    const run: Stack['run'] = async (transport, tok, sql, params, role) => {
      if (transport === 'http') {
        return http(tok, { query: sql, params: params ?? [] }, role ? { 'Neon-Connection-String': `postgresql://${role}@db.localtest.me/${DATABASE}` } : {})
      }
      let s: Session
      try {
        s = await wireSession(transport, tok ?? '', role)
      } catch (err) {
        return { ok: false, code: String((err as { code?: string }).code), message: (err as Error).message }
      }
      try {
        return await s.query(sql, params)
      } finally {
        await s.close()
      }
    }

    // Logins before this point are setup's own checks of the role credentials.
    const baseline = logins
    return {
      postgres,
      ownerUrl,
      owner,
      gateway,
      keys: { rs, es, ed },
      verifierEvents,
      gatewayEvents,
      restrictedLogins: () => logins - baseline,
      ownerLogins: () => ownerLogins,
      serverLog: () => [...log],
      token,
      claimsOf,
      run,
      rawSession,
      session,
      http,
      auditCount: async () => Number((await owner.query('select count(*) as n from security_audit')).rows[0].n),
      async close() {
        for (const c of closers.reverse()) await c().catch(() => {})
      },
    }
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {})
    throw err
  }
}

/**
 * The real gateway in a child process of its own (test/security/gateway-child.ts), serving `s`'s database, so
 * a test can read the gateway's memory apart from its own: `mem()` asks the child for `process.memoryUsage()`
 * after a GC. `cleanups` receives the kill.
 */
export async function childGateway(
  s: Stack,
  cleanups: Array<() => Promise<unknown>>,
): Promise<{ url: string; port: number; pgPort: number; mem(): Promise<NodeJS.MemoryUsage>; kill(): void }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(import.meta.dirname, 'gateway-child.ts')], {
    env: { ...process.env, OWNER_URL: s.ownerUrl },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  cleanups.push(async () => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout! })
  const waiting: Array<(l: string) => void> = []
  lines.on('line', (l) => waiting.shift()?.(l))
  const nextLine = () => new Promise<string>((r) => waiting.push(r))
  const [, url, pgPort] = (await nextLine()).split(' ') as [string, string, string]
  const mem = async () => {
    child.stdin!.write('mem\n')
    return JSON.parse((await nextLine()).slice(4)) as NodeJS.MemoryUsage
  }
  return { url, port: Number(new URL(url).port), pgPort: Number(pgPort), mem, kill: () => child.kill('SIGKILL') }
}

/** Polls `check` until true (bounded); throws naming `what` on timeout. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await Promise.resolve(check()).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed from its printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
