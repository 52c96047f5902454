/**
 * Which role a verified token runs as: the one rule every transport (HTTP `/sql`, the wire port,
 * WebSocket, the in-process tools) gets from the verifier, so none of them chooses on its own.
 *
 * Without a `roleClaim`, the role is the one the client asks for (the connection string's user), and the
 * provider must allow it. With one, the token decides, through the provider's allow-list:
 *
 * 1. the requested role, when the claim names it and the provider allows it;
 * 2. else the first value of the claim the provider allows (an array is read in order, as PostgREST
 *    takes the first match);
 * 3. a claim that is missing (or holds no string) falls back to the provider's `defaultRole`;
 *    with none, the token is refused: ERR_ROLE_CLAIM_MISSING;
 * 4. a claim naming only roles the provider does not allow is refused: ERR_ROLE_NOT_ALLOWED. A raw
 *    claim value never becomes a role without passing the allow-list.
 *
 * The database then checks that the role is one of its restricted roles (auth never logs in as anything
 * else, security property 1).
 *
 * @module
 */
import type { JWTPayload } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { parseClaimPath, selectClaim, type PathSegment } from './claim-path.js'
import type { ProviderConfig } from './types.js'

const parsed = new Map<string, PathSegment[]>()

function segments(path: string): PathSegment[] {
  let s = parsed.get(path)
  if (!s) {
    if (parsed.size >= 256) parsed.clear()
    parsed.set(path, (s = parseClaimPath(path)))
  }
  return s
}

/** The role `claims`, verified by `provider`, run as when the client asks for `requested` (see the module doc). */
export function chooseRole(claims: JWTPayload, provider: ProviderConfig, requested: string | undefined): string {
  const allowed = provider.roles!
  if (provider.roleClaim === undefined) {
    const role = requested ?? provider.defaultRole ?? allowed[0]!
    if (!allowed.includes(role)) {
      throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `provider '${provider.name}' may not log in as role '${role}'`)
    }
    return role
  }
  const values = selectClaim(claims, segments(provider.roleClaim)).filter((v): v is string => typeof v === 'string')
  if (values.length === 0) {
    if (provider.defaultRole !== undefined) return provider.defaultRole
    throw new PgAuthorizeError('ERR_ROLE_CLAIM_MISSING', `the token has no role at ${provider.roleClaim}, and provider '${provider.name}' has no default role`, {
      hint: 'set a default role for the provider (--default-role), or add the claim to its tokens',
    })
  }
  if (requested !== undefined && values.includes(requested) && allowed.includes(requested)) return requested
  const first = values.find((v) => allowed.includes(v))
  if (first === undefined) {
    throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `the role claim ${provider.roleClaim} names no role provider '${provider.name}' allows (${allowed.join(', ')})`)
  }
  return first
}
