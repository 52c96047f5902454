/**
 * Turning command-line claim arguments into a claims object: `--claim NAME=VALUE` (the value is JSON
 * when it parses as JSON, else a string) and `--claims '{"json":"object"}'`.
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'

/** Parses `--claims` JSON; it must be an object. */
export function parseClaimsJson(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'claims are not valid JSON', { hint: `expected an object such as '{"tenant_id":"abc"}'` })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', 'claims must be a JSON object')
  }
  return value as Record<string, unknown>
}

/** Parses one `NAME=VALUE`; `permissions=["read"]` gives an array, `tenant_id=abc` a string. */
export function parseClaimArg(arg: string): [string, unknown] {
  const eq = arg.indexOf('=')
  if (eq <= 0) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `claim '${arg.slice(0, 40)}' is not NAME=VALUE`)
  }
  const name = arg.slice(0, eq)
  const raw = arg.slice(eq + 1)
  try {
    return [name, JSON.parse(raw)]
  } catch {
    return [name, raw]
  }
}

/** `--claims` first, then each `--claim` on top, in order. */
export function buildClaims(claimArgs: string[] = [], claimsJson?: string): Record<string, unknown> {
  const claims: Record<string, unknown> = claimsJson === undefined ? {} : parseClaimsJson(claimsJson)
  for (const arg of claimArgs) {
    const [name, value] = parseClaimArg(arg)
    claims[name] = value
  }
  return claims
}
