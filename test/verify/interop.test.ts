/**
 * Interop both ways, for RS256, ES256 and EdDSA, through the real CLI:
 * - a token made like the Neon guide (jose SignJWT with kid, tenant_id, sub, exp, iat) verifies
 *   through a running `jwks serve` and the Verifier;
 * - a token from `token sign` verifies with jose's own createRemoteJWKSet + jwtVerify.
 * And the served JWKS never holds a private member.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose'
import { PRIVATE_MEMBERS } from '../../src/keys/index.js'
import { Verifier } from '../../src/verify/index.js'
import { runCli, startCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/fs.js'

for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
  test(`interop both ways with ${alg} through jwks serve`, async (t) => {
    const dir = await tempDir('pga-jwt-', t)
    const gen = await runCli(['keys', 'generate', '--alg', alg, '--dir', dir])
    assert.equal(gen.code, 0, gen.stderr)
    const server = await startCli(['jwks', 'serve', '--dir', dir, '--port', '0'], /JWKS: (http:\/\/\S+)/)
    t.after(() => server.stop())
    const url = server.match[1]!

    const res = await fetch(url)
    assert.equal(res.status, 200)
    const jwks = (await res.json()) as { keys: Record<string, unknown>[] }
    assert.equal(jwks.keys.length, 1)
    for (const key of jwks.keys) for (const m of PRIVATE_MEMBERS) assert.ok(!(m in key), `served ${m}`)
    assert.equal(jwks.keys[0]!.alg, alg)
    assert.equal(jwks.keys[0]!.use, 'sig')

    // 1. The guide's way of signing, verified by our Verifier through the served JWKS.
    const privateJwk = JSON.parse(await readFile(path.join(dir, 'private.jwk.json'), 'utf8'))
    const key = await importJWK(privateJwk, alg)
    const guideToken = await new SignJWT({ tenant_id: 'tenant-42', sub: 'user-7' })
      .setProtectedHeader({ alg, kid: privateJwk.kid })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key)
    const verifier = new Verifier({ providers: [{ name: 'app', jwksUrl: url }] })
    t.after(() => verifier.close())
    const verified = await verifier.verify(guideToken, { role: 'authenticated' })
    assert.equal(verified.claims.tenant_id, 'tenant-42')
    assert.equal(verified.claims.sub, 'user-7')
    assert.equal(verified.header.kid, privateJwk.kid)

    // 2. `token sign`, verified by jose's own remote JWKS.
    const signed = await runCli(['token', 'sign', '--key', path.join(dir, 'private.jwk.json'), '--sub', 'user-8',
      '--claim', 'tenant_id=tenant-43', '--claim', 'permissions=["read","write"]'])
    assert.equal(signed.code, 0, signed.stderr)
    const token = signed.stdout.trim()
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    const header = decodeProtectedHeader(token)
    assert.equal(header.alg, alg)
    assert.equal(header.kid, privateJwk.kid)
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(url)), { algorithms: [alg] })
    assert.equal(payload.sub, 'user-8')
    assert.equal(payload.tenant_id, 'tenant-43')
    assert.deepEqual(payload.permissions, ['read', 'write'])
    assert.equal(typeof payload.iat, 'number')
    assert.equal(payload.exp, payload.iat! + 3600)
  })
}
