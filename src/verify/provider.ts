/**
 * The one definition of a valid provider: {@link normalizeProvider} checks a {@link ProviderConfig} and
 * fills in its defaults. The verifier runs it on every provider it is given, and the providers table
 * (database/providers.ts) on every provider it stores, so the CLI, the console and the gateway accept
 * and refuse the same providers with the same words.
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'
import { ALGORITHMS, isAlgorithm, type Algorithm } from '../keys/algorithms.js'
import { parseClaimPath } from './claim-path.js'
import { DEFAULT_PROVIDER_ROLES, type ProviderConfig } from './types.js'

/** The algorithms a provider allows when it names none. */
export const DEFAULT_ALGORITHMS: readonly Algorithm[] = Object.freeze(['RS256', 'ES256', 'EdDSA'])

/** What a provider name may be (the providers table checks the same). */
export const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** Checks a remote URL a provider names: http(s), no credentials. Returns why not, or undefined. */
export function badUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'is not a string'
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return 'is not a valid URL'
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must use https (or http for local development)'
  if (u.username || u.password) return 'must not carry credentials'
  return undefined
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.trim() !== '')

/**
 * Checks one provider and fills in defaults (algorithms, roles); throws ERR_INVALID_CONFIG naming the
 * provider and the field. The result is a frozen copy.
 *
 * @example
 * normalizeProvider({ name: 'kc', issuer: 'https://kc.example/realms/acme', discovery: true, roleClaim: '$.realm_access.roles[*]', roles: ['editor', 'viewer'] })
 */
export function normalizeProvider(p: ProviderConfig): ProviderConfig {
  if (!p || typeof p !== 'object') throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'a provider must be an object')
  const bad = (why: string) => new PgAuthorizeError('ERR_INVALID_CONFIG', `provider '${String(p.name).slice(0, 63)}': ${why}`)
  if (typeof p.name !== 'string' || p.name === '') throw new PgAuthorizeError('ERR_INVALID_CONFIG', 'a provider needs a name')
  if (!PROVIDER_NAME.test(p.name)) {
    throw new PgAuthorizeError('ERR_INVALID_CONFIG', `invalid provider name '${p.name.slice(0, 63)}' (letters, digits, _ . -; at most 63)`)
  }
  if (p.discovery !== undefined && typeof p.discovery !== 'boolean') throw bad('discovery must be true or false')
  if (p.discovery) {
    if (p.issuer === undefined) throw bad('discovery needs an issuer (--issuer URL)')
    const why = badUrl(p.issuer)
    if (why) throw bad(`the issuer ${why}, and discovery needs a URL`)
    if (p.jwks !== undefined) throw bad('give inline keys or discovery, not both')
  } else if ((p.jwksUrl === undefined) === (p.jwks === undefined)) {
    throw bad('give exactly one of a JWKS URL (--jwks-url), inline keys, or an issuer to discover (--issuer alone)')
  }
  if (p.jwksUrl !== undefined) {
    const why = badUrl(p.jwksUrl)
    if (why) throw bad(`the JWKS URL ${why}`)
  }
  if (p.jwks !== undefined && !Array.isArray(p.jwks?.keys)) throw bad('inline keys must be a JWKS: { "keys": [...] }')
  if (p.issuer !== undefined && (typeof p.issuer !== 'string' || p.issuer === '')) throw bad('issuer must be a non-empty string')
  if (p.audience !== undefined && typeof p.audience !== 'string' && !strings(p.audience)) throw bad('audience must be a string or strings')
  const audience = Array.isArray(p.audience) ? [...new Set(p.audience)] : p.audience
  const algorithms = p.algorithms === undefined ? [...DEFAULT_ALGORITHMS] : p.algorithms
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw bad(`algorithms must be a non-empty list of ${ALGORITHMS.join(', ')}`)
  for (const a of algorithms as unknown[]) {
    if (!isAlgorithm(a)) throw bad(`algorithm '${String(a).slice(0, 20)}' is not allowed (one of ${ALGORITHMS.join(', ')})`)
  }
  const roles = p.roles === undefined ? [...DEFAULT_PROVIDER_ROLES] : p.roles
  if (!strings(roles) || roles.length === 0) throw bad('roles must be a non-empty list of role names')
  if (p.roleClaim !== undefined) {
    try {
      parseClaimPath(p.roleClaim)
    } catch (err) {
      throw bad(`role claim: ${(err as Error).message}`)
    }
  }
  if (p.defaultRole !== undefined) {
    if (typeof p.defaultRole !== 'string' || p.defaultRole === '') throw bad('the default role must be a role name')
    if (!roles.includes(p.defaultRole)) throw bad(`the default role '${p.defaultRole}' must be one of its roles (${roles.join(', ')})`)
  }
  if (p.authorizedParties !== undefined && (!strings(p.authorizedParties) || p.authorizedParties.length === 0)) {
    throw bad('authorized parties (azp) must be a non-empty list of strings')
  }
  if (p.strictAudience !== undefined && typeof p.strictAudience !== 'boolean') throw bad('strictAudience must be true or false')
  const out: ProviderConfig = {
    ...p,
    ...(audience === undefined ? {} : { audience }),
    algorithms: [...new Set(algorithms)],
    roles: [...new Set(roles)],
    ...(p.authorizedParties ? { authorizedParties: [...new Set(p.authorizedParties)] } : {}),
  }
  return deepFreeze(structuredClone(out))
}

/** The URL of the OIDC discovery document of `issuer` (OIDC Discovery 1.0, section 4: a trailing `/` is dropped). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
}
