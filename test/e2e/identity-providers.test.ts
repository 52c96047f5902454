/**
 * Tokens shaped like each provider's in /work/shared/reference/identity-providers.md (section 6: the
 * exact claim shape; its algorithm, issuer, audience and lifetime), signed locally, registered as
 * providers in the database with the recipe of docs/providers.md, and run through a real gateway against
 * real Postgres with RLS: over HTTP `/sql` for every provider, and over the wire port and WebSocket for
 * some, so the role the verifier chooses is the one every transport logs in as. Refusals (a claim naming
 * a role the provider does not allow, a wrong `azp`, a strict audience) come back as errors, never rows.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Client as NeonClient, neonConfig } from '@neondatabase/serverless'
import pg from 'pg'
import ws from 'ws'
import { addProvider, listProviders, withOwner, type ProviderInput } from '../../src/database/providers.js'
import { setup } from '../../src/database/setup.js'
import { startGateway, type Gateway } from '../../src/gateway/gateway.js'
import { generateSigningKey, type SigningKey } from '../../src/keys/index.js'
import type { Algorithm } from '../../src/keys/algorithms.js'
import { signToken } from '../../src/tokens/index.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

interface Recipe {
  provider: ProviderInput
  alg: Algorithm
  /** The token's claims (no iat/exp), exactly the shape the provider issues. */
  claims: Record<string, unknown>
  lifetime: string
  /** The role the token must run as, asked for as `authenticated`. */
  role: string
}

const ROLES = ['authenticated', 'editor', 'viewer']
const RECIPES: Record<string, Recipe> = {
  keycloak: {
    provider: { issuer: 'https://kc.acme.dev/realms/acme', audience: 'account', authorizedParties: ['web'], roleClaim: '$.realm_access.roles[*]', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '300s', role: 'editor',
    claims: { iss: 'https://kc.acme.dev/realms/acme', sub: '0b6f2c1e-8d4a-4f7e-9c1a-2b3c4d5e6f70', aud: 'account', azp: 'web', typ: 'Bearer', realm_access: { roles: ['offline_access', 'editor'] }, resource_access: { web: { roles: ['admin'] } } },
  },
  auth0: {
    provider: { issuer: 'https://acme.us.auth0.com/', audience: 'https://api.acme.dev', roleClaim: '$["https://acme.dev/roles"][*]', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '86400s', role: 'editor',
    claims: { iss: 'https://acme.us.auth0.com/', sub: 'auth0|65a1f0c2', aud: 'https://api.acme.dev', azp: 'Xk3pQ9', permissions: ['read:docs'], 'https://acme.dev/roles': ['editor'] },
  },
  cognito: {
    // An access token: no aud, so the audience is not checked; strict, so a token for some other API is refused.
    provider: { issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12', strictAudience: true, roleClaim: '$["cognito:groups"][*]', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '3600s', role: 'viewer',
    claims: { iss: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12', sub: '7c1e5b0a-3f2d-4e1c-9b8a-112233445566', client_id: '4k2j8h1g6f', token_use: 'access', 'cognito:groups': ['viewer'] },
  },
  firebase: {
    provider: { issuer: 'https://securetoken.google.com/acme-prod', audience: 'acme-prod', roleClaim: '$.role', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '1h', role: 'editor',
    claims: { iss: 'https://securetoken.google.com/acme-prod', aud: 'acme-prod', sub: 'Qm3xV8Lr2aHk9TfW1cYp0ZsEe7Bn', role: 'editor', firebase: { sign_in_provider: 'password' } },
  },
  clerk: {
    provider: { issuer: 'https://clerk.acme.dev', authorizedParties: ['https://app.acme.dev'], roleClaim: '$.o.rol', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '60s', role: 'viewer',
    claims: { iss: 'https://clerk.acme.dev', sub: 'user_2kQf8ZbX1', azp: 'https://app.acme.dev', v: 2, o: { id: 'org_2kR1', rol: 'viewer', per: 'read' } },
  },
  supabase: {
    provider: { issuer: 'https://abcd1234.supabase.co/auth/v1', audience: 'authenticated', roleClaim: '$.role', roles: ROLES },
    alg: 'ES256', lifetime: '1h', role: 'authenticated',
    claims: { iss: 'https://abcd1234.supabase.co/auth/v1', aud: 'authenticated', sub: '3f0c9a52-6b1e-4c2d-8e9f-0a1b2c3d4e5f', role: 'authenticated', app_metadata: { roles: ['editor'] } },
  },
  'neon-auth': {
    // Better Auth / Neon Auth: EdDSA, 15-minute tokens, role: authenticated; iss is the origin.
    provider: { issuer: 'https://ep-x.aws.neon.tech', audience: 'https://ep-x.aws.neon.tech', roleClaim: '$.role', roles: ROLES, algorithms: ['EdDSA'] },
    alg: 'EdDSA', lifetime: '15m', role: 'authenticated',
    claims: { iss: 'https://ep-x.aws.neon.tech', aud: 'https://ep-x.aws.neon.tech', sub: '860dc360-609f-4b8e-a1c2-d3e4f5a6b7c8', role: 'authenticated', o: { id: 'org_9', slug: 'acme', role: 'owner' } },
  },
  workos: {
    provider: { issuer: 'https://api.workos.com/user_management/client_01H', roleClaim: '$.roles[*]', roles: ROLES, defaultRole: 'authenticated' },
    alg: 'RS256', lifetime: '300s', role: 'viewer',
    claims: { iss: 'https://api.workos.com/user_management/client_01H', sub: 'user_01HBEQKA6K4Q', org_id: 'org_01HR', role: 'member', roles: ['member', 'viewer'], permissions: ['posts:read'] },
  },
}

let db: TestDatabase
let gw: Gateway
const keys: Record<string, SigningKey> = {}

before(async () => {
  db = await createTestDatabase()
  const owner = new pg.Client(db.url)
  await owner.connect()
  await owner.query(`create table docs (id int primary key, owner text not null, body text not null);
    alter table docs enable row level security`)
  await owner.end()
  await setup(db.url, { roles: ['editor', 'viewer'] })
  await withOwner(db.url, async (c) => {
    // Everyone sees their own rows; editors see all of them.
    await c.query(`create policy own on docs for select using (owner = (select auth.user_id()));
      create policy editors on docs for select to editor using (true)`)
    let id = 0
    for (const [name, r] of Object.entries(RECIPES)) {
      keys[name] = await generateSigningKey({ alg: r.alg, kid: `${name}-1` })
      await addProvider(c, { name, ...r.provider, algorithms: r.provider.algorithms ?? [r.alg], jwks: { keys: [keys[name]!.publicJwk as Record<string, unknown>] } })
      await c.query('insert into docs values ($1, $2, $3)', [++id, String(r.claims.sub), `${name}'s`])
    }
  })
  gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: 0 })
  neonConfig.webSocketConstructor = ws
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${gw.port}/v2?address=${host}:${port}`
  neonConfig.useSecureWebSocket = false
})

after(async () => {
  await gw?.close()
  await db?.close()
})

function tokenFor(name: string, claims: Record<string, unknown> = RECIPES[name]!.claims): Promise<string> {
  return signToken({ privateJwk: keys[name]!.privateJwk, claims, expiresIn: RECIPES[name]!.lifetime })
}

const WHO = 'select current_user as role, auth.user_id() as sub, (select count(*)::int from docs) as n'
const ALL = Object.keys(RECIPES).length

async function http(jwt: string, role = 'authenticated') {
  const r = await fetch(`${gw.url}/sql`, {
    method: 'POST',
    headers: { 'neon-connection-string': `postgresql://${role}@127.0.0.1/${db.database}`, authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ query: WHO, params: [] }),
  })
  return { status: r.status, body: (await r.json()) as { rows?: Record<string, unknown>[]; message?: string } }
}

test('every provider: its token runs over HTTP as the role its claim names, and RLS shows what that role may see', async () => {
  for (const [name, r] of Object.entries(RECIPES)) {
    const res = await http(await tokenFor(name))
    assert.equal(res.status, 200, `${name}: ${res.body.message}`)
    assert.deepEqual(res.body.rows, [{ role: r.role, sub: r.claims.sub, n: r.role === 'editor' ? ALL : 1 }], name)
  }
})

test('the same choice over the wire port (Keycloak) and over WebSocket (Cognito)', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort!, user: 'authenticated', database: db.database, password: await tokenFor('keycloak') })
  await c.connect()
  try {
    assert.deepEqual((await c.query(WHO)).rows, [{ role: 'editor', sub: RECIPES.keycloak!.claims.sub, n: ALL }])
  } finally {
    await c.end()
  }
  const jwt = await tokenFor('cognito')
  const n = new NeonClient(`postgresql://authenticated:${encodeURIComponent(jwt)}@db.localtest.me:5432/${db.database}`)
  await n.connect()
  try {
    assert.deepEqual((await n.query(WHO)).rows, [{ role: 'viewer', sub: RECIPES.cognito!.claims.sub, n: 1 }])
  } finally {
    await n.end()
  }
})

test('refusals through the gateway: a role the provider does not allow, a wrong azp, a strict audience, a missing claim without default', async () => {
  const kc = RECIPES.keycloak!.claims
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['keycloak', { ...kc, realm_access: { roles: ['postgres', 'offline_access'] } }, /names no role provider 'keycloak' allows/],
    ['keycloak', { ...kc, azp: 'evil' }, /"azp" is not an authorized party/],
    ['cognito', { ...RECIPES.cognito!.claims, aud: 'https://some-other-api' }, /has an "aud".*strict/],
    ['supabase', { ...RECIPES.supabase!.claims, role: undefined }, /has no role at \$\.role/],
  ]
  for (const [name, claims, want] of cases) {
    const res = await http(await tokenFor(name, claims))
    assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`)
    assert.equal(res.body.rows, undefined)
    assert.match(res.body.message!, want)
  }
  // Over the wire too: FATAL at login, nothing opened.
  const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort!, user: 'authenticated', database: db.database, password: await tokenFor('keycloak', cases[0]![1]) })
  c.on('error', () => {})
  await assert.rejects(c.connect(), (e: { code?: string; message: string }) => e.code === '28P01' && /names no role/.test(e.message))
})

test('the role in the connection string wins when the claim allows it, and only then', async () => {
  const jwt = await tokenFor('keycloak', { ...RECIPES.keycloak!.claims, realm_access: { roles: ['editor', 'viewer'] } })
  assert.deepEqual((await http(jwt, 'viewer')).body.rows?.[0]?.role, 'viewer')
  assert.deepEqual((await http(jwt, 'editor')).body.rows?.[0]?.role, 'editor')
  // Asked for a role the claim does not name: the claim's first allowed role, not the one asked for.
  const viewerOnly = await tokenFor('keycloak', { ...RECIPES.keycloak!.claims, realm_access: { roles: ['viewer'] } })
  assert.deepEqual((await http(viewerOnly, 'editor')).body.rows?.[0]?.role, 'viewer')
})

test('a database set up before migration 0007 still lists its providers (gateways keep working until setup runs again)', async () => {
  const name = `${db.database}_old`
  const admin = new pg.Client(db.adminUrl)
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = db.urlFor(name)
  await setup(url)
  await withOwner(url, async (c) => {
    await addProvider(c, { name: 'old', jwksUrl: 'https://old.example/jwks.json' })
    // What 0006 left: none of 0007's columns.
    await c.query(`alter table pgauthorize.providers drop column discovery, drop column role_claim, drop column default_role,
      drop column authorized_parties, drop column strict_audience`)
    assert.deepEqual(await listProviders(c), [{ name: 'old', jwksUrl: 'https://old.example/jwks.json', algorithms: ['RS256', 'ES256', 'EdDSA'], roles: ['authenticated'] }])
  })
})
