/**
 * The verifier checks signatures with node:crypto and claims by its own code (src/verify/jws.ts says
 * why), so this file holds it to jose: for the attack-token corpus, for every algorithm we support, for
 * claim variations around each rule, and for thousands of one-character mutations of valid tokens,
 * jose's `jwtVerify` with the same key, algorithms, issuer, audience, leeway and required `exp` is the
 * reference.
 *
 * - whatever the verifier accepts, jose accepts, with the same claims (no false accept);
 * - whatever jose refuses, the verifier refuses; where jose says why (signature, expiry, a claim), the
 *   verifier says the same (except that a payload which does not decode is "malformed" to the verifier,
 *   which decodes before checking the signature, and "signature" to jose, which decodes after);
 * - the verifier may refuse more than jose only for the header parameters it forbids on purpose
 *   (`jku`, `x5u`, `x5c`, `jwk`, `crit`, `b64`), a missing `kid` with several keys, signatures spelled
 *   with non-zero padding bits, and payloads holding a non-finite number (`1e400`, in the corpus).
 *
 * @module
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CompactSign, importJWK, jwtVerify, type JWTVerifyOptions } from 'jose'
import { generateSigningKey, type SigningKey } from '../../src/keys/generate.js'
import { ALGORITHMS, type Algorithm } from '../../src/keys/algorithms.js'
import { Verifier } from '../../src/verify/verifier.js'
import type { ProviderConfig } from '../../src/verify/types.js'
import { ATTACK_TOKENS, goodClaims, priv, signRaw, type AttackContext } from '../security/attack-tokens.js'
import { AUDIENCE, ISSUER } from '../security/stack.js'

const TOLERANCE = 30
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Signs `payload` text under `key` with jose (every algorithm; the header as given). */
async function sign(key: SigningKey, payload: string, header: Record<string, unknown> = {}): Promise<string> {
  const alg = key.publicJwk.alg as Algorithm
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg, kid: key.publicJwk.kid, typ: 'JWT', ...header })
    .sign(await importJWK(key.privateJwk as never, alg))
}

type Outcome = { ok: true; claims: unknown } | { ok: false; code: string }

/** Our codes for jose's, where jose's says why a token was refused. */
const JOSE_TO_OURS: Record<string, string> = {
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'ERR_JWT_SIGNATURE_INVALID',
  ERR_JWT_EXPIRED: 'ERR_JWT_EXPIRED',
}

async function setupKeys(): Promise<{ keys: SigningKey[]; provider: ProviderConfig }> {
  const keys = await Promise.all(ALGORITHMS.map((alg) => generateSigningKey({ alg, kid: `k-${alg}` })))
  // The attack corpus names these kids.
  const named = await Promise.all([
    generateSigningKey({ alg: 'RS256', kid: 'rs-1' }),
    generateSigningKey({ alg: 'ES256', kid: 'es-1' }),
    generateSigningKey({ alg: 'EdDSA', kid: 'ed-1' }),
  ])
  const all = [...keys, ...named]
  const provider: ProviderConfig = {
    name: 'diff',
    jwks: { keys: all.map((k) => k.publicJwk as JsonWebKey) },
    issuer: ISSUER,
    audience: AUDIENCE,
    algorithms: [...ALGORITHMS],
  }
  return { keys: all, provider }
}

function referenceOptions(provider: ProviderConfig): JWTVerifyOptions {
  return {
    algorithms: provider.algorithms!,
    issuer: provider.issuer!,
    audience: provider.audience!,
    clockTolerance: TOLERANCE,
    requiredClaims: ['exp'],
  }
}

async function ours(verifier: Verifier, token: string): Promise<Outcome> {
  try {
    return { ok: true, claims: (await verifier.verify(token)).claims }
  } catch (err) {
    return { ok: false, code: (err as { code: string }).code }
  }
}

async function reference(keys: SigningKey[], provider: ProviderConfig, token: string): Promise<Outcome> {
  try {
    const { payload } = await jwtVerify(token, async (header) => {
      const candidates = keys.filter((k) => (header.kid === undefined || k.publicJwk.kid === header.kid) && k.publicJwk.alg === header.alg)
      if (candidates.length !== 1) throw Object.assign(new Error('no single key'), { code: 'NO_KEY' })
      return importJWK(candidates[0]!.publicJwk as never, header.alg)
    }, referenceOptions(provider))
    return { ok: true, claims: payload }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? 'ERR' }
  }
}

/** Header members the verifier refuses on purpose where jose would go on. */
function forbiddenByPolicy(token: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>
    return ['jku', 'x5u', 'x5c', 'jwk', 'crit', 'b64'].some((m) => Object.hasOwn(header, m)) || header.kid === undefined
  } catch {
    return false
  }
}

function compare(label: string, mine: Outcome, ref: Outcome, token: string, strict: boolean): void {
  if (mine.ok) {
    assert.ok(ref.ok, `${label}: the verifier accepted what jose refuses (${(ref as { code: string }).code})`)
    assert.deepEqual(mine.claims, ref.claims, `${label}: claims differ`)
    return
  }
  if (!ref.ok) {
    const expected = JOSE_TO_OURS[ref.code]
    // The verifier decodes the payload before the signature, jose after: a broken payload is "malformed"
    // to the one and "signature" to the other.
    const reordered = ref.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' && mine.code === 'ERR_TOKEN_MALFORMED'
    if (expected && strict && !forbiddenByPolicy(token) && !reordered) assert.equal(mine.code, expected, `${label}: jose said ${ref.code}`)
    return
  }
  // jose accepts, the verifier refuses: allowed only for the refusals we make on purpose.
  const sig = token.split('.')[2]!
  const nonCanonical = Buffer.from(sig, 'base64url').toString('base64url') !== sig
  assert.ok(!strict || forbiddenByPolicy(token) || nonCanonical, `${label}: jose accepts but the verifier refused with ${mine.code}`)
}

test('the attack-token corpus: never accepted where jose refuses, same reasons where jose gives one', async () => {
  const { keys, provider } = await setupKeys()
  const verifier = new Verifier({ providers: [provider], cache: false, clockToleranceSeconds: TOLERANCE })
  const byKid = (kid: string) => keys.find((k) => k.publicJwk.kid === kid)!
  const ctx: AttackContext = {
    keys: { rs: byKid('rs-1'), es: byKid('es-1'), ed: byKid('ed-1') },
    valid: signRaw('RS256', priv(byKid('rs-1')), JSON.stringify({ alg: 'RS256', kid: 'rs-1', typ: 'JWT' }), JSON.stringify(goodClaims())),
  }
  assert.ok((await ours(verifier, ctx.valid)).ok, 'the valid token verifies')
  let refused = 0
  for (const attack of ATTACK_TOKENS) {
    const token = attack.make(ctx)
    const mine = await ours(verifier, token)
    compare(attack.name, mine, await reference(keys, provider, token), token, false)
    assert.ok(!mine.ok, `${attack.name}: accepted`)
    refused++
  }
  assert.equal(refused, ATTACK_TOKENS.length)
  verifier.close()
})

test('every algorithm, and claims around each rule, decide as jose decides', async () => {
  const { keys, provider } = await setupKeys()
  const verifier = new Verifier({ providers: [provider], cache: false, clockToleranceSeconds: TOLERANCE })
  const s = Math.floor(Date.now() / 1000)
  const variations: Array<[string, Record<string, unknown> | unknown[]]> = [
    ['valid', goodClaims()],
    ['no exp', { ...goodClaims(), exp: undefined }],
    ['exp as a string', goodClaims({ exp: String(s + 600) })],
    ['exp just inside the leeway', goodClaims({ exp: s - TOLERANCE + 1 })],
    ['exp at the leeway', goodClaims({ exp: s - TOLERANCE })],
    ['exp long gone', goodClaims({ exp: s - 3600 })],
    ['nbf inside the leeway', goodClaims({ nbf: s + TOLERANCE })],
    ['nbf past the leeway', goodClaims({ nbf: s + TOLERANCE + 1 })],
    ['nbf as a string', goodClaims({ nbf: 'soon' })],
    ['iat as a string', goodClaims({ iat: 'now' })],
    ['iat in the future', goodClaims({ iat: s + 86400 })],
    ['no iss', { ...goodClaims(), iss: undefined }],
    ['other iss', goodClaims({ iss: 'https://evil.test' })],
    ['iss as an array', goodClaims({ iss: [ISSUER] })],
    ['no aud', { ...goodClaims(), aud: undefined }],
    ['aud in an array', goodClaims({ aud: ['x', AUDIENCE] })],
    ['other aud', goodClaims({ aud: 'other' })],
    ['aud as a number', goodClaims({ aud: 7 })],
    ['aud array without it', goodClaims({ aud: ['x', 'y'] })],
    ['payload is an array', [goodClaims()]],
    ['fractional exp', goodClaims({ exp: s + 600.5 })],
  ]
  let compared = 0
  for (const key of keys) {
    const alg = key.publicJwk.alg as Algorithm
    for (const [name, claims] of variations) {
      const token = await sign(key, JSON.stringify(claims))
      compare(`${alg} ${name}`, await ours(verifier, token), await reference(keys, provider, token), token, true)
      compared++
    }
  }
  // The valid ones really are valid, for every algorithm (else the comparisons above prove little).
  for (const key of keys) {
    const alg = key.publicJwk.alg as Algorithm
    const token = await sign(key, JSON.stringify(goodClaims()))
    assert.ok((await ours(verifier, token)).ok, `${alg} valid token`)
  }
  console.log(`# ${compared} algorithm x claim cases compared with jose`)
  verifier.close()
})

test('one-character mutations of valid tokens: accepted exactly when jose accepts', async () => {
  const { keys, provider } = await setupKeys()
  const verifier = new Verifier({ providers: [provider], cache: false, clockToleranceSeconds: TOLERANCE })
  // A seeded generator: a failure names a mutation that can be replayed.
  let seed = 0x9e3779b9
  const rand = (n: number) => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return seed % n
  }
  let compared = 0
  let accepted = 0
  for (const key of keys) {
    const alg = key.publicJwk.alg as Algorithm
    const token = await sign(key, JSON.stringify(goodClaims()))
    const mutations = [token]
    for (let i = 0; i < 150; i++) {
      const at = rand(token.length)
      if (token[at] === '.') continue
      const c = B64URL[rand(64)]!
      mutations.push(token.slice(0, at) + c + token.slice(at + 1))
    }
    for (let cut = 1; cut <= 4; cut++) mutations.push(token.slice(0, -cut))
    mutations.push(`${token}A`, `${token}AA`)
    for (const [i, m] of mutations.entries()) {
      const mine = await ours(verifier, m)
      compare(`${alg} mutation #${i}`, mine, await reference(keys, provider, m), m, true)
      if (mine.ok) accepted++
      compared++
    }
  }
  assert.ok(accepted >= keys.length, 'every unmutated token is accepted')
  console.log(`# ${compared} mutated tokens compared with jose, ${accepted} accepted by both`)
  verifier.close()
})
