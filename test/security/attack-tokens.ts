/**
 * The attack-token corpus: crafted JWTs covering RFC 8725 (JWT Best Current Practices) and the attacks seen in
 * practice, each with the error code the verifier must refuse it with. Data, not tests: attack-tokens.test.ts
 * sends every entry through every transport.
 *
 * Tokens are hand-assembled (header and payload JSON written as text, signed with node:crypto) because the
 * point is to produce what no well-behaved library would sign: duplicate members, `alg: none`, zero
 * signatures, forbidden header parameters.
 *
 * @module
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import type { ErrorCode } from '../../src/errors.js'
import type { SigningKey } from '../../src/keys/generate.js'
import { alice, AUDIENCE, ISSUER } from './stack.js'

export interface AttackContext {
  keys: { rs: SigningKey; es: SigningKey; ed: SigningKey }
  /** A valid token for Alice, signed with the RS256 key. */
  valid: string
}

export interface AttackToken {
  name: string
  /** RFC 8725 section or CVE it exercises, for docs/security.md. */
  ref: string
  make(ctx: AttackContext): string
  /** What the verifier refuses it with. */
  code: ErrorCode
}

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url')
const json = (v: unknown) => b64(JSON.stringify(v))
const now = () => Math.floor(Date.now() / 1000)

/** Alice's claims as a valid token carries them. */
export const goodClaims = (extra: Record<string, unknown> = {}) => ({
  sub: alice.sub,
  tenant_id: alice.tenantId,
  role: 'authenticated',
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now(),
  exp: now() + 600,
  ...extra,
})

type Alg = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA' | 'HS256' | 'HS384' | 'HS512'

function signature(alg: Alg, key: KeyObject | Buffer | string, input: string): string {
  if (alg.startsWith('HS')) return createHmac(`sha${alg.slice(2)}`, key as Buffer).update(input).digest('base64url')
  const k = key as KeyObject
  if (alg === 'RS256') return sign('sha256', Buffer.from(input), k).toString('base64url')
  if (alg === 'PS256') return sign('sha256', Buffer.from(input), { key: k, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }).toString('base64url')
  if (alg === 'ES256') return sign('sha256', Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  if (alg === 'ES384') return sign('sha384', Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  return sign(null, Buffer.from(input), k).toString('base64url')
}

/** Signs raw header and payload *text* (so duplicate members and odd JSON survive). */
export function signRaw(alg: Alg, key: KeyObject | Buffer | string, headerText: string, payloadText: string): string {
  const input = `${b64(headerText)}.${b64(payloadText)}`
  return `${input}.${signature(alg, key, input)}`
}

export const priv = (k: SigningKey) => createPrivateKey({ key: k.privateJwk as never, format: 'jwk' })
const pubPem = (k: SigningKey) => createPublicKey({ key: k.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string

/** A key pair nobody registered. */
const attacker = {
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
}

const rsHeader = (extra: Record<string, unknown> = {}) => JSON.stringify({ alg: 'RS256', kid: 'rs-1', typ: 'JWT', ...extra })
const withRs = (ctx: AttackContext, header: string, payload: string) => signRaw('RS256', priv(ctx.keys.rs), header, payload)
const goodPayload = (extra: Record<string, unknown> = {}) => JSON.stringify(goodClaims(extra))
const sigOf = (token: string) => token.split('.')[2]!

function noneToken(alg: string, ctx: AttackContext): string {
  // The signature of a real token is kept, as a stripping attack would: only the header changes.
  return `${json({ alg, kid: 'rs-1', typ: 'JWT' })}.${json(goodClaims())}.${sigOf(ctx.valid)}`
}

function nested(depth: number): unknown {
  let v: unknown = 'x'
  for (let i = 0; i < depth; i++) v = { a: v }
  return v
}

export const ATTACK_TOKENS: readonly AttackToken[] = [
  // alg none, every casing (RFC 8725 3.1, 2.1)
  ...['none', 'None', 'NONE', 'nOnE', 'noNE'].map((alg): AttackToken => ({
    name: `alg "${alg}" with a real token's signature`, ref: 'RFC 8725 2.1/3.1', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: (ctx) => noneToken(alg, ctx),
  })),
  { name: 'alg none, empty signature segment', ref: 'RFC 8725 2.1', code: 'ERR_TOKEN_MALFORMED',
    make: () => `${json({ alg: 'none', typ: 'JWT' })}.${json(goodClaims())}.` },
  { name: 'signature stripped (two segments and a dot)', ref: 'RFC 8725 2.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => ctx.valid.slice(0, ctx.valid.lastIndexOf('.') + 1) },
  { name: "payload swapped under a real token's signature", ref: 'RFC 8725 3.1', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: (ctx) => `${ctx.valid.split('.')[0]}.${json(goodClaims({ sub: 'someone-else' }))}.${sigOf(ctx.valid)}` },
  // Key confusion: the public key as HMAC secret (RFC 8725 2.1, 3.1; CVE-2015-9235 class)
  { name: 'HS256 signed with the RSA public key PEM', ref: 'RFC 8725 2.1 (key confusion)', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => signRaw('HS256', Buffer.from(pubPem(ctx.keys.rs)), JSON.stringify({ alg: 'HS256', kid: 'rs-1', typ: 'JWT' }), goodPayload()) },
  { name: 'HS256 signed with the RSA public JWK JSON', ref: 'RFC 8725 2.1 (key confusion)', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => signRaw('HS256', Buffer.from(JSON.stringify(ctx.keys.rs.publicJwk)), JSON.stringify({ alg: 'HS256', kid: 'rs-1' }), goodPayload()) },
  { name: 'HS384 with the EC public key PEM, no kid', ref: 'RFC 8725 2.1 (key confusion)', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => signRaw('HS384', Buffer.from(pubPem(ctx.keys.es)), JSON.stringify({ alg: 'HS384' }), goodPayload()) },
  { name: 'HS512 with the Ed25519 public key PEM', ref: 'RFC 8725 2.1 (key confusion)', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => signRaw('HS512', Buffer.from(pubPem(ctx.keys.ed)), JSON.stringify({ alg: 'HS512', kid: 'ed-1' }), goodPayload()) },
  // ECDSA psychic signatures (CVE-2022-21449) and wrong curves (RFC 8725 3.4)
  { name: 'ES256 with r = s = 0 (psychic signature, raw)', ref: 'CVE-2022-21449', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => `${json({ alg: 'ES256', kid: 'es-1' })}.${json(goodClaims())}.${b64(Buffer.alloc(64))}` },
  { name: 'ES256 with r = s = 0, DER encoded', ref: 'CVE-2022-21449', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => `${json({ alg: 'ES256', kid: 'es-1' })}.${json(goodClaims())}.${b64(Buffer.from('3006020100020100', 'hex'))}` },
  { name: 'ES256 with r = s = n (the P-256 group order)', ref: 'CVE-2022-21449', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => {
      const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex')
      return `${json({ alg: 'ES256', kid: 'es-1' })}.${json(goodClaims())}.${b64(Buffer.concat([n, n]))}`
    } },
  { name: 'ES256 header, signed with a P-384 key (wrong curve)', ref: 'RFC 8725 3.4', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => signRaw('ES384', attacker.p384, JSON.stringify({ alg: 'ES256', kid: 'es-1' }), goodPayload()) },
  { name: 'ES384 header naming the P-256 key', ref: 'RFC 8725 3.4', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: () => signRaw('ES384', attacker.p384, JSON.stringify({ alg: 'ES384', kid: 'es-1' }), goodPayload()) },
  { name: 'ES256 header naming the Ed25519 key', ref: 'RFC 8725 3.1', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: () => signRaw('ES256', attacker.p256, JSON.stringify({ alg: 'ES256', kid: 'ed-1' }), goodPayload()) },
  { name: 'RS256 header naming the EC key', ref: 'RFC 8725 3.1', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: 'es-1' }), goodPayload()) },
  { name: 'PS256 with the real RSA key (alg not allowed, key pinned to RS256)', ref: 'RFC 8725 3.1', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => signRaw('PS256', priv(ctx.keys.rs), JSON.stringify({ alg: 'PS256', kid: 'rs-1' }), goodPayload()) },
  { name: 'alg "rs256" (wrong case)', ref: 'RFC 8725 3.1', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => withRs(ctx, rsHeader({ alg: 'rs256' }), goodPayload()) },
  { name: 'alg "RS256 " (trailing space)', ref: 'RFC 8725 3.1', code: 'ERR_JWT_ALG_NOT_ALLOWED',
    make: (ctx) => withRs(ctx, rsHeader({ alg: 'RS256 ' }), goodPayload()) },
  // kid tricks (RFC 8725 3.10)
  { name: 'kid with path traversal', ref: 'RFC 8725 3.10', code: 'ERR_JWKS_NO_MATCHING_KEY',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: '../../../../../../dev/null' }), goodPayload()) },
  { name: 'kid with SQL injection', ref: 'RFC 8725 3.10', code: 'ERR_JWKS_NO_MATCHING_KEY',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: "rs-1' or '1'='1'; drop table users; --" }), goodPayload()) },
  { name: 'kid 4,000 characters long', ref: 'RFC 8725 3.10', code: 'ERR_JWKS_NO_MATCHING_KEY',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: 'k'.repeat(4000) }), goodPayload()) },
  { name: 'kid a number', ref: 'RFC 8725 3.10', code: 'ERR_TOKEN_MALFORMED',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: 1 }), goodPayload()) },
  { name: 'kid an object', ref: 'RFC 8725 3.10', code: 'ERR_TOKEN_MALFORMED',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: { $ne: null } }), goodPayload()) },
  { name: 'kid null', ref: 'RFC 8725 3.10', code: 'ERR_TOKEN_MALFORMED',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: null }), goodPayload()) },
  // Header parameters that make a verifier fetch or trust a key the token names (RFC 8725 3.10, RFC 7515 4.1)
  { name: 'jku pointing at an attacker JWKS', ref: 'RFC 8725 3.10', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ jku: 'http://127.0.0.1:1/jwks.json' }), goodPayload()) },
  { name: 'x5u pointing at an attacker certificate', ref: 'RFC 8725 3.10', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ x5u: 'http://127.0.0.1:1/cert.pem' }), goodPayload()) },
  { name: 'embedded jwk (the signer\'s own key)', ref: 'CVE-2018-0114', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ jwk: createPublicKey(attacker.rsa).export({ format: 'jwk' }) }), goodPayload()) },
  { name: 'x5c with a self-made chain', ref: 'RFC 8725 3.10', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ x5c: ['MIIB'] }), goodPayload()) },
  { name: 'crit naming exp', ref: 'RFC 7515 4.1.11', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: (ctx) => withRs(ctx, rsHeader({ crit: ['exp'], exp: 0 }), goodPayload()) },
  { name: 'b64: false (unencoded payload)', ref: 'RFC 7797', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: (ctx) => withRs(ctx, rsHeader({ b64: false, crit: ['b64'] }), goodPayload()) },
  { name: 'b64: false without crit', ref: 'RFC 7797', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: (ctx) => withRs(ctx, rsHeader({ b64: false }), goodPayload()) },
  { name: 'nested JWT (cty JWT, payload an unsigned inner token)', ref: 'RFC 8725 2.8/3.11', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => withRs(ctx, rsHeader({ cty: 'JWT' }), `${json({ alg: 'none' })}.${json(goodClaims({ sub: 'admin' }))}.`) },
  // Size and shape (RFC 8725 3.x, resource exhaustion)
  { name: 'oversized token (9,000 bytes)', ref: 'RFC 8725 (DoS)', code: 'ERR_TOKEN_TOO_LARGE',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ pad: 'p'.repeat(6500) })) },
  { name: 'deeply nested payload (800 levels), untrusted signer', ref: 'RFC 8725 (DoS)', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => signRaw('RS256', attacker.rsa, rsHeader(), JSON.stringify({ ...goodClaims(), deep: nested(800) })) },
  { name: 'a token from another key, same kid', ref: 'RFC 8725 3.1', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: () => signRaw('RS256', attacker.rsa, rsHeader(), goodPayload()) },
  { name: 'a token from another key, its own kid', ref: 'RFC 8725 3.1', code: 'ERR_JWKS_NO_MATCHING_KEY',
    make: () => signRaw('RS256', attacker.rsa, rsHeader({ kid: 'attacker-1' }), goodPayload()) },
  // Duplicate members: JSON.parse (jose) keeps the last one, consistently, and policy is checked on that one.
  { name: 'duplicate "alg" in the header, the last one none', ref: 'RFC 7515 5.2 (duplicate members)', code: 'ERR_JWT_HEADER_FORBIDDEN',
    make: (ctx) => withRs(ctx, '{"alg":"RS256","kid":"rs-1","alg":"none"}', goodPayload()) },
  { name: 'duplicate "exp", the last one in the past', ref: 'RFC 7519 4 (duplicate members)', code: 'ERR_JWT_EXPIRED',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload().replace(/}$/, `,"exp":${now() - 3600}}`)) },
  { name: 'duplicate "iss", the last one foreign', ref: 'RFC 7519 4 (duplicate members)', code: 'ERR_JWT_ISSUER_MISMATCH',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload().replace(/}$/, `,"iss":"https://evil.example"}`)) },
  // Registered claims of the wrong type, missing, or out of range (RFC 8725 3.8, 3.9)
  { name: 'exp a string', ref: 'RFC 7519 4.1.4', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ exp: String(now() + 600) })) },
  { name: 'exp null', ref: 'RFC 7519 4.1.4', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ exp: null })) },
  { name: 'exp missing', ref: 'RFC 8725 3.8', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), JSON.stringify({ ...goodClaims(), exp: undefined })) },
  { name: 'nbf a string', ref: 'RFC 7519 4.1.5', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ nbf: 'yesterday' })) },
  // JSON.parse reads 1e400 as Infinity: an exp that never passes; re-serialized, a custom claim would become null.
  { name: 'exp 1e400 (Infinity)', ref: 'RFC 7519 4.1.4', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload().replace(/"exp":\d+/, '"exp":1e400')) },
  { name: 'a custom claim -1e400 (-Infinity)', ref: 'RFC 8259 6', code: 'ERR_JWT_CLAIM_INVALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload().replace(/}$/, ',"quota":-1e400}')) },
  { name: 'exp 120 s in the past (beyond the 30 s leeway)', ref: 'RFC 7519 4.1.4', code: 'ERR_JWT_EXPIRED',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ exp: now() - 120 })) },
  { name: 'nbf 120 s in the future (beyond the 30 s leeway)', ref: 'RFC 7519 4.1.5', code: 'ERR_JWT_NOT_YET_VALID',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ nbf: now() + 120 })) },
  { name: 'wrong iss', ref: 'RFC 8725 3.8', code: 'ERR_JWT_ISSUER_MISMATCH',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ iss: 'https://evil.example' })) },
  { name: 'iss missing', ref: 'RFC 8725 3.8', code: 'ERR_JWT_ISSUER_MISMATCH',
    make: (ctx) => withRs(ctx, rsHeader(), JSON.stringify({ ...goodClaims(), iss: undefined })) },
  { name: 'wrong aud', ref: 'RFC 8725 3.9', code: 'ERR_JWT_AUDIENCE_MISMATCH',
    make: (ctx) => withRs(ctx, rsHeader(), goodPayload({ aud: 'another-service' })) },
  { name: 'aud missing', ref: 'RFC 8725 3.9', code: 'ERR_JWT_AUDIENCE_MISMATCH',
    make: (ctx) => withRs(ctx, rsHeader(), JSON.stringify({ ...goodClaims(), aud: undefined })) },
  { name: 'payload a JSON array', ref: 'RFC 7519 7.2', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => withRs(ctx, rsHeader(), '[1,2,3]') },
  { name: 'header a JSON array', ref: 'RFC 7515 5.2', code: 'ERR_TOKEN_MALFORMED',
    make: () => `${json([1])}.${json(goodClaims())}.${b64('sig')}` },
  // Truncation and encoding (RFC 7515 7.1)
  { name: 'signature truncated by 4 characters', ref: 'RFC 7515 7.1', code: 'ERR_JWT_SIGNATURE_INVALID',
    make: (ctx) => ctx.valid.slice(0, -4) },
  { name: 'payload truncated mid-JSON', ref: 'RFC 7515 7.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => { const [h, p, s] = ctx.valid.split('.'); return `${h}.${p!.slice(0, 20)}.${s}` } },
  { name: 'two segments only', ref: 'RFC 7515 7.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => ctx.valid.split('.').slice(0, 2).join('.') },
  { name: 'four segments', ref: 'RFC 7515 7.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => `${ctx.valid}.${sigOf(ctx.valid)}` },
  { name: 'five segments (JWE shape)', ref: 'RFC 8725 3.11', code: 'ERR_TOKEN_MALFORMED',
    make: () => `${json({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.AAAA.AAAA.AAAA.AAAA` },
  { name: 'base64 (not base64url) signature with + / =', ref: 'RFC 7515 2', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => `${ctx.valid.split('.').slice(0, 2).join('.')}.${Buffer.from(sigOf(ctx.valid), 'base64url').toString('base64')}` },
  { name: 'Latin-1 letter inside the header segment', ref: 'RFC 7515 2', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => ctx.valid.replace(/^(.{5})/, '$1\u00e9') },
  { name: 'space inside the token', ref: 'RFC 7515 7.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => ctx.valid.replace('.', '. ') },
  { name: 'tab inside the token', ref: 'RFC 7515 7.1', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => ctx.valid.replace('.', '\t.') },
  { name: 'payload segment not JSON', ref: 'RFC 7519 7.2', code: 'ERR_TOKEN_MALFORMED',
    make: (ctx) => `${ctx.valid.split('.')[0]}.${b64('not json at all')}.${sigOf(ctx.valid)}` },
]
