/**
 * SCRAM-SHA-256 password verifiers (RFC 5802 / RFC 7677) computed in Node, in the form Postgres stores in
 * `pg_authid.rolpassword`: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
 *
 * `ALTER ROLE ... PASSWORD` takes no bind parameters, so whatever it is given is SQL text: it reaches the
 * server log when the statement fails (and with `log_statement = ddl` when it succeeds). Given a verifier
 * instead of the password, Postgres stores it as is, and the cleartext never leaves the gateway.
 *
 * @module
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { PgAuthorizeError } from '../errors.js'

const pbkdf2Async = promisify(pbkdf2)

/** Postgres' default `scram_iterations`. */
export const SCRAM_ITERATIONS = 4096

/**
 * The verifier of `password`. Only printable ASCII is accepted: Postgres runs SASLprep on the password
 * first, which leaves such strings unchanged; setup's passwords are base64url, so that is all it needs.
 */
export async function scramVerifier(
  password: string,
  options: { salt?: Buffer; iterations?: number } = {},
): Promise<string> {
  if (!/^[\x20-\x7e]+$/.test(password)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'a role password must be printable ASCII to be stored as a SCRAM verifier')
  }
  const salt = options.salt ?? randomBytes(16)
  const iterations = options.iterations ?? SCRAM_ITERATIONS
  const salted = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
