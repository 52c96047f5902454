/**
 * OIDC discovery (OpenID Connect Discovery 1.0, RFC 8414): from an issuer to its JWKS URL.
 *
 * The document is `{issuer}/.well-known/openid-configuration` (a trailing `/` of the issuer dropped
 * first, so Auth0's `https://x.auth0.com/` works). Its `issuer` must be *identical* to the issuer it was
 * fetched for (exact string, no normalisation: section 4.3), which is also the `iss` tokens must carry;
 * otherwise a document served at one issuer's address could vouch for keys of another. Its `jwks_uri`
 * must be an http(s) URL without credentials, and https when the issuer is (no downgrade).
 *
 * Failures say which of these went wrong: unreachable (ERR_DISCOVERY_FAILED, with the network reason or
 * HTTP status), not JSON or no usable `jwks_uri` (ERR_DISCOVERY_INVALID), another issuer
 * (ERR_DISCOVERY_ISSUER_MISMATCH).
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'
import { fetchDocument, type FetchDocumentOptions } from './fetch-jwks.js'
import { badUrl, discoveryUrl } from './provider.js'

export interface Discovered {
  /** `jwks_uri` of the document. */
  jwksUri: string
  /** The response's freshness by its cache headers, ms; undefined when it sent none. */
  freshnessMs: number | undefined
  etag: string | undefined
}

/**
 * Fetches and checks the discovery document of `issuer`. With `etag`, answers `undefined` for a 304 (the
 * held copy is current); the caller keeps its `jwks_uri`.
 */
export async function discover(issuer: string, options: Omit<FetchDocumentOptions, 'kind'>): Promise<Discovered | { notModified: true; freshnessMs: number | undefined; etag: string | undefined }> {
  const url = discoveryUrl(issuer)
  const r = await fetchDocument(url, { ...options, kind: 'discovery' })
  if (r.notModified) return r
  const doc = r.body as { issuer?: unknown; jwks_uri?: unknown } | null
  const where = `the discovery document of provider '${options.provider}' (${url})`
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PgAuthorizeError('ERR_DISCOVERY_INVALID', `${where} is not a JSON object`)
  }
  if (doc.issuer !== issuer) {
    throw new PgAuthorizeError('ERR_DISCOVERY_ISSUER_MISMATCH', typeof doc.issuer === 'string'
      ? `${where} names the issuer '${doc.issuer.slice(0, 200)}', not '${issuer}' (they must be identical, trailing slash included)`
      : `${where} has no "issuer"`, {
      hint: typeof doc.issuer === 'string' ? `if '${doc.issuer.slice(0, 200)}' is the issuer its tokens carry, add the provider with --issuer '${doc.issuer.slice(0, 200)}'` : undefined,
    })
  }
  if (doc.jwks_uri === undefined) throw new PgAuthorizeError('ERR_DISCOVERY_INVALID', `${where} has no "jwks_uri"`)
  const why = badUrl(doc.jwks_uri)
  if (why) throw new PgAuthorizeError('ERR_DISCOVERY_INVALID', `the "jwks_uri" of ${where} ${why}`)
  const jwksUri = doc.jwks_uri as string
  if (issuer.startsWith('https:') && !jwksUri.startsWith('https:')) {
    throw new PgAuthorizeError('ERR_DISCOVERY_INVALID', `the "jwks_uri" of ${where} is http while the issuer is https`)
  }
  return { jwksUri, freshnessMs: r.freshnessMs, etag: r.etag }
}
