/**
 * Who a test runs as: a restricted role plus the claims (or no identity), installed through the very
 * mechanism the gateway uses (a sealed envelope, `set_config(..., true)`) on a connection that logs in
 * *as the role itself*. What the testing tools show is therefore exactly what a gateway request sees.
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import type { DatabaseContext } from '../database/context.js'
import { listProviders, withOwner } from '../database/providers.js'
import { installClaimsParamSql, type Claims } from '../database/session.js'
import type { ProviderConfig } from '../verify/types.js'
import { verify } from '../verify/verifier.js'

/** Who to run as in a policy test: a role, and claims or `null` for no identity (as a request without a token). */
export interface Impersonation {
  role: string
  claims: Claims | null
}

/**
 * Installs `claims` (or removes any identity) for the rest of the current transaction. The sealed claims
 * go as a bind parameter: SQL text is visible to other sessions of the role in pg_stat_activity.
 */
export async function installIdentity(client: pg.ClientBase, ctx: DatabaseContext, role: string, claims: Claims | null): Promise<void> {
  // An empty setting is "no identity": auth.session() returns JSON null.
  await client.query(installClaimsParamSql(true), [claims === null ? '' : ctx.seal(claims, role, 'testing')])
}

/** Checks `role` is a restricted role of the database, with a helpful error. */
export function checkRole(ctx: DatabaseContext, role: string): void {
  if (!ctx.roles.includes(role)) {
    throw new PgAuthorizeError('ERR_ROLE_NOT_ALLOWED', `role '${role}' is not a restricted role of this database (${ctx.roles.join(', ')})`, {
      hint: 'the testing tools run only as restricted roles, as the gateway does; add one with pg-authorize setup --role NAME',
    })
  }
}

/**
 * Verifies `token` as the gateway would (against the providers stored in the database, with `role`
 * allowed by the verifying provider) and returns its verified claims.
 */
export async function claimsFromToken(ownerUrl: string, token: string, role: string): Promise<Claims> {
  const providers = await withOwner(ownerUrl, listProviders)
  if (providers.length === 0) {
    throw new PgAuthorizeError('ERR_NO_PROVIDERS', 'no JWT provider is registered in this database, so no token can verify', {
      hint: 'pg-authorize providers add --jwks-url URL, or pass --claims JSON instead of a token',
    })
  }
  const verified = await verify(token, providers as ProviderConfig[], { role })
  return { ...verified.claims }
}

/** Parses `--claims` text: a JSON object, or `null` for no identity. */
export function parseClaimsOption(text: string): Claims | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', '--claims is not valid JSON', { hint: `e.g. --claims '{"sub":"user-1","tenant_id":"t1"}'` })
  }
  if (value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', '--claims must be a JSON object (or null for no identity)')
  }
  return value as Claims
}

/** The SQLSTATE and message of a database error, or undefined for anything else. */
export function sqlError(err: unknown): { sqlstate: string; message: string } | undefined {
  const e = err as { code?: unknown; message?: unknown; severity?: unknown }
  if (err instanceof Error && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') {
    return { sqlstate: e.code, message: String(e.message) }
  }
  return undefined
}

/** Quietly rolls back, for cleanup paths that must not mask the original error. */
export async function rollbackQuietly(client: pg.ClientBase): Promise<void> {
  await client.query('ROLLBACK').catch(() => {})
}
