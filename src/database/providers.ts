/**
 * JWT providers stored in the database (`pgauthorize.providers`), so every gateway instance serving the
 * database shares them: the JWKS (a URL, inline keys, or found by OIDC discovery from the issuer), the
 * checks (issuer, audience, strict audience, authorized parties, algorithms) and the role rules (allowed
 * roles, role claim, default role). Validation is the verifier's own (verify/provider.ts). A change fires `NOTIFY pg_authorize_providers`; `watchDatabase` (watch.ts) listens
 * (and polls as a fallback), so running gateways pick changes up without a restart.
 *
 * @module
 */
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import type { Algorithm } from '../keys/algorithms.js'
import { discover } from '../verify/discovery.js'
import { normalizeProvider } from '../verify/provider.js'
import type { ProviderConfig } from '../verify/types.js'
import { connectOwner } from './connect.js'

/** A provider as stored: a verifier `ProviderConfig` with its defaults filled in. */
export interface StoredProvider extends ProviderConfig {
  algorithms: Algorithm[]
  roles: string[]
}

/** What `providers add` and the console give: a provider before validation (lists may hold untrimmed names). */
export interface ProviderInput {
  name?: string
  jwksUrl?: string
  jwks?: { keys: Record<string, unknown>[] }
  issuer?: string
  /** Find the JWKS by OIDC discovery from `issuer` (default when an issuer is given without a JWKS URL). */
  discovery?: boolean
  audience?: string | string[]
  algorithms?: string[]
  roles?: string[]
  roleClaim?: string
  defaultRole?: string
  authorizedParties?: string[]
  strictAudience?: boolean
}

/** A default provider name from the JWKS URL's (or issuer's) host and port, e.g. `localhost-8787`. */
export function defaultProviderName(url: string): string {
  const u = new URL(url)
  return `${u.hostname}${u.port ? '-' + u.port : ''}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63)
}

const trimmed = (xs: string[] | undefined) => {
  const out = xs?.map((x) => x.trim()).filter(Boolean)
  return out?.length ? out : undefined
}

/**
 * Validates input with the verifier's {@link normalizeProvider} (ERR_INVALID_CONFIG naming the bad field)
 * and fills defaults: the name from the URL, discovery when an issuer comes without a JWKS URL. With
 * `knownRoles`, every role must be one setup made in the database.
 */
export function toStoredProvider(input: ProviderInput, knownRoles?: readonly string[]): StoredProvider {
  if (!input.jwksUrl && !input.jwks && !input.issuer) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'a provider needs a JWKS URL (--jwks-url), an issuer to discover it from (--issuer), or inline keys')
  }
  const discovery = input.discovery ?? (!input.jwksUrl && !input.jwks)
  const audience = Array.isArray(input.audience) ? trimmed(input.audience) : input.audience?.trim() || undefined
  const p = normalizeProvider({
    name: input.name ?? defaultProviderName(input.jwksUrl ?? input.issuer ?? 'http://inline'),
    ...(input.jwksUrl ? { jwksUrl: input.jwksUrl } : {}),
    ...(input.jwks ? { jwks: input.jwks as { keys: JsonWebKey[] } } : {}),
    ...(input.issuer ? { issuer: input.issuer } : {}),
    ...(discovery ? { discovery: true } : {}),
    ...(audience !== undefined ? { audience: Array.isArray(audience) && audience.length === 1 ? audience[0]! : audience } : {}),
    ...(trimmed(input.algorithms) ? { algorithms: trimmed(input.algorithms) as Algorithm[] } : {}),
    ...(trimmed(input.roles) ? { roles: trimmed(input.roles)! } : {}),
    ...(input.roleClaim?.trim() ? { roleClaim: input.roleClaim.trim() } : {}),
    ...(input.defaultRole?.trim() ? { defaultRole: input.defaultRole.trim() } : {}),
    ...(trimmed(input.authorizedParties) ? { authorizedParties: trimmed(input.authorizedParties)! } : {}),
    ...(input.strictAudience ? { strictAudience: true } : {}),
  }) as StoredProvider
  if (knownRoles) {
    for (const r of p.roles) {
      if (!knownRoles.includes(r)) {
        throw new PgAuthorizeError('ERR_INVALID_CONFIG', `role '${r}' is not a restricted role set up in this database (${knownRoles.join(', ')})`, {
          hint: `run: pg-authorize setup --role ${r}`,
        })
      }
    }
  }
  return structuredClone(p)
}

interface ProviderRow {
  name: string
  jwks_url: string | null
  jwks: { keys: Record<string, unknown>[] } | null
  issuer: string | null
  audience: string[] | null
  algorithms: string[]
  roles: string[]
  discovery?: boolean
  role_claim?: string | null
  default_role?: string | null
  authorized_parties?: string[] | null
  strict_audience?: boolean
}

function fromRow(r: ProviderRow): StoredProvider {
  return {
    name: r.name,
    ...(r.jwks_url ? { jwksUrl: r.jwks_url } : {}),
    ...(r.jwks ? { jwks: r.jwks as { keys: JsonWebKey[] } } : {}),
    ...(r.issuer ? { issuer: r.issuer } : {}),
    ...(r.discovery ? { discovery: true } : {}),
    ...(r.audience?.length ? { audience: r.audience.length === 1 ? r.audience[0]! : r.audience } : {}),
    algorithms: r.algorithms as Algorithm[],
    roles: r.roles,
    ...(r.role_claim ? { roleClaim: r.role_claim } : {}),
    ...(r.default_role ? { defaultRole: r.default_role } : {}),
    ...(r.authorized_parties?.length ? { authorizedParties: r.authorized_parties } : {}),
    ...(r.strict_audience ? { strictAudience: true } : {}),
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
  const columns = 'name, jwks_url, jwks, issuer, audience, algorithms, roles'
  let r
  try {
    r = await client.query<ProviderRow>(
      `select ${columns}, discovery, role_claim, default_role, authorized_parties, strict_audience from pgauthorize.providers order by name`,
    )
  } catch (err) {
    // 42703: a database set up before migration 0007 (its gateways keep working until setup runs again).
    if ((err as { code?: unknown }).code !== '42703') throw err
    r = await client.query<ProviderRow>(`select ${columns} from pgauthorize.providers order by name`)
  }
  return r.rows.map(fromRow)
}

/** Adds a provider (or replaces one of the same name when `replace`). Returns what was stored. */
export async function addProvider(
  client: pg.ClientBase,
  input: ProviderInput | StoredProvider,
  options: { replace?: boolean; fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<StoredProvider> {
  const p = toStoredProvider(input as ProviderInput, await restrictedRoles(client))
  if (p.discovery) {
    // Refused now, with what went wrong (unreachable, not JSON, another issuer, no jwks_uri), rather than at
    // the first token. The jwks_uri is stored as the last one known; gateways re-discover it periodically.
    const d = await discover(p.issuer!, {
      fetch: options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args)),
      timeoutMs: options.timeoutMs ?? 5000,
      maxBytes: 65_536,
      provider: p.name,
    })
    if ('jwksUri' in d) p.jwksUrl = d.jwksUri
  }
  const aud = p.audience === undefined ? null : Array.isArray(p.audience) ? p.audience : [p.audience]
  const r = await client.query(
    `insert into pgauthorize.providers as p (name, jwks_url, jwks, issuer, audience, algorithms, roles,
       discovery, role_claim, default_role, authorized_parties, strict_audience)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     on conflict (name) do ${options.replace ? `update set jwks_url = excluded.jwks_url, jwks = excluded.jwks,
       issuer = excluded.issuer, audience = excluded.audience, algorithms = excluded.algorithms,
       roles = excluded.roles, discovery = excluded.discovery, role_claim = excluded.role_claim,
       default_role = excluded.default_role, authorized_parties = excluded.authorized_parties,
       strict_audience = excluded.strict_audience, updated_at = now()` : 'nothing'}`,
    [p.name, p.jwksUrl ?? null, p.jwks ? JSON.stringify(p.jwks) : null, p.issuer ?? null, aud, p.algorithms, p.roles,
      p.discovery ?? false, p.roleClaim ?? null, p.defaultRole ?? null, p.authorizedParties ?? null, p.strictAudience ?? false],
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
