/**
 * Every attack token of the corpus (attack-tokens.ts) through every transport: HTTP `/sql`, the wire protocol
 * over TCP (`pg`) and over WebSocket (Neon's `Client`). Each is refused with its own error code (read from the
 * verifier's events) and the transport's auth SQLSTATE, and nothing runs: the statement would insert into
 * `security_audit`, which stays empty, and Postgres logs no login of a restricted role (`log_connections`).
 * A valid token then does both, so the two checks can fail.
 *
 * Also: signed tokens with Unicode tricks in `sub`/`tenant_id` verify but match nobody's rows, duplicate `sub`
 * members resolve to the last one everywhere, and an expired token is refused even while it sits in the
 * verified-token cache.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { ATTACK_TOKENS, goodClaims, priv, signRaw, type AttackContext } from './attack-tokens.js'
import { alice, bob, startStack, TRANSPORTS, type Stack } from './stack.js'

let s: Stack
let skewMs = 0
let ctx: AttackContext
before(async () => {
  s = await startStack({ poolSize: 2, now: () => Date.now() + skewMs })
  ctx = { keys: s.keys, valid: await s.token() }
})
after(() => s?.close())

const INSERT = 'insert into security_audit default values returning id'
const lastFailure = (from: number) => {
  const e = s.verifierEvents.slice(from).filter((x) => x.kind === 'verify-failed').at(-1)
  return e && e.kind === 'verify-failed' ? e.code : undefined
}

test('the corpus has at least 40 distinct attack tokens', () => {
  assert.ok(ATTACK_TOKENS.length >= 40, `only ${ATTACK_TOKENS.length}`)
  assert.equal(new Set(ATTACK_TOKENS.map((a) => a.name)).size, ATTACK_TOKENS.length)
})

test('every attack token is refused on every transport with its code, and nothing runs', async () => {
  let tried = 0
  for (const attack of ATTACK_TOKENS) {
    const token = attack.make(ctx)
    for (const transport of TRANSPORTS) {
      const mark = s.verifierEvents.length
      const out = await s.run(transport, token, INSERT)
      const what = `${attack.name} over ${transport}`
      assert.equal(out.ok, false, `${what}: accepted`)
      if (out.ok) continue
      // A token that is not even three segments is refused before any database work (and over HTTP before
      // the body is read), by the same shape check the verifier makes: no verification happens, so the code
      // is read off the message.
      const code = lastFailure(mark) ?? (/not three base64url segments/.test(out.message) ? 'ERR_TOKEN_MALFORMED' : undefined)
      assert.equal(code, attack.code, `${what}: refused with ${code} (${out.message})`)
      if (transport === 'http') {
        assert.equal(out.status, 400, what)
        assert.equal(out.code, '28000', what)
      } else {
        assert.equal(out.code, '28P01', `${what}: ${out.message}`)
      }
      assert.doesNotMatch(out.message, /eyJ/, `${what}: the error echoes token material`)
      tried++
    }
  }
  assert.equal(await s.auditCount(), 0, 'an attack token ran SQL')
  assert.equal(s.restrictedLogins(), 0, 'an attack token opened a restricted-role backend')
  console.log(`# attack tokens: ${ATTACK_TOKENS.length} tokens x ${TRANSPORTS.length} transports = ${tried} refused`)

  // The control: a valid token runs the same statement on every transport, and both detectors see it.
  for (const transport of TRANSPORTS) assert.equal((await s.run(transport, ctx.valid, INSERT)).ok, true, transport)
  assert.equal(await s.auditCount(), 3)
  assert.ok(s.restrictedLogins() >= 3, `logins seen: ${s.restrictedLogins()}`)
  await s.owner.query('delete from security_audit')
})

test('Unicode tricks in signed claims verify but match no one\'s rows, on every transport', async () => {
  const variants: Record<string, string> = {
    homoglyph: alice.sub.replace(/e/g, '\u0435'), // Cyrillic e
    'zero-width space': alice.sub + '\u200b',
    'zero-width joiner inside': alice.sub.slice(0, 8) + '\u200d' + alice.sub.slice(8),
    'RTL override': '\u202e' + alice.sub,
    'NUL inside': alice.sub.slice(0, 8) + '\u0000' + alice.sub.slice(8),
    'fullwidth digits': alice.sub.replace(/2/g, '\uff12'),
    'upper case': alice.sub.toUpperCase(),
    'trailing space': alice.sub + ' ',
  }
  for (const [name, sub] of Object.entries(variants)) {
    for (const tenant of [alice.tenantId, alice.tenantId.replace(/3/g, '\u0663')]) {
      const token = await s.token({ sub, tenant_id: tenant, role: 'authenticated' })
      for (const transport of TRANSPORTS) {
        const out = await s.run(transport, token, 'select id, tenant_id from users')
        if (!out.ok) {
          // Fails closed (e.g. jsonb refuses \u0000, a non-UUID tenant cannot be cast): fine, never rows.
          assert.match(out.code, /^(22|28)/, `${name} over ${transport}: ${out.code} ${out.message}`)
          continue
        }
        assert.deepEqual(out.rows.filter((r) => r.id === alice.sub || r.id === bob.sub), [], `${name} over ${transport} saw a real user's row`)
        const mine = await s.run(transport, token, 'select count(*)::int as n from users where id = auth.user_id()')
        if (mine.ok) assert.equal(mine.rows[0]!.n, 0, `${name} over ${transport}`)
      }
    }
  }
})

test('duplicate "sub" members: the last one wins, the same on every transport and in the database', async () => {
  // Decision: JSON.parse semantics (the last member), as jose and Postgres' json both apply; the gateway
  // re-serializes the verified object, so the database sees exactly one sub and policy applies to that one.
  const payload = JSON.stringify(goodClaims()).replace('{', `{"sub":"${bob.sub}",`)
  assert.equal((payload.match(/"sub"/g) ?? []).length, 2)
  const token = signRaw('RS256', priv(s.keys.rs), JSON.stringify({ alg: 'RS256', kid: 'rs-1' }), payload)
  for (const transport of TRANSPORTS) {
    const out = await s.run(transport, token, "select auth.user_id() as me, (select string_agg(id::text, ',') from users) as ids")
    assert.equal(out.ok, true, `${transport}: ${JSON.stringify(out)}`)
    if (!out.ok) continue
    assert.equal(out.rows[0]!.me, alice.sub, transport)
    assert.equal(out.rows[0]!.ids, alice.sub, transport)
  }
})

test('an expired token is refused even though it sits in the verified-token cache', async () => {
  const token = await s.token()
  for (const transport of TRANSPORTS) assert.equal((await s.run(transport, token, 'select 1')).ok, true, transport)
  const verifier = (await s.gateway.databases.open()).verifier
  const hitsBefore = verifier.stats().cache_hit ?? 0
  assert.equal((await s.run('http', token, 'select 1')).ok, true)
  assert.ok((verifier.stats().cache_hit ?? 0) > hitsBefore, 'the token was not cached')
  skewMs = 11 * 60_000 // past exp (10 min) plus the 30 s leeway
  try {
    for (const transport of TRANSPORTS) {
      const mark = s.verifierEvents.length
      const out = await s.run(transport, token, INSERT)
      assert.equal(out.ok, false, transport)
      assert.equal(lastFailure(mark), 'ERR_JWT_EXPIRED', transport)
    }
  } finally {
    skewMs = 0
  }
  assert.equal(await s.auditCount(), 0)
})
