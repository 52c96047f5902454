/**
 * JWT providers stored in the database (`pgauthorize.providers`), so every gateway instance serving the
 * database shares them. A change fires `NOTIFY pg_authorize_providers`; `watchDatabase` (watch.ts) listens
 * (and polls as a fallback), so running gateways pick changes up without a restart.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { connectOwner } from './connect.js'

/** The algorithms a provider may allow. HS* are never allowed: a shared secret is not a public key. */
export const PROVIDER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type ProviderAlgorithm = (typeof PROVIDER_ALGORITHMS)[number]

/** A provider as stored; the same shape as the verifier's `ProviderConfig`. */
export interface StoredProvider {
  name: string
  jwksUrl?: string
  jwks?: { keys: Record<string, unknown>[] }
  issuer?: string
  audience?: string | string[]
  algorithms: ProviderAlgorithm[]
  roles: string[]
}

export interface ProviderInput {
  name?: string
  jwksUrl?: string
  jwks?: { keys: Record<string, unknown>[] }
  issuer?: string
  audience?: string | string[]
  algorithms?: string[]
  roles?: string[]
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/** A default provider name from the JWKS URL's host and port, e.g. `localhost-8787`. */
export function defaultProviderName(jwksUrl: string): string {
  const u = new URL(jwksUrl)
  return `${u.hostname}${u.port ? '-' + u.port : ''}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63)
}

/** Validates input and fills defaults; throws ERR_INVALID_ARGUMENT naming the bad field. */
export function normalizeProvider(input: ProviderInput, knownRoles?: readonly string[]): StoredProvider {
  if (!input.jwksUrl && !input.jwks) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'a provider needs a JWKS URL (--jwks-url) or inline keys')
  }
  if (input.jwksUrl !== undefined) {
    let u: URL
    try {
      u = new URL(input.jwksUrl)
    } catch {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'jwks url is not a valid URL')
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'jwks url must use https (or http for local development)')
    }
    if (u.username || u.password) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'jwks url must not carry credentials')
    }
  }
  if (input.jwks !== undefined && (!input.jwks || !Array.isArray(input.jwks.keys))) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'inline jwks must be an object with a "keys" array')
  }
  const name = input.name ?? defaultProviderName(input.jwksUrl ?? 'http://inline')
  if (!NAME.test(name)) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `invalid provider name '${name}' (letters, digits, _ . -; at most 63)`)
  }
  const algorithms = (input.algorithms?.length ? input.algorithms : ['RS256', 'ES256', 'EdDSA']).map((a) => a.trim())
  for (const a of algorithms) {
    if (!(PROVIDER_ALGORITHMS as readonly string[]).includes(a)) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `algorithm '${a}' is not allowed (one of ${PROVIDER_ALGORITHMS.join(', ')})`)
    }
  }
  const roles = (input.roles?.length ? input.roles : ['authenticated']).map((r) => r.trim())
  if (knownRoles) {
    for (const r of roles) {
      if (!knownRoles.includes(r)) {
        throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `role '${r}' is not a restricted role set up in this database (${knownRoles.join(', ')})`, {
          hint: `run: pg-authorize setup --role ${r}`,
        })
      }
    }
  }
  const audience = Array.isArray(input.audience) ? input.audience.filter(Boolean) : input.audience || undefined
  return {
    name,
    ...(input.jwksUrl ? { jwksUrl: input.jwksUrl } : {}),
    ...(input.jwks ? { jwks: input.jwks } : {}),
    ...(input.issuer ? { issuer: input.issuer } : {}),
    ...(audience && (!Array.isArray(audience) || audience.length) ? { audience } : {}),
    algorithms: [...new Set(algorithms)] as ProviderAlgorithm[],
    roles: [...new Set(roles)],
  }
}

interface ProviderRow {
  name: string
  jwks_url: string | null
  jwks: { keys: Record<string, unknown>[] } | null
  issuer: string | null
  audience: string[] | null
  algorithms: string[]
  roles: string[]
}

function fromRow(r: ProviderRow): StoredProvider {
  return {
    name: r.name,
    ...(r.jwks_url ? { jwksUrl: r.jwks_url } : {}),
    ...(r.jwks ? { jwks: r.jwks } : {}),
    ...(r.issuer ? { issuer: r.issuer } : {}),
    ...(r.audience?.length ? { audience: r.audience.length === 1 ? r.audience[0]! : r.audience } : {}),
    algorithms: r.algorithms as ProviderAlgorithm[],
    roles: r.roles,
  }
}

async function restrictedRoles(client: pg.ClientBase): Promise<string[]> {
  try {
    const r = await client.query<{ role: string }>('select role from pgauthorize.role_credentials order by role')
    return r.rows.map((x) => x.role)
  } catch (err) {
    throw new PgAuthorizeError('ERR_DB_NOT_SET_UP', 'pg-authorize is not set up in this database', {
      cause: err,
      hint: 'run: pg-authorize setup --database-url OWNER_URL',
    })
  }
}

/** Lists the providers of a database. */
export async function listProviders(client: pg.ClientBase): Promise<StoredProvider[]> {
  await restrictedRoles(client)
  const r = await client.query<ProviderRow>(
    'select name, jwks_url, jwks, issuer, audience, algorithms, roles from pgauthorize.providers order by name',
  )
  return r.rows.map(fromRow)
}

/** Adds a provider (or replaces one of the same name when `replace`). Returns what was stored. */
export async function addProvider(
  client: pg.ClientBase,
  input: ProviderInput,
  options: { replace?: boolean } = {},
): Promise<StoredProvider> {
  const p = normalizeProvider(input, await restrictedRoles(client))
  const aud = p.audience === undefined ? null : Array.isArray(p.audience) ? p.audience : [p.audience]
  const r = await client.query(
    `insert into pgauthorize.providers as p (name, jwks_url, jwks, issuer, audience, algorithms, roles)
     values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (name) do ${options.replace ? `update set jwks_url = excluded.jwks_url, jwks = excluded.jwks,
       issuer = excluded.issuer, audience = excluded.audience, algorithms = excluded.algorithms,
       roles = excluded.roles, updated_at = now()` : 'nothing'}`,
    [p.name, p.jwksUrl ?? null, p.jwks ? JSON.stringify(p.jwks) : null, p.issuer ?? null, aud, p.algorithms, p.roles],
  )
  if (r.rowCount === 0) {
    throw new PgAuthorizeError('ERR_PROVIDER_EXISTS', `a provider named '${p.name}' already exists`, {
      hint: 'choose another --name, or remove it first',
    })
  }
  return p
}

/** Removes a provider by name. */
export async function removeProvider(client: pg.ClientBase, name: string): Promise<void> {
  await restrictedRoles(client)
  const r = await client.query('delete from pgauthorize.providers where name = $1', [name])
  if (r.rowCount === 0) throw new PgAuthorizeError('ERR_PROVIDER_NOT_FOUND', `no provider named '${name}'`)
}

/**
 * When each provider's row last changed, by name. A gateway's watch compares these to tell a provider that
 * was only touched by {@link touchProviders} (same config, newer `updated_at`) from one that did not change.
 */
export async function providerVersions(client: pg.ClientBase): Promise<Map<string, string>> {
  const r = await client.query<{ name: string; v: string }>('select name, updated_at::text as v from pgauthorize.providers')
  return new Map(r.rows.map((x) => [x.name, x.v]))
}

/**
 * Asks every gateway serving the database to refetch the JWKS of one provider (or all): bumps `updated_at`,
 * so the row's trigger notifies them, and their watch refreshes the providers it sees touched. Returns the
 * names touched.
 */
export async function touchProviders(client: pg.ClientBase, name?: string): Promise<string[]> {
  await restrictedRoles(client)
  // clock_timestamp(), not now(): two refreshes in one transaction still differ.
  const r = await client.query<{ name: string }>(
    `update pgauthorize.providers set updated_at = clock_timestamp()
     where $1::text is null or name = $1 returning name`,
    [name ?? null],
  )
  if (name !== undefined && r.rowCount === 0) throw new PgAuthorizeError('ERR_PROVIDER_NOT_FOUND', `no provider named '${name}'`)
  return r.rows.map((x) => x.name).sort()
}

/** Convenience for one-off commands: connects, runs `fn`, disconnects. */
export async function withOwner<T>(ownerUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const c = await connectOwner(ownerUrl)
  try {
    return await fn(c)
  } finally {
    await c.end().catch(() => {})
  }
}
