/**
 * Claim-to-role mapping, the audience and azp rules, and RFC 9068 access tokens, on the verifier itself
 * (inline keys, so nothing but the rules is under test; test/e2e/identity-providers.test.ts runs the same
 * rules through the gateway against Postgres). Each JSONPath form of issue #20, arrays, the order of
 * choice, and every refusal with its code.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateSigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { parseClaimPath, selectClaim, Verifier, type ProviderConfig } from '../../src/verify/index.js'
import { rawSign, rejectsWith } from './helpers.js'

const key = await generateSigningKey({ alg: 'RS256', kid: 'rk' })
const ROLES = ['authenticated', 'anonymous', 'editor', 'viewer']

function verifier(p: Partial<ProviderConfig>, cache = false): Verifier {
  return new Verifier({ providers: [{ name: 'idp', jwks: { keys: [key.publicJwk as JsonWebKey] }, algorithms: ['RS256'], roles: ROLES, ...p }], ...(cache ? {} : { cache: false }) })
}
const token = (claims: Record<string, unknown>, extra: { audience?: string } = {}) =>
  signToken({ privateJwk: key.privateJwk, sub: 'u1', claims, expiresIn: '10m', ...extra })

test('each JSONPath form picks the role: $.role, nested, bracketed names, [*] and [0]', async () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['$.role', { role: 'editor' }, 'editor'],
    ['$.app_metadata.role', { app_metadata: { role: 'viewer' } }, 'viewer'],
    ['$["https://example.com/claims"].role', { 'https://example.com/claims': { role: 'editor' } }, 'editor'],
    ["$['cognito:groups'][*]", { 'cognito:groups': ['viewer'] }, 'viewer'],
    ['$.realm_access.roles[*]', { realm_access: { roles: ['offline_access', 'viewer', 'editor'] } }, 'viewer'],
    ['$.resource_access["web"].roles[0]', { resource_access: { web: { roles: ['editor', 'viewer'] } } }, 'editor'],
    ['$.o.rol', { o: { id: 'org_1', rol: 'viewer' } }, 'viewer'],
  ]
  for (const [path, claims, want] of cases) {
    const v = verifier({ roleClaim: path })
    const r = await v.verify(await token(claims), { role: 'authenticated' })
    assert.equal(r.role, want, path)
  }
})

test('an array gives its first allowed value; the requested role wins when the claim names it', async () => {
  const v = verifier({ roleClaim: '$.realm_access.roles' })
  const t = await token({ realm_access: { roles: ['uma_authorization', 'editor', 'viewer'] } })
  assert.equal((await v.verify(t, { role: 'authenticated' })).role, 'editor') // not named: the claim's first allowed
  assert.equal((await v.verify(t, { role: 'viewer' })).role, 'viewer') // named by the claim and allowed: wins
  assert.equal((await v.verify(t)).role, 'editor')
  // From the token cache: the same object for the same choice (the gateway's envelope cache keys on it),
  // and the choice still made per request.
  const cached = verifier({ roleClaim: '$.realm_access.roles' }, true)
  assert.equal(await cached.verify(t, { role: 'viewer' }), await cached.verify(t, { role: 'viewer' }))
  assert.equal((await cached.verify(t, { role: 'authenticated' })).role, 'editor')
})

test('a missing claim falls back to the default role; with none it is refused (ERR_ROLE_CLAIM_MISSING)', async () => {
  const withDefault = verifier({ roleClaim: '$.realm_access.roles[*]', defaultRole: 'viewer' })
  assert.equal((await withDefault.verify(await token({}), { role: 'authenticated' })).role, 'viewer')
  // Not a string: as if missing.
  assert.equal((await withDefault.verify(await token({ realm_access: { roles: [7, null] } }), { role: 'editor' })).role, 'viewer')
  const none = verifier({ roleClaim: '$.role' })
  await rejectsWith(none.verify(await token({ other: 1 }), { role: 'authenticated' }), 'ERR_ROLE_CLAIM_MISSING')
})

test('a claim naming only roles the provider does not allow is refused (ERR_ROLE_NOT_ALLOWED), even with a default', async () => {
  const v = verifier({ roleClaim: '$.role', defaultRole: 'viewer' })
  const t = await token({ role: 'postgres' })
  await rejectsWith(v.verify(t, { role: 'authenticated' }), 'ERR_ROLE_NOT_ALLOWED')
  await rejectsWith(v.verify(t, { role: 'postgres' }), 'ERR_ROLE_NOT_ALLOWED')
  await assert.rejects(v.verify(t), (e: Error) => !e.message.includes('postgres') || /\$\.role/.test(e.message))
})

test('without a role claim the requested role must be allowed, as before', async () => {
  const v = verifier({ roles: ['authenticated'] })
  const t = await token({ role: 'editor' })
  assert.equal((await v.verify(t, { role: 'authenticated' })).role, 'authenticated')
  await rejectsWith(v.verify(t, { role: 'editor' }), 'ERR_ROLE_NOT_ALLOWED')
})

test('strict audience: a token with aud is refused by a provider naming none; by default it passes', async () => {
  const t = await token({}, { audience: 'https://other-api.example' })
  assert.equal((await verifier({}).verify(t)).role, 'authenticated')
  await rejectsWith(verifier({ strictAudience: true }).verify(t), 'ERR_JWT_AUDIENCE_MISMATCH')
  assert.equal((await verifier({ strictAudience: true }).verify(await token({}))).role, 'authenticated')
  assert.equal((await verifier({ strictAudience: true, audience: 'https://other-api.example' }).verify(t)).role, 'authenticated')
})

test('azp: when the provider names authorized parties, azp must be one of them', async () => {
  const v = verifier({ authorizedParties: ['web', 'mobile'] })
  assert.equal((await v.verify(await token({ azp: 'mobile' }))).role, 'authenticated')
  await rejectsWith(v.verify(await token({ azp: 'evil' })), 'ERR_JWT_AZP_MISMATCH')
  await rejectsWith(v.verify(await token({})), 'ERR_JWT_AZP_MISMATCH')
  assert.equal((await verifier({}).verify(await token({ azp: 'evil' }))).role, 'authenticated')
})

test('RFC 9068 access tokens (typ at+jwt, application/at+jwt) are accepted', async () => {
  const v = verifier({})
  const now = Math.floor(Date.now() / 1000)
  for (const typ of ['at+jwt', 'application/at+jwt', 'JWT']) {
    const t = rawSign({ alg: 'RS256', kid: 'rk', typ }, { sub: 'c', client_id: 'c', iat: now, exp: now + 60, jti: 'j' }, key.privateJwk as never)
    assert.equal((await v.verify(t)).claims.client_id, 'c', typ)
  }
})

test('role claim paths: parsed once, bad ones refused when the provider is configured', () => {
  assert.deepEqual(selectClaim({ a: { 'b:c': ['x', 'y'] } }, parseClaimPath('$.a["b:c"][1]')), ['y'])
  assert.deepEqual(selectClaim({ a: [{ r: 'x' }, { r: 'y' }] }, parseClaimPath('$.a[*].r')), ['x', 'y'])
  assert.deepEqual(selectClaim({}, parseClaimPath('$.__proto__.x')), [])
  assert.deepEqual(selectClaim({ 'it\'s': 'z' }, parseClaimPath("$['it\\'s']")), ['z'])
  for (const bad of ['role', '$.', '$..role', '$[?(@.x)]', '$["open', '$.a:b', '$[-1]', '$' + '.a'.repeat(200)]) {
    assert.throws(() => verifier({ roleClaim: bad }), { code: 'ERR_INVALID_CONFIG' }, bad)
  }
  assert.throws(() => verifier({ roleClaim: '$.role', defaultRole: 'postgres' }), { code: 'ERR_INVALID_CONFIG' })
})
