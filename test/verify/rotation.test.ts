/**
 * Rotation against a running `jwks serve`: after `keys rotate` old and new tokens both verify and the
 * Verifier picks up the new kid without a restart of either; after `keys retire` the old key is refused.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { Verifier } from '../../src/verify/index.js'
import { runCli, startCli } from '../helpers/cli.js'
import { rejectsWith } from './helpers.js'
import { tempDir } from '../helpers/fs.js'

test('rotate and retire against a running jwks serve', async (t) => {
  const dir = await tempDir('pga-jwt-', t)
  assert.equal((await runCli(['keys', 'generate', '--dir', dir])).code, 0)
  const oldKid = JSON.parse(await readFile(path.join(dir, 'public.jwk.json'), 'utf8')).kid as string
  const server = await startCli(['jwks', 'serve', '--dir', dir, '--port', '0', '--max-age', '0'], /JWKS: (http:\/\/\S+)/)
  t.after(() => server.stop())
  const url = server.match[1]!
  const signWith = async () => {
    const r = await runCli(['token', 'sign', '--key', dir, '--sub', 'u1', '--claim', 'tenant_id=t1'])
    assert.equal(r.code, 0, r.stderr)
    return r.stdout.trim()
  }
  const kids = async () => ((await (await fetch(url)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)

  const oldToken = await signWith()
  let fetches = 0
  const verifier = new Verifier({
    providers: [{ name: 'app', jwksUrl: url }],
    jwksCooldownMs: 0, // real clock here; no cooldown so the unknown kid refetches at once
    onEvent: (e) => { if (e.kind === 'jwks-fetch' && e.ok) fetches++ },
  })
  t.after(() => verifier.close())
  await verifier.verify(oldToken)
  assert.equal(fetches, 1)

  const rotated = await runCli(['keys', 'rotate', '--dir', dir, '--alg', 'ES256'])
  assert.equal(rotated.code, 0, rotated.stderr)
  const newToken = await signWith()
  const newKid = JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString()).kid as string
  assert.notEqual(newKid, oldKid)
  assert.deepEqual((await kids()).sort(), [oldKid, newKid].sort())

  // The running verifier learns the new kid by itself (one refetch); the old token still verifies.
  assert.equal((await verifier.verify(newToken)).header.kid, newKid)
  assert.equal(fetches, 2)
  await verifier.verify(oldToken)
  // And so does an independent verifier (jose's remote set).
  for (const token of [oldToken, newToken]) await jwtVerify(token, createRemoteJWKSet(new URL(url)))

  const list = await runCli(['keys', 'list', '--dir', dir, '--json'])
  assert.deepEqual(
    (JSON.parse(list.stdout) as { kid: string; state: string }[]).map((k) => [k.kid, k.state]),
    [[newKid, 'current'], [oldKid, 'previous']],
  )

  const retireCurrent = await runCli(['keys', 'retire', '--dir', dir, `--kid=${newKid}`])
  assert.notEqual(retireCurrent.code, 0)
  assert.match(retireCurrent.stderr, /current signing key/)
  const retired = await runCli(['keys', 'retire', '--dir', dir, `--kid=${oldKid}`])
  assert.equal(retired.code, 0, retired.stderr)
  assert.deepEqual(await kids(), [newKid])

  // The old token was cached as verified; the key change drops that entry.
  await verifier.refresh()
  await rejectsWith(verifier.verify(oldToken), 'ERR_JWKS_NO_MATCHING_KEY', oldToken)
  await verifier.verify(newToken)
  const fresh = new Verifier({ providers: [{ name: 'app', jwksUrl: url }] })
  await rejectsWith(fresh.verify(oldToken), 'ERR_JWKS_NO_MATCHING_KEY', oldToken)
  fresh.close()
  await assert.rejects(jwtVerify(oldToken, createRemoteJWKSet(new URL(url))))
  const listed = JSON.parse((await runCli(['keys', 'list', '--dir', dir, '--json'])).stdout) as { kid: string; state: string }[]
  assert.equal(listed.find((k) => k.kid === oldKid)?.state, 'retired')
  assert.equal(await server.stop('SIGINT'), 0)
})
