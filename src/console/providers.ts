/**
 * The Providers page's operations: list, add (and fetch the JWKS at once), remove, force a refresh.
 *
 * Keys are shown by their public identity only (`kid`, `alg`, `kty`, `crv`, `use`): even an inline JWKS
 * stored by mistake with private members never leaves the server through this API.
 *
 * @module
 */
import { isPgAuthorizeError } from '../errors.js'
import { addProvider, listProviders, removeProvider, withOwner, type StoredProvider } from '../database/providers.js'
import { fetchJwks } from '../verify/fetch-jwks.js'
import { usableKeys } from '../verify/keyset.js'
import type { ConsoleBackend } from './backend.js'
import { list, str } from './http.js'

/** A checkbox field: true, "on" or "true". */
const flag = (body: Record<string, unknown>, key: string): boolean => body[key] === true || body[key] === 'on' || body[key] === 'true'

export interface KeyView {
  kid: string | null
  alg: string | null
  kty: string
  crv?: string
  use?: string
}

export interface ProviderView {
  name: string
  jwksUrl: string | null
  inline: boolean
  issuer: string | null
  audience: string[]
  algorithms: string[]
  roles: string[]
  /** The JWKS URL comes from the issuer's OIDC discovery document (`jwksUrl` is the last one discovered). */
  discovery: boolean
  roleClaim: string | null
  defaultRole: string | null
  authorizedParties: string[]
  strictAudience: boolean
  keys: KeyView[]
  /** Why no usable key was found (or a warning about the keys found). */
  keysError?: { code: string; message: string }
}

/** Fetches (or reads inline) a provider's keys for display. Never throws. */
export async function probeKeys(p: StoredProvider, timeoutMs = 5000): Promise<Pick<ProviderView, 'keys' | 'keysError'>> {
  try {
    const doc = p.jwks ?? (await fetchJwks(p.jwksUrl!, { fetch, timeoutMs, maxBytes: 65_536, provider: p.name }))
    const keys: KeyView[] = usableKeys(doc, p.name).map((k) => ({
      kid: typeof k.kid === 'string' ? k.kid : null,
      alg: typeof k.alg === 'string' ? k.alg : null,
      kty: String(k.kty),
      ...(typeof k.crv === 'string' ? { crv: k.crv } : {}),
      ...(typeof k.use === 'string' ? { use: k.use } : {}),
    }))
    if (keys.length === 0) {
      return { keys, keysError: { code: 'ERR_JWKS_NO_MATCHING_KEY', message: 'the JWKS holds no usable public signing key (keys for encryption, symmetric keys and keys with an unknown "alg" are skipped)' } }
    }
    const allowed = new Set<string>(p.algorithms)
    if (keys.every((k) => k.alg !== null && !allowed.has(k.alg))) {
      return { keys, keysError: { code: 'ERR_JWT_ALG_NOT_ALLOWED', message: `no key is usable with the allowed algorithms (${p.algorithms.join(', ')})` } }
    }
    return { keys }
  } catch (err) {
    const e = isPgAuthorizeError(err) ? err : undefined
    return { keys: [], keysError: { code: e?.code ?? 'ERR_JWKS_FETCH_FAILED', message: e?.message ?? 'fetching the JWKS failed' } }
  }
}

function view(p: StoredProvider, keys: Pick<ProviderView, 'keys' | 'keysError'>): ProviderView {
  return {
    name: p.name,
    jwksUrl: p.jwksUrl ?? null,
    inline: p.jwks !== undefined,
    issuer: p.issuer ?? null,
    audience: p.audience === undefined ? [] : Array.isArray(p.audience) ? p.audience : [p.audience],
    algorithms: [...p.algorithms],
    roles: [...p.roles],
    discovery: p.discovery === true,
    roleClaim: p.roleClaim ?? null,
    defaultRole: p.defaultRole ?? null,
    authorizedParties: [...(p.authorizedParties ?? [])],
    strictAudience: p.strictAudience === true,
    ...keys,
  }
}

export async function listProviderViews(ownerUrl: string): Promise<ProviderView[]> {
  const providers = await withOwner(ownerUrl, (c) => listProviders(c))
  return Promise.all(providers.map(async (p) => view(p, await probeKeys(p))))
}

/**
 * Stores a provider (`replace: true` edits the one of that name), makes the gateway pick it up now, and
 * fetches its keys. An issuer without a JWKS URL is discovered first; a failed discovery refuses the add.
 */
export async function addProviderView(ownerUrl: string, databases: ConsoleBackend, body: Record<string, unknown>): Promise<ProviderView> {
  const jwksUrl = str(body, 'jwksUrl', 2048)
  const stored = await withOwner(ownerUrl, (c) =>
    addProvider(c, {
      ...(str(body, 'name', 63) ? { name: str(body, 'name', 63)! } : {}),
      ...(jwksUrl ? { jwksUrl } : {}),
      ...(str(body, 'issuer', 2048) ? { issuer: str(body, 'issuer', 2048)! } : {}),
      ...(list(body, 'audience') ? { audience: list(body, 'audience')! } : {}),
      ...(list(body, 'algorithms') ? { algorithms: list(body, 'algorithms')! } : {}),
      ...(list(body, 'roles') ? { roles: list(body, 'roles')! } : {}),
      ...(str(body, 'roleClaim', 256) ? { roleClaim: str(body, 'roleClaim', 256)! } : {}),
      ...(str(body, 'defaultRole', 63) ? { defaultRole: str(body, 'defaultRole', 63)! } : {}),
      ...(list(body, 'authorizedParties') ? { authorizedParties: list(body, 'authorizedParties')! } : {}),
      ...(flag(body, 'strictAudience') ? { strictAudience: true } : {}),
    }, { replace: flag(body, 'replace') }),
  )
  await reloadProviders(databases)
  return view(stored, await probeKeys(stored))
}

export async function removeProviderByName(ownerUrl: string, databases: ConsoleBackend, name: string): Promise<void> {
  await withOwner(ownerUrl, (c) => removeProvider(c, name))
  await reloadProviders(databases)
}

/** Forces the gateway's JWKS refetch (one provider or all), then shows what the endpoints serve now. */
export async function refreshProviders(ownerUrl: string, databases: ConsoleBackend, name?: string): Promise<ProviderView[]> {
  const { verifier } = await databases.open()
  // A failing endpoint is reported per provider below; the gateway keeps serving its cached keys.
  await verifier.refresh(name).catch(() => {})
  const all = await listProviderViews(ownerUrl)
  return name === undefined ? all : all.filter((p) => p.name === name)
}

/** Providers change through NOTIFY too; reloading here makes the change visible to the next request. */
async function reloadProviders(databases: ConsoleBackend): Promise<void> {
  const { watch } = await databases.open()
  await watch.reload()
}
