/**
 * Every check of the verifier, one test each, against inline keys (the remote cache has its own file).
 * Each test is built so that it fails if its check is removed: the token is otherwise valid and
 * carries a genuine signature, and the expected code differs from what the next check would say.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SignJWT, importJWK } from 'jose'
import { generateSigningKey, type SigningKey } from '../../src/keys/index.js'
import { signToken } from '../../src/tokens/index.js'
import { Verifier, verify, type ProviderConfig, type VerifierEvent } from '../../src/verify/index.js'
import { b64url, rawSign, rejectsWith } from './helpers.js'

const NOW = Date.now()
const nowSec = Math.floor(NOW / 1000)
const rsa = await generateSigningKey({ alg: 'RS256', kid: 'rsa-1' })
const ec = await generateSigningKey({ alg: 'ES256', kid: 'ec-1' })
const ed = await generateSigningKey({ alg: 'EdDSA', kid: 'ed-1' })

const provider = (keys: SigningKey[], extra: Partial<ProviderConfig> = {}): ProviderConfig => ({
  name: 'app',
  jwks: { keys: keys.map((k) => k.publicJwk as JsonWebKey) },
  ...extra,
})
const verifier = (providers: ProviderConfig[], extra: ConstructorParameters<typeof Verifier>[0] = {}) =>
  new Verifier({ providers, now: () => NOW, ...extra })
const sign = (key: SigningKey, claims: Record<string, unknown> = {}, extra: Partial<Parameters<typeof signToken>[0]> = {}) =>
  signToken({ privateJwk: key.privateJwk, sub: 'user-1', claims: { tenant_id: 't1', ...claims }, now: NOW, ...extra })
const payload = (extra: Record<string, unknown> = {}) => ({ sub: 'user-1', iat: nowSec, exp: nowSec + 600, ...extra })

test('a valid token verifies for each algorithm and says which provider verified it', async () => {
  const v = verifier([provider([rsa, ec, ed])])
  for (const key of [rsa, ec, ed]) {
    const token = await sign(key)
    const r = await v.verify(token)
    assert.equal(r.claims.sub, 'user-1')
    assert.equal(r.claims.tenant_id, 't1')
    assert.equal(r.header.kid, key.kid)
    assert.equal(r.provider.name, 'app')
    assert.equal(r.expiresAt, nowSec + 3600)
  }
  v.close()
})

test('signature: a tampered payload or a signature by another key with the same kid is refused', async () => {
  const v = verifier([provider([rsa])], { cache: false })
  const token = await sign(rsa)
  const [h, , s] = token.split('.')
  const forged = `${h}.${b64url({ ...payload(), sub: 'admin', tenant_id: 't2' })}.${s}`
  await rejectsWith(v.verify(forged), 'ERR_JWT_SIGNATURE_INVALID', forged)
  const impostor = await generateSigningKey({ alg: 'RS256', kid: 'rsa-1' })
  await rejectsWith(v.verify(await sign(impostor)), 'ERR_JWT_SIGNATURE_INVALID')
})

test('alg allow-list: a token whose alg the provider does not allow is refused', async () => {
  const v = verifier([provider([rsa], { algorithms: ['ES256'] })])
  await rejectsWith(v.verify(await sign(rsa)), 'ERR_JWT_ALG_NOT_ALLOWED')
  // The same token passes with RS256 allowed: the refusal above is the allow-list's doing.
  v.setProviders([provider([rsa], { algorithms: ['RS256'] })])
  await v.verify(await sign(rsa))
})

test("alg must match the key: the key's own alg, and its type and curve", async () => {
  // An RSA key published for RS256 cannot accept a PS256 signature made with the same private key.
  const v = verifier([provider([rsa], { algorithms: ['RS256', 'PS256'] })])
  const ps = rawSign({ alg: 'PS256', kid: 'rsa-1' }, payload(), rsa.privateJwk)
  await rejectsWith(v.verify(ps), 'ERR_JWT_ALG_NOT_ALLOWED', ps)
  // Control: the PS256 token is genuine, it verifies when the key does not pin RS256.
  const { alg: _a, ...unpinned } = rsa.publicJwk
  await verifier([{ name: 'p', jwks: { keys: [unpinned as JsonWebKey] }, algorithms: ['PS256'] }]).verify(ps)
  // A P-256 key (no alg member) is never used for ES384, whatever the header says.
  const { alg: _b, ...ecNoAlg } = ec.publicJwk
  const es256 = rawSign({ alg: 'ES256', kid: 'ec-1' }, payload(), ec.privateJwk)
  const relabelled = `${b64url({ alg: 'ES384', kid: 'ec-1' })}.${es256.split('.').slice(1).join('.')}`
  await rejectsWith(verifier([{ name: 'p', jwks: { keys: [ecNoAlg as JsonWebKey] }, algorithms: ['ES256', 'ES384'] }]).verify(relabelled), 'ERR_JWT_ALG_NOT_ALLOWED')
})

test('exp: expired beyond the leeway is refused, within it accepted; exp is required', async () => {
  const v = verifier([provider([ec])], { cache: false })
  const expired = rawSign({ alg: 'ES256', kid: 'ec-1' }, payload({ exp: nowSec - 31 }), ec.privateJwk)
  await rejectsWith(v.verify(expired), 'ERR_JWT_EXPIRED', expired)
  await v.verify(rawSign({ alg: 'ES256', kid: 'ec-1' }, payload({ exp: nowSec - 10 }), ec.privateJwk))
  await rejectsWith(verifier([provider([ec])], { clockToleranceSeconds: 0 }).verify(
    rawSign({ alg: 'ES256', kid: 'ec-1' }, payload({ exp: nowSec - 10 }), ec.privateJwk)), 'ERR_JWT_EXPIRED')
  const { exp: _e, ...noExp } = payload()
  await rejectsWith(v.verify(rawSign({ alg: 'ES256', kid: 'ec-1' }, noExp, ec.privateJwk)), 'ERR_JWT_CLAIM_INVALID')
})

test('non-finite numbers (1e400 parses as Infinity) are refused in every claim, and never cached', async () => {
  const events: VerifierEvent[] = []
  const v = verifier([provider([ec])], { onEvent: (e) => events.push(e) })
  const base = `"sub":"user-1","iat":${nowSec},"exp":${nowSec + 600}`
  const texts = [
    `{"sub":"user-1","iat":${nowSec},"exp":1e400}`,
    `{"sub":"user-1","iat":${nowSec},"exp":-1e400}`,
    `{${base},"nbf":-1e400}`,
    `{"sub":"user-1","iat":1e400,"exp":${nowSec + 600}}`,
    `{${base},"tenant_id":1e400}`,
    `{${base},"permissions":{"quota":[1,-1e999]}}`,
  ]
  for (const text of texts) {
    assert.ok(Object.values(JSON.parse(text)).some((x) => JSON.stringify(x).includes('null')), `${text} parses to a non-finite number`)
    const token = rawSign({ alg: 'ES256', kid: 'ec-1' }, text, ec.privateJwk)
    await rejectsWith(v.verify(token), 'ERR_JWT_CLAIM_INVALID', token)
    await rejectsWith(v.verify(token), 'ERR_JWT_CLAIM_INVALID', token) // a second try is not a cache hit either
  }
  assert.equal(v.stats().cache_entries, 0)
  assert.ok(!events.some((e) => e.kind === 'token-cache' && e.result === 'hit'))
  // Control: large but finite numbers, in registered and custom claims, verify.
  const finite = rawSign({ alg: 'ES256', kid: 'ec-1' }, `{${base},"nbf":-1e300,"tenant_id":1e308,"n":[-1.5e-320]}`, ec.privateJwk)
  assert.equal((await v.verify(finite)).claims.tenant_id, 1e308)
  v.close()
})

test('nbf: not yet valid beyond the leeway is refused, within it accepted', async () => {
  const v = verifier([provider([ed])], { cache: false })
  await rejectsWith(v.verify(await sign(ed, {}, { notBefore: nowSec + 120 })), 'ERR_JWT_NOT_YET_VALID')
  await v.verify(await sign(ed, {}, { notBefore: nowSec + 10 }))
})

test('iss and aud are checked when the provider sets them', async () => {
  const v = verifier([provider([rsa], { issuer: 'https://auth.example', audience: ['api', 'web'] })], { cache: false })
  await v.verify(await sign(rsa, {}, { issuer: 'https://auth.example', audience: 'web' }))
  await rejectsWith(v.verify(await sign(rsa, {}, { issuer: 'https://evil.example', audience: 'web' })), 'ERR_JWT_ISSUER_MISMATCH')
  await rejectsWith(v.verify(await sign(rsa, {}, { audience: 'web' })), 'ERR_JWT_ISSUER_MISMATCH')
  await rejectsWith(v.verify(await sign(rsa, {}, { issuer: 'https://auth.example', audience: 'other' })), 'ERR_JWT_AUDIENCE_MISMATCH')
  await rejectsWith(v.verify(await sign(rsa, {}, { issuer: 'https://auth.example' })), 'ERR_JWT_AUDIENCE_MISMATCH')
  // Without issuer/audience on the provider, any iss/aud is fine.
  await verifier([provider([rsa])]).verify(await sign(rsa, {}, { issuer: 'x', audience: 'y' }))
})

test('alg "none" in any casing is refused even with a signature segment', async () => {
  const v = verifier([provider([rsa])])
  for (const alg of ['none', 'NONE', 'nOnE']) {
    const token = `${b64url({ alg, kid: 'rsa-1' })}.${b64url(payload())}.c2lnbmF0dXJl`
    await rejectsWith(v.verify(token), 'ERR_JWT_HEADER_FORBIDDEN', token)
  }
})

test('jku, x5u, x5c, an embedded jwk, crit and b64 are refused on otherwise valid tokens', async () => {
  const v = verifier([provider([rsa])], { cache: false })
  const extras: Record<string, unknown>[] = [
    { jku: 'https://evil.example/jwks.json' },
    { x5u: 'https://evil.example/cert.pem' },
    { x5c: ['MIIB'] },
    { jwk: rsa.publicJwk },
    { crit: ['exp'], exp: 1 },
    { b64: true },
  ]
  // Control: the plain token verifies.
  await v.verify(rawSign({ alg: 'RS256', kid: 'rsa-1' }, payload(), rsa.privateJwk))
  for (const extra of extras) {
    const token = rawSign({ alg: 'RS256', kid: 'rsa-1', ...extra }, payload(), rsa.privateJwk)
    await rejectsWith(v.verify(token), 'ERR_JWT_HEADER_FORBIDDEN', token)
  }
})

test('the length cap applies before any decoding', async () => {
  const v = verifier([provider([rsa])])
  await rejectsWith(v.verify('!'.repeat(8193)), 'ERR_TOKEN_TOO_LARGE')
  const token = await sign(rsa)
  await v.verify(token)
  await rejectsWith(verifier([provider([rsa])], { maxTokenLength: token.length - 1 }).verify(token), 'ERR_TOKEN_TOO_LARGE', token)
})

test('tokens that are not three base64url segments are malformed', async () => {
  const v = verifier([provider([rsa])])
  const good = await sign(rsa)
  const [h, p, s] = good.split('.')
  for (const bad of ['', 'abc', `${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}..${s}`, `${h}.${p}.`, `${h}.${p}.${s}=`, ` ${good}`, `${h}.${p}.${s}é`]) {
    await rejectsWith(v.verify(bad), 'ERR_TOKEN_MALFORMED', good)
  }
  await rejectsWith(v.verify(`${b64url('not json')}.${p}.${s}`), 'ERR_TOKEN_MALFORMED')
  await rejectsWith(v.verify(`${h}.${b64url('[1]')}.${s}`), 'ERR_TOKEN_MALFORMED')
})

test('kid: a token without kid is accepted only when exactly one key suits its alg', async () => {
  const noKid = rawSign({ alg: 'RS256' }, payload(), rsa.privateJwk)
  const r = await verifier([provider([rsa, ec])]).verify(noKid)
  assert.equal(r.claims.sub, 'user-1')
  const rsa2 = await generateSigningKey({ alg: 'RS256', kid: 'rsa-2' })
  await rejectsWith(verifier([provider([rsa, rsa2])]).verify(noKid), 'ERR_JWT_KID_MISSING', noKid)
  await rejectsWith(verifier([provider([rsa])]).verify(rawSign({ alg: 'RS256', kid: 'nope' }, payload(), rsa.privateJwk)), 'ERR_JWKS_NO_MATCHING_KEY')
})

test('provider selection prefers the provider whose issuer equals iss, even when kids collide', async () => {
  const a = await generateSigningKey({ alg: 'ES256', kid: 'shared' })
  const b = await generateSigningKey({ alg: 'ES256', kid: 'shared' })
  const v = verifier([
    provider([a], { name: 'a', issuer: 'https://a.example' }),
    provider([b], { name: 'b', issuer: 'https://b.example' }),
  ])
  const rb = await v.verify(await sign(b, {}, { issuer: 'https://b.example' }))
  assert.equal(rb.provider.name, 'b')
  const ra = await v.verify(await sign(a, {}, { issuer: 'https://a.example' }))
  assert.equal(ra.provider.name, 'a')
  await rejectsWith(v.verify(await sign(b, {}, { issuer: 'https://a.example' })), 'ERR_JWT_SIGNATURE_INVALID')
})

test('roles: verify({ role }) needs the provider to allow it, also on a cache hit', async () => {
  const events: VerifierEvent[] = []
  const v = verifier([provider([rsa], { roles: ['authenticated', 'anonymous'] })], { onEvent: (e) => events.push(e) })
  const token = await sign(rsa)
  await v.verify(token, { role: 'authenticated' })
  await v.verify(token, { role: 'anonymous' })
  assert.ok(events.some((e) => e.kind === 'token-cache' && e.result === 'hit'))
  await rejectsWith(v.verify(token, { role: 'admin' }), 'ERR_ROLE_NOT_ALLOWED', token)
  await rejectsWith(verifier([provider([rsa])]).verify(token, { role: 'anonymous' }), 'ERR_ROLE_NOT_ALLOWED')
})

test('no providers, bad provider configs', async () => {
  await rejectsWith(verifier([]).verify(await sign(rsa)), 'ERR_NO_PROVIDERS')
  assert.throws(() => new Verifier({ providers: [{ name: 'x', jwks: { keys: [] }, algorithms: ['HS256' as never] }] }), { code: 'ERR_INVALID_CONFIG' })
  assert.throws(() => new Verifier({ providers: [{ name: 'x', jwksUrl: 'file:///etc/passwd' }] }), { code: 'ERR_INVALID_CONFIG' })
  assert.throws(() => new Verifier({ providers: [{ name: 'x' }] }), { code: 'ERR_INVALID_CONFIG' })
  assert.throws(() => new Verifier({ providers: [provider([rsa]), provider([ec])] }), { code: 'ERR_INVALID_CONFIG' })
})

test('the verified-token cache: hits, re-checks exp, ends at maxTtlMs, dropped on provider change', async () => {
  let clock = NOW
  const events: string[] = []
  const v = new Verifier({
    providers: [provider([rsa])],
    now: () => clock,
    cache: { maxTtlMs: 60_000 },
    onEvent: (e) => events.push(e.kind === 'token-cache' ? `cache_${e.result}` : e.kind),
  })
  const token = await sign(rsa, {}, { expiresIn: 120 })
  await v.verify(token)
  await v.verify(token)
  assert.deepEqual(events.filter((e) => e.startsWith('cache')), ['cache_miss', 'cache_hit'])
  assert.equal(v.stats().cache_entries, 1)
  clock = NOW + 61_000 // past maxTtlMs, token still valid: verified afresh
  events.length = 0
  await v.verify(token)
  assert.deepEqual(events.filter((e) => e.startsWith('cache')), ['cache_miss'])
  clock = NOW + 121_000 + 30_000 // past exp + leeway: the cached entry must not answer
  await rejectsWith(v.verify(token), 'ERR_JWT_EXPIRED', token)
  clock = NOW
  await v.verify(token)
  v.setProviders([provider([rsa], { roles: ['authenticated', 'anonymous'] })])
  assert.equal(v.stats().cache_entries, 0)
  events.length = 0
  await v.verify(token, { role: 'anonymous' })
  assert.deepEqual(events.filter((e) => e.startsWith('cache')), ['cache_miss'])
  v.setProviders([])
  await rejectsWith(v.verify(token), 'ERR_NO_PROVIDERS')
  v.close()
})

test('verify() as a function, and a guide-style token made with jose SignJWT', async () => {
  const key = await importJWK(rsa.privateJwk as never, 'RS256')
  const token = await new SignJWT({ tenant_id: 't9', sub: 'u9' })
    .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key)
  const r = await verify(token, [provider([rsa])], { role: 'authenticated' })
  assert.equal(r.claims.tenant_id, 't9')
})
