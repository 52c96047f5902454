/**
 * The JWS protected header checks (RFC 7515 4.1), made before any key is chosen: `alg: none` in any
 * casing, `jku`, `x5u`, `x5c`, an embedded `jwk`, `crit` and `b64` are refused outright (we never fetch
 * or trust keys a token names, and support no JWS extensions), `kid` must be a string, `alg` one we
 * support. `typ` is not checked: RFC 9068 access tokens (`at+jwt`, `application/at+jwt`), `JWT` and no
 * `typ` at all are all accepted, as the providers in docs/providers.md send each of them.
 *
 * @module
 */
import type { JWSHeaderParameters } from 'jose'
import { PgAuthorizeError } from '../errors.js'
import { isAlgorithm, type Algorithm } from '../keys/algorithms.js'
import { decodeJsonSegment } from './jws.js'

/** Header members that would make us fetch, trust or interpret something the token chooses. */
export const FORBIDDEN_HEADERS = ['jku', 'x5u', 'x5c', 'jwk', 'crit', 'b64'] as const

export interface CheckedHeader {
  readonly header: JWSHeaderParameters
  readonly alg: Algorithm
}

/** Decodes and checks the protected header segment; throws PgAuthorizeError. The header is not frozen. */
export function checkHeader(segment: string): CheckedHeader {
  const header = decodeJsonSegment(segment) as JWSHeaderParameters | undefined
  if (!header) throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the token header is not valid base64url JSON')
  if (typeof header.alg !== 'string') throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the token header has no "alg"')
  if (header.alg.toLowerCase() === 'none') throw new PgAuthorizeError('ERR_JWT_HEADER_FORBIDDEN', 'unsigned tokens (alg "none") are refused')
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) throw new PgAuthorizeError('ERR_JWT_HEADER_FORBIDDEN', `the header parameter "${name}" is not accepted`)
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new PgAuthorizeError('ERR_TOKEN_MALFORMED', 'the token "kid" is not a string')
  const alg = header.alg
  if (!isAlgorithm(alg)) throw new PgAuthorizeError('ERR_JWT_ALG_NOT_ALLOWED', `algorithm "${alg.slice(0, 20)}" is not supported`)
  return { header, alg }
}
