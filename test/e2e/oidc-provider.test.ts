/**
 * A real OpenID provider: panva's `oidc-provider` (the certified implementation on npm) on loopback.
 * It is registered by its issuer alone (`providers add --issuer`, OIDC discovery), hands out RFC 9068
 * JWT access tokens (`typ: at+jwt`) for the client-credentials grant with a resource indicator, and the
 * gateway runs them over HTTP `/sql` and the wire port as the role their Keycloak-shaped
 * `realm_access.roles` claim names, under RLS in a real Postgres. Then the provider rotates its signing
 * key and the gateway accepts tokens signed with the new one, without a restart. Discovery failures are
 * refused by `providers add` with what went wrong.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { exportJWK, generateKeyPair } from 'jose'
import Provider from 'oidc-provider'
import pg from 'pg'
import { setup } from '../../src/database/setup.js'
import { startGateway, type Gateway } from '../../src/gateway/gateway.js'
import { runCli } from '../helpers/cli.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

const RESOURCE = 'urn:pg-authorize:test'
const clean = { DATABASE_URL: '', PG_AUTHORIZE_DATABASE_URL: '', PG_AUTHORIZE_CONFIG: '' }
/** Client id → the realm roles its tokens carry (Keycloak's shape). */
const CLIENTS: Record<string, string[]> = { 'reader-app': ['offline_access', 'viewer'], 'editor-app': ['editor', 'viewer'], 'plain-app': [] }

let db: TestDatabase
let gw: Gateway
let idp: Server
let issuer: string
let handler: RequestListener
let firstKey: Record<string, unknown>

async function signingJwk(kid: string) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }
}

/** An oidc-provider instance for `issuer` signing with the first of `keys` (each restart is a new instance: how we rotate). */
function openIdProvider(keys: Record<string, unknown>[]): RequestListener {
  const provider = new Provider(issuer, {
    clients: Object.keys(CLIENTS).map((id) => ({
      client_id: id, client_secret: `${id}-secret-0123456789`, grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
    })),
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        getResourceServerInfo: () => ({ scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    ttl: { ClientCredentials: 600 },
    extraTokenClaims: (_ctx, token) => {
      const roles = CLIENTS[token.clientId ?? ''] ?? []
      return roles.length ? { realm_access: { roles } } : {}
    },
  })
  return provider.callback() as RequestListener
}

async function accessToken(client: string): Promise<string> {
  const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { token_endpoint: string }
  const r = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client}:${client}-secret-0123456789`).toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: RESOURCE }),
  })
  const body = (await r.json()) as { access_token?: string; error?: string }
  assert.equal(r.status, 200, body.error)
  return body.access_token!
}

const header = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { typ?: string; kid?: string }

async function sqlOverHttp(jwt: string, query: string): Promise<{ status: number; body: { rows?: Record<string, unknown>[]; code?: string; message?: string } }> {
  const r = await fetch(`${gw.url}/sql`, {
    method: 'POST',
    headers: { 'neon-connection-string': `postgresql://authenticated@127.0.0.1/${db.database}`, authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ query, params: [] }),
  })
  return { status: r.status, body: (await r.json()) as never }
}

async function overWire<T>(jwt: string, fn: (c: pg.Client) => Promise<T>, user = 'authenticated'): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort!, user, database: db.database, password: jwt })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

before(async () => {
  db = await createTestDatabase()
  const owner = new pg.Client(db.url)
  await owner.connect()
  await owner.query(`create table docs (id int primary key, owner text not null, body text not null);
    insert into docs values (1, 'reader-app', 'mine'), (2, 'someone-else', 'theirs');
    alter table docs enable row level security;`)
  await owner.end()
  await setup(db.url, { roles: ['editor', 'viewer'] })
  const o2 = new pg.Client(db.url)
  await o2.connect()
  // Editors see every row; everyone else only their own.
  await o2.query(`create policy own on docs for select using (owner = (select auth.user_id()));
    create policy editors on docs for select to editor using (true)`)
  await o2.end()

  handler = () => {}
  idp = createServer((req: IncomingMessage, res: ServerResponse) => handler(req, res))
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r))
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`
  firstKey = await signingJwk('first')
  handler = openIdProvider([firstKey])

  gw = await startGateway({
    databaseUrl: db.url, port: 0, pgPort: 0,
    // No token cache and no unknown-kid cooldown, so the rotation below is seen at once.
    databases: { verifier: { cache: false, jwksCooldownMs: 0 } },
  })
})

after(async () => {
  await gw?.close()
  idp?.closeAllConnections()
  await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()))
  await db?.close()
})

test('providers add --issuer discovers the JWKS of a real OpenID provider', async () => {
  const r = await runCli([
    'providers', 'add', '--issuer', issuer, '--name', 'oidc', '--audience', RESOURCE,
    '--role-claim', '$.realm_access.roles[*]', '--roles', 'authenticated,editor,viewer', '--default-role', 'authenticated',
    '--algorithms', 'RS256', '--json', '--database-url', db.url,
  ], { env: clean })
  assert.equal(r.code, 0, r.stderr)
  const p = JSON.parse(r.stdout) as { discovery: boolean; jwksUrl: string; keys: { kid: string }[]; roleClaim: string }
  assert.equal(p.discovery, true)
  assert.equal(p.jwksUrl, `${issuer}/jwks`) // oidc-provider's jwks_uri, not the /.well-known guess
  assert.deepEqual(p.keys.map((k) => k.kid), ['first'])
  assert.equal(p.roleClaim, '$.realm_access.roles[*]')
  await gw.databases.reload()
})

test('its JWT access tokens (typ at+jwt) run over HTTP and the wire port as the role their claim names, under RLS', async () => {
  const reader = await accessToken('reader-app')
  assert.equal(header(reader).typ, 'at+jwt')
  const http = await sqlOverHttp(reader, 'select current_user as role, auth.user_id() as sub, (select count(*)::int from docs) as n')
  assert.equal(http.status, 200, JSON.stringify(http.body))
  assert.deepEqual(http.body.rows, [{ role: 'viewer', sub: 'reader-app', n: 1 }])

  const editor = await accessToken('editor-app')
  const wire = await overWire(editor, (c) => c.query('select current_user as role, session_user as login, (select count(*)::int from docs) as n'))
  assert.deepEqual(wire.rows, [{ role: 'editor', login: 'editor', n: 2 }])
  // The role the connection string names wins when the claim allows it.
  const asViewer = await overWire(editor, (c) => c.query('select current_user as role, (select count(*)::int from docs) as n'), 'viewer')
  assert.deepEqual(asViewer.rows, [{ role: 'viewer', n: 0 }])

  // No realm roles at all: the provider's default role.
  const plain = await sqlOverHttp(await accessToken('plain-app'), 'select current_user as role')
  assert.deepEqual(plain.body.rows, [{ role: 'authenticated' }])
})

test('the provider rotates its signing key: tokens signed with the new key are accepted without a restart', async () => {
  const old = await accessToken('reader-app')
  assert.equal(header(old).kid, 'first')
  // A new instance, as after a restart with a new key in front: it signs with 'second' and still publishes 'first'.
  handler = openIdProvider([await signingJwk('second'), firstKey])
  const rotated = await accessToken('reader-app')
  assert.equal(header(rotated).kid, 'second')
  const r = await sqlOverHttp(rotated, 'select current_user as role')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body.rows, [{ role: 'viewer' }])
  const w = await overWire(rotated, (c) => c.query('select auth.user_id() as sub'))
  assert.deepEqual(w.rows, [{ sub: 'reader-app' }])
})

test('discovery failures are refused by providers add, naming what went wrong', async (t) => {
  const docs: Record<string, (base: string) => [number, string]> = {
    '/mismatch/.well-known/openid-configuration': (base) => [200, JSON.stringify({ issuer: `${base}/other`, jwks_uri: `${base}/jwks` })],
    '/nojwks/.well-known/openid-configuration': (base) => [200, JSON.stringify({ issuer: `${base}/nojwks` })],
    '/html/.well-known/openid-configuration': () => [200, '<html>login</html>'],
    '/slash/.well-known/openid-configuration': (base) => [200, JSON.stringify({ issuer: `${base}/slash`, jwks_uri: `${base}/jwks` })],
  }
  const srv = createServer((req, res) => {
    const [status, body] = docs[req.url!]?.(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`) ?? [404, '']
    res.writeHead(status, { 'content-type': body.startsWith('<') ? 'text/html' : 'application/json' }).end(body)
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => srv.close(() => r())))
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
  const closed = createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const deadPort = (closed.address() as AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))

  const cases: [string, RegExp][] = [
    [`http://127.0.0.1:${deadPort}`, /ERR_DISCOVERY_FAILED.*connection refused/],
    [`${base}/html`, /ERR_DISCOVERY_INVALID.*not valid JSON \(content-type text\/html\)/],
    [`${base}/mismatch`, /ERR_DISCOVERY_ISSUER_MISMATCH.*names the issuer '.*\/other'/],
    [`${base}/nojwks`, /ERR_DISCOVERY_INVALID.*no "jwks_uri"/],
    // Exact comparison: the issuer given with a trailing slash is not the one the document names.
    [`${base}/slash/`, /ERR_DISCOVERY_ISSUER_MISMATCH/],
    [`${base}/missing`, /ERR_DISCOVERY_FAILED.*HTTP 404/],
  ]
  for (const [url, want] of cases) {
    const r = await runCli(['providers', 'add', '--issuer', url, '--name', 'bad', '--database-url', db.url], { env: clean })
    assert.equal(r.code, 1, `${url}: ${r.stdout}`)
    assert.match(r.stderr, want, url)
  }
  const list = await runCli(['providers', 'list', '--json', '--database-url', db.url], { env: clean })
  assert.deepEqual((JSON.parse(list.stdout) as { name: string }[]).map((p) => p.name), ['oidc'])
})
