/**
 * The one error hierarchy: our errors are recognised by their mark, across copies of the package, and
 * nobody else's are, even with the same code strings (jose's `ERR_JWT_EXPIRED` and friends).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errors as jose } from 'jose'
import { ERROR_TABLE, PgAuthorizeError, errorMapping, isPgAuthorizeError } from '../../src/errors.js'

test("jose's errors carry our codes but are not ours: they map to ERR_INTERNAL", () => {
  const expired = new jose.JWTExpired('"exp" claim timestamp check failed', {})
  assert.equal(expired.code, 'ERR_JWT_EXPIRED')
  assert.ok(Object.hasOwn(ERROR_TABLE, expired.code), 'the code strings collide')
  assert.equal(isPgAuthorizeError(expired), false)
  assert.equal(errorMapping(expired), ERROR_TABLE.ERR_INTERNAL)
  const plain = Object.assign(new Error('x'), { code: 'ERR_TOKEN_MISSING' })
  assert.equal(isPgAuthorizeError(plain), false)
})

test('ours are recognised, also when raised by another copy of the package', () => {
  const own = new PgAuthorizeError('ERR_TOKEN_MISSING', 'no token')
  assert.equal(isPgAuthorizeError(own), true)
  assert.equal(errorMapping(own), ERROR_TABLE.ERR_TOKEN_MISSING)
  // Another copy's class is another class, but its mark is the same registered symbol.
  const fromOtherCopy = Object.assign(new Error('no token'), { code: 'ERR_TOKEN_MISSING', [Symbol.for('pg-authorize.error')]: true })
  assert.equal(isPgAuthorizeError(fromOtherCopy), true)
})
