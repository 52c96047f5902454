/**
 * The security suite's attack-token corpus (test/security/attack-tokens.ts) against the Data API: every
 * token is refused with 401 in PostgREST's shape, nothing runs (the insert into `security_audit` never
 * happens), no restricted-role backend is opened, and no error echoes token material. A valid token then
 * does the insert, so both detectors can fail.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { ATTACK_TOKENS, type AttackContext } from '../security/attack-tokens.js'
import { startStack, type Stack } from '../security/stack.js'

let s: Stack
let ctx: AttackContext
before(async () => {
  s = await startStack({ poolSize: 2, gateway: { rest: {} } })
  ctx = { keys: s.keys, valid: await s.token() }
})
after(() => s?.close())

const insert = (token: string | undefined) =>
  fetch(`${s.gateway.url}/rest/v1/security_audit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: '{}',
  })

test('every attack token is refused by /rest/v1 with 401, and nothing runs', async () => {
  const logins = s.restrictedLogins()
  for (const attack of ATTACK_TOKENS) {
    const res = await insert(attack.make(ctx))
    const text = await res.text()
    assert.equal(res.status, 401, `${attack.name}: ${res.status} ${text}`)
    const err = JSON.parse(text) as { code: string; message: string }
    assert.match(err.code, /^PGRST30[123]$/, attack.name)
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, attack.name)
    assert.doesNotMatch(text, /eyJ/, `${attack.name}: the error echoes token material`)
  }
  const none = await insert(undefined)
  assert.equal(none.status, 401)
  assert.equal(await s.auditCount(), 0, 'an attack token ran SQL')
  assert.equal(s.restrictedLogins(), logins, 'an attack token opened a restricted-role backend')
  console.log(`# attack tokens: ${ATTACK_TOKENS.length} refused by /rest/v1`)

  const ok = await insert(ctx.valid)
  const okText = await ok.text()
  assert.equal(ok.status, 201, okText)
  assert.equal(await s.auditCount(), 1)
  assert.ok(s.restrictedLogins() > logins)
})
