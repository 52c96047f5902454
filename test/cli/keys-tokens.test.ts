/**
 * The `keys` and `token` commands through the real CLI: defaults and files of `keys generate`, the
 * claims `token sign` produces, `token verify`, and bad input that must fail clearly and change nothing.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose'
import { main } from '../../src/cli/main.js'
import { runCli } from '../helpers/cli.js'
import { snapshot } from '../verify/helpers.js'
import { tempDir } from '../helpers/fs.js'

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>

test('keys generate: RS256 by default, thumbprint kid, 0600 private key, ./keys under the cwd, no overwrite', async (t) => {
  const cwd = await tempDir('pga-jwt-', t)
  // In process, to give the command a working directory of its own (the child-process helper runs from the repo).
  const inProcess = async (argv: string[]) => {
    const r = { code: 0, stdout: '', stderr: '' }
    r.code = await main(argv, { cwd, env: {}, stdout: (s) => void (r.stdout += s + '\n'), stderr: (s) => void (r.stderr += s + '\n') })
    return r
  }
  const r = await inProcess(['keys', 'generate'])
  assert.equal(r.code, 0, r.stderr)
  const dir = path.join(cwd, 'keys')
  const priv = await readJson(path.join(dir, 'private.jwk.json'))
  const pub = await readJson(path.join(dir, 'public.jwk.json'))
  assert.equal((await stat(path.join(dir, 'private.jwk.json'))).mode & 0o777, 0o600)
  for (const jwk of [priv, pub]) {
    assert.equal(jwk.kty, 'RSA')
    assert.equal(jwk.alg, 'RS256')
    assert.equal(jwk.use, 'sig')
  }
  assert.equal(Buffer.from(String(pub.n), 'base64url').length * 8, 2048)
  assert.equal(typeof priv.d, 'string')
  assert.equal(pub.d, undefined)
  const { kid: _k, alg: _a, use: _u, ...material } = pub
  assert.equal(pub.kid, await calculateJwkThumbprint(material as never))
  assert.equal(priv.kid, pub.kid)
  assert.ok(!r.stdout.includes(String(priv.d)))

  const before = await snapshot(dir)
  const again = await inProcess(['keys', 'generate'])
  assert.notEqual(again.code, 0)
  assert.match(again.stderr, /ERR_KEY_EXISTS.*already exists/)
  assert.deepEqual(await snapshot(dir), before)

  const forced = await inProcess(['keys', 'generate', '--force', '--alg', 'EdDSA', '--kid', 'ed-main'])
  assert.equal(forced.code, 0, forced.stderr)
  const edPub = await readJson(path.join(dir, 'public.jwk.json'))
  assert.deepEqual([edPub.kty, edPub.crv, edPub.alg, edPub.kid], ['OKP', 'Ed25519', 'EdDSA', 'ed-main'])
  const list = JSON.parse((await inProcess(['keys', 'list', '--json'])).stdout) as Record<string, string>[]
  assert.deepEqual(list.map((k) => [k.kid, k.alg, k.state]), [['ed-main', 'EdDSA', 'current']])
  assert.ok(!Number.isNaN(Date.parse(list[0]!.created!)))
})

test('token sign: claims, defaults and options; the key from a directory or the environment', async (t) => {
  const dir = await tempDir('pga-jwt-', t)
  assert.equal((await runCli(['keys', 'generate', '--alg', 'ES256', '--dir', dir, '--kid', 'es'])).code, 0)
  const r = await runCli(['token', 'sign', '--key', dir, '--sub', 'user-1', '--claim', 'tenant_id=abc', '--claim', 'n=42',
    '--claim', 'permissions=["read","write"]', '--claims', '{"role":"authenticated","tenant_id":"overridden"}',
    '--expires-in', '15m', '--issuer', 'https://iss.example', '--audience', 'api', '--not-before', '1m'])
  assert.equal(r.code, 0, r.stderr)
  const token = r.stdout.trim()
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'ES256', kid: 'es', typ: 'JWT' })
  const claims = decodeJwt(token)
  assert.equal(claims.sub, 'user-1')
  assert.equal(claims.tenant_id, 'abc')
  assert.equal(claims.n, 42)
  assert.deepEqual(claims.permissions, ['read', 'write'])
  assert.equal(claims.role, 'authenticated')
  assert.equal(claims.exp, claims.iat! + 900)
  assert.equal(claims.nbf, claims.iat! + 60)
  assert.equal(claims.iss, 'https://iss.example')
  assert.equal(claims.aud, 'api')

  const env = { PG_AUTHORIZE_PRIVATE_KEY: await readFile(path.join(dir, 'private.jwk.json'), 'utf8') }
  const fromEnv = await runCli(['token', 'sign', '--sub', 'u2'], { env })
  assert.equal(fromEnv.code, 0, fromEnv.stderr)
  const c2 = decodeJwt(fromEnv.stdout.trim())
  assert.equal(c2.exp, c2.iat! + 3600)

  // token verify: from an argument and from stdin; a tampered token fails with its code and exit 1.
  const ok = await runCli(['token', 'verify', '--jwks', path.join(dir, 'public.jwk.json'), '--issuer', 'https://iss.example', token])
  assert.equal(ok.code, 1) // nbf one minute ahead is beyond the 30 s leeway
  assert.match(ok.stderr, /^error \[ERR_JWT_NOT_YET_VALID\]/)
  const viaStdin = await runCli(['token', 'verify', '--jwks', dir, '--algorithms', 'ES256', '-'], { input: fromEnv.stdout })
  assert.equal(viaStdin.code, 0, viaStdin.stderr)
  const out = JSON.parse(viaStdin.stdout) as { header: { kid: string }; claims: { sub: string } }
  assert.equal(out.header.kid, 'es')
  assert.equal(out.claims.sub, 'u2')
  const [h, , s] = fromEnv.stdout.trim().split('.')
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...c2, sub: 'admin' })).toString('base64url')}.${s}`
  const bad = await runCli(['token', 'verify', '--jwks', dir, forged])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /^error \[ERR_JWT_SIGNATURE_INVALID\]: /)
  assert.ok(!bad.stderr.includes(s!) && !bad.stdout.includes(s!))
  const wrongIss = await runCli(['token', 'verify', '--jwks', dir, '--issuer', 'https://other.example', fromEnv.stdout.trim()])
  assert.match(wrongIss.stderr, /ERR_JWT_ISSUER_MISMATCH/)
})

test('bad input gives a clear message and a non-zero exit, and changes no file', async (t) => {
  const root = await tempDir('pga-jwt-', t)
  const good = path.join(root, 'good')
  assert.equal((await runCli(['keys', 'generate', '--dir', good])).code, 0)
  const publicFile = path.join(good, 'public.jwk.json')
  const privateText = await readFile(path.join(good, 'private.jwk.json'), 'utf8')

  const malformed = path.join(root, 'malformed')
  await mkdir(malformed)
  await writeFile(path.join(malformed, 'private.jwk.json'), '{"kty":"RSA", "n": ')
  const wrongType = path.join(root, 'wrong-type')
  await mkdir(wrongType)
  await writeFile(path.join(wrongType, 'private.jwk.json'), await readFile(publicFile)) // a public key where the private one goes
  const hmac = path.join(root, 'hmac.jwk.json')
  await writeFile(hmac, '{"kty":"oct","k":"c2VjcmV0c2VjcmV0","alg":"HS256"}')
  const jwksFile = path.join(root, 'jwks.json')
  await writeFile(jwksFile, JSON.stringify({ keys: [JSON.parse(privateText)] }))
  const pem = path.join(root, 'key.pem')
  await writeFile(pem, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n')

  const sign = (...args: string[]) => ['token', 'sign', '--sub', 'u', ...args]
  const cases: { args: string[]; code: string; message: RegExp; env?: Record<string, string> }[] = [
    { args: sign('--key', path.join(malformed, 'private.jwk.json')), code: 'ERR_KEY_INVALID', message: /not valid JSON/ },
    { args: sign('--key', malformed), code: 'ERR_KEY_INVALID', message: /not valid JSON/ },
    { args: ['keys', 'rotate', '--dir', malformed], code: 'ERR_KEY_INVALID', message: /not valid JSON/ },
    { args: ['keys', 'list', '--dir', malformed], code: 'ERR_KEY_INVALID', message: /not valid JSON/ },
    { args: ['keys', 'rotate', '--dir', wrongType], code: 'ERR_KEY_NOT_PRIVATE', message: /public key/ },
    { args: sign('--key', hmac), code: 'ERR_KEY_INVALID', message: /not an asymmetric signing key/ },
    { args: sign('--key', jwksFile), code: 'ERR_KEY_INVALID', message: /JWK Set/ },
    { args: sign('--key', pem), code: 'ERR_KEY_INVALID', message: /not valid JSON/ },
    { args: sign('--key', publicFile), code: 'ERR_KEY_NOT_PRIVATE', message: /public key; signing needs the private key/ },
    { args: sign(), env: { PG_AUTHORIZE_PRIVATE_KEY: await readFile(publicFile, 'utf8') }, code: 'ERR_KEY_NOT_PRIVATE', message: /PG_AUTHORIZE_PRIVATE_KEY is a public key/ },
    { args: sign('--key', good, '--expires-in', 'soon'), code: 'ERR_INVALID_DURATION', message: /invalid expires-in 'soon'/ },
    { args: sign('--key', good, '--expires-in', '0'), code: 'ERR_INVALID_DURATION', message: /invalid expires-in/ },
    { args: sign('--key', good, '--expires-in=-5m'), code: 'ERR_INVALID_DURATION', message: /invalid expires-in/ },
    { args: sign('--key', good, '--not-before', 'yesterday-ish'), code: 'ERR_INVALID_DURATION', message: /invalid not-before/ },
    { args: sign('--key', good, '--claims', '{"tenant_id": abc}'), code: 'ERR_INVALID_CLAIMS', message: /not valid JSON/ },
    { args: sign('--key', good, '--claims', '["a"]'), code: 'ERR_INVALID_CLAIMS', message: /must be a JSON object/ },
    { args: sign('--key', good, '--claim', 'no-equals-sign'), code: 'ERR_INVALID_CLAIMS', message: /NAME=VALUE/ },
    { args: sign('--key', good, '--claim', 'exp="tomorrow"'), code: 'ERR_INVALID_CLAIMS', message: /wrong type/ },
    { args: ['keys', 'generate', '--dir', good, '--alg', 'HS256'], code: 'ERR_INVALID_ARGUMENT', message: /unsupported --alg/ },
    { args: ['keys', 'retire', '--dir', good, '--kid', 'unknown'], code: 'ERR_KEY_NOT_FOUND', message: /no key with kid/ },
  ]
  const before = await snapshot(root)
  const beforeDirs = await Promise.all([good, malformed, wrongType].map(snapshot))
  const results = await Promise.all(cases.map((c) => runCli(c.args, { env: c.env })))
  for (const [i, r] of results.entries()) {
    const c = cases[i]!
    assert.notEqual(r.code, 0, `${c.args.join(' ')} should fail`)
    assert.equal(r.stdout, '', `${c.args.join(' ')} printed output`)
    assert.match(r.stderr, new RegExp(`^error \\[${c.code}\\]: `), `${c.args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, c.message, `${c.args.join(' ')}: ${r.stderr}`)
    assert.ok(!r.stderr.includes(String(JSON.parse(privateText).d)), 'stderr shows key material')
  }
  assert.deepEqual(await snapshot(root), before)
  assert.deepEqual(await Promise.all([good, malformed, wrongType].map(snapshot)), beforeDirs)
})
