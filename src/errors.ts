/**
 * One error hierarchy for all of pg-authorize, with stable string codes.
 *
 * Callers switch on `err.code`, never on `instanceof` (two copies of the package may be loaded).
 * Every code maps, in the single table {@link ERROR_TABLE}, to an HTTP status and a SQLSTATE, so the
 * HTTP gateway, the wire gateway and the CLI agree on what a failure means.
 *
 * Messages must never contain a token, a key, a password or a secret: they reach clients and logs.
 *
 * @module
 */

export type ErrorCode =
  // input and configuration
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_CLAIMS'
  | 'ERR_INVALID_DURATION'
  | 'ERR_INVALID_CONFIG'
  // keys
  | 'ERR_KEY_INVALID'
  | 'ERR_KEY_NOT_PRIVATE'
  | 'ERR_KEY_EXISTS'
  | 'ERR_KEY_NOT_FOUND'
  // tokens and verification
  | 'ERR_TOKEN_MISSING'
  | 'ERR_TOKEN_TOO_LARGE'
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_JWT_HEADER_FORBIDDEN'
  | 'ERR_JWT_ALG_NOT_ALLOWED'
  | 'ERR_JWT_KID_MISSING'
  | 'ERR_JWT_SIGNATURE_INVALID'
  | 'ERR_JWT_EXPIRED'
  | 'ERR_JWT_NOT_YET_VALID'
  | 'ERR_JWT_ISSUER_MISMATCH'
  | 'ERR_JWT_AUDIENCE_MISMATCH'
  | 'ERR_JWT_AZP_MISMATCH'
  | 'ERR_JWT_CLAIM_INVALID'
  | 'ERR_JWKS_NO_MATCHING_KEY'
  | 'ERR_JWKS_FETCH_FAILED'
  | 'ERR_JWKS_INVALID'
  | 'ERR_DISCOVERY_FAILED'
  | 'ERR_DISCOVERY_INVALID'
  | 'ERR_DISCOVERY_ISSUER_MISMATCH'
  | 'ERR_NO_PROVIDERS'
  | 'ERR_ROLE_NOT_ALLOWED'
  | 'ERR_ROLE_CLAIM_MISSING'
  // database
  | 'ERR_DB_CONNECT'
  | 'ERR_ALREADY_RUNNING'
  | 'ERR_DB_NOT_OWNER'
  | 'ERR_DB_NOT_SET_UP'
  | 'ERR_DB_NOT_SERVED'
  | 'ERR_DB_UNSUPPORTED_VERSION'
  | 'ERR_PROVIDER_EXISTS'
  | 'ERR_PROVIDER_NOT_FOUND'
  | 'ERR_SESSION_INVALID'
  | 'ERR_ROLE_TAMPERED'
  // gateway
  | 'ERR_BAD_REQUEST'
  | 'ERR_CONNECTION_STRING_INVALID'
  | 'ERR_ISOLATION_LEVEL_INVALID'
  | 'ERR_MULTI_STATEMENT'
  | 'ERR_TRANSACTION_CONTROL'
  | 'ERR_REQUEST_TOO_LARGE'
  | 'ERR_RESPONSE_TOO_LARGE'
  | 'ERR_POOL_TIMEOUT'
  | 'ERR_FAIR_SHARE_EXCEEDED'
  | 'ERR_TOO_MANY_SESSIONS'
  | 'ERR_QUERY_CANCELLED'
  | 'ERR_SESSION_EXPIRED'
  | 'ERR_TLS_REQUIRED'
  | 'ERR_NOT_FOUND'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_TOO_MANY_ATTEMPTS'
  | 'ERR_SHUTTING_DOWN'
  // the operating system refused (a port in use, a permission, a file that is not there)
  | 'ERR_SYSTEM'
  | 'ERR_INTERNAL'

/** How one error code shows on each transport. */
export interface ErrorMapping {
  /** HTTP status. Neon's clients read SQLSTATE codes only from 400 bodies, so auth failures are 400. */
  readonly status: number
  /** SQLSTATE sent in HTTP JSON bodies and wire ErrorResponses. */
  readonly sqlstate: string
  /** SQLSTATE used instead when the failure happens during wire-protocol authentication. */
  readonly authSqlstate?: string
  /** CLI exit status. */
  readonly exitCode: number
}

const input = { status: 400, sqlstate: '22023', exitCode: 2 } as const
const auth = { status: 400, sqlstate: '28000', authSqlstate: '28P01', exitCode: 1 } as const

/** The one table mapping each code to HTTP status, SQLSTATE and exit status. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorMapping>> = {
  ERR_INVALID_ARGUMENT: input,
  ERR_INVALID_CLAIMS: input,
  ERR_INVALID_DURATION: input,
  ERR_INVALID_CONFIG: input,
  ERR_KEY_INVALID: input,
  ERR_KEY_NOT_PRIVATE: input,
  ERR_KEY_EXISTS: { status: 409, sqlstate: '42710', exitCode: 1 },
  ERR_KEY_NOT_FOUND: { status: 404, sqlstate: '42704', exitCode: 1 },
  ERR_TOKEN_MISSING: auth,
  ERR_TOKEN_TOO_LARGE: auth,
  ERR_TOKEN_MALFORMED: auth,
  ERR_JWT_HEADER_FORBIDDEN: auth,
  ERR_JWT_ALG_NOT_ALLOWED: auth,
  ERR_JWT_KID_MISSING: auth,
  ERR_JWT_SIGNATURE_INVALID: auth,
  ERR_JWT_EXPIRED: auth,
  ERR_JWT_NOT_YET_VALID: auth,
  ERR_JWT_ISSUER_MISMATCH: auth,
  ERR_JWT_AUDIENCE_MISMATCH: auth,
  ERR_JWT_AZP_MISMATCH: auth,
  ERR_JWT_CLAIM_INVALID: auth,
  ERR_JWKS_NO_MATCHING_KEY: auth,
  ERR_JWKS_FETCH_FAILED: auth,
  ERR_JWKS_INVALID: auth,
  // OIDC discovery: the issuer's document could not be fetched, is not usable metadata, or names another issuer.
  ERR_DISCOVERY_FAILED: auth,
  ERR_DISCOVERY_INVALID: auth,
  ERR_DISCOVERY_ISSUER_MISMATCH: auth,
  ERR_NO_PROVIDERS: auth,
  ERR_ROLE_NOT_ALLOWED: auth,
  ERR_ROLE_CLAIM_MISSING: auth,
  ERR_DB_CONNECT: { status: 503, sqlstate: '08006', exitCode: 1 },
  // Another process owns the folder (a running `dev`): 55006 object_in_use.
  ERR_ALREADY_RUNNING: { status: 409, sqlstate: '55006', exitCode: 1 },
  ERR_DB_NOT_OWNER: { status: 500, sqlstate: '42501', exitCode: 1 },
  ERR_DB_NOT_SET_UP: { status: 500, sqlstate: '55000', exitCode: 1 },
  // The same answer whether the database exists or not: it tells a client nothing about the server.
  // 400, not 404: Neon's driver reads the SQLSTATE only from a 400 body (NeonDbError.code is undefined else).
  ERR_DB_NOT_SERVED: { status: 400, sqlstate: '3D000', exitCode: 1 },
  ERR_DB_UNSUPPORTED_VERSION: { status: 500, sqlstate: '0A000', exitCode: 1 },
  ERR_PROVIDER_EXISTS: { status: 409, sqlstate: '42710', exitCode: 1 },
  ERR_PROVIDER_NOT_FOUND: { status: 404, sqlstate: '42704', exitCode: 1 },
  ERR_SESSION_INVALID: auth,
  // A client keeps altering the restricted role (ALTER ROLE CURRENT_USER ...): "cannot connect now", retry.
  ERR_ROLE_TAMPERED: { status: 503, sqlstate: '57P03', exitCode: 1 },
  ERR_BAD_REQUEST: { status: 400, sqlstate: '08P01', exitCode: 2 },
  ERR_CONNECTION_STRING_INVALID: { status: 400, sqlstate: '08P01', exitCode: 2 },
  ERR_ISOLATION_LEVEL_INVALID: { status: 400, sqlstate: '08P01', exitCode: 2 },
  ERR_MULTI_STATEMENT: { status: 400, sqlstate: '42601', exitCode: 2 },
  ERR_TRANSACTION_CONTROL: { status: 400, sqlstate: '25000', exitCode: 2 },
  ERR_REQUEST_TOO_LARGE: { status: 413, sqlstate: '54000', exitCode: 2 },
  ERR_RESPONSE_TOO_LARGE: { status: 507, sqlstate: '54000', exitCode: 1 },
  ERR_POOL_TIMEOUT: { status: 400, sqlstate: '53300', exitCode: 1 },
  // One identity past its share of a pool (HTTP, with Retry-After) or of the wire sessions (at login):
  // 53300 too_many_connections, as Postgres and PgBouncer say it.
  ERR_FAIR_SHARE_EXCEEDED: { status: 429, sqlstate: '53300', exitCode: 1 },
  ERR_TOO_MANY_SESSIONS: { status: 429, sqlstate: '53300', exitCode: 1 },
  ERR_QUERY_CANCELLED: { status: 400, sqlstate: '57014', exitCode: 1 },
  ERR_SESSION_EXPIRED: { status: 400, sqlstate: '28000', authSqlstate: '28P01', exitCode: 1 },
  ERR_TLS_REQUIRED: { status: 400, sqlstate: '28000', exitCode: 1 },
  ERR_NOT_FOUND: { status: 404, sqlstate: '42704', exitCode: 1 },
  ERR_METHOD_NOT_ALLOWED: { status: 405, sqlstate: '0A000', exitCode: 1 },
  ERR_UNAUTHORIZED: { status: 401, sqlstate: '28000', exitCode: 1 },
  ERR_FORBIDDEN: { status: 403, sqlstate: '42501', exitCode: 1 },
  // A configured limit (console login attempts per address); the response says when to retry.
  ERR_TOO_MANY_ATTEMPTS: { status: 429, sqlstate: '53400', exitCode: 1 },
  ERR_SHUTTING_DOWN: { status: 503, sqlstate: '57P01', exitCode: 1 },
  ERR_SYSTEM: { status: 500, sqlstate: '58000', exitCode: 1 },
  ERR_INTERNAL: { status: 500, sqlstate: 'XX000', exitCode: 1 },
}

export interface PgAuthorizeErrorOptions {
  cause?: unknown
  /** Extra detail safe to show to the client (never a secret). */
  detail?: string
  hint?: string
}

/**
 * Marks our errors, across copies of the package (a registered symbol is the same in every copy). Matching
 * on `code` alone would take jose's errors for ours: they use the same `ERR_JWT_*` strings.
 */
const MARK = Symbol.for('pg-authorize.error')

/** The base class of every error pg-authorize raises on purpose. */
export class PgAuthorizeError extends Error {
  readonly [MARK] = true
  readonly code: ErrorCode
  readonly detail: string | undefined
  readonly hint: string | undefined

  constructor(code: ErrorCode, message: string, options: PgAuthorizeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PgAuthorizeError'
    this.code = code
    this.detail = options.detail
    this.hint = options.hint
  }

  get status(): number {
    return ERROR_TABLE[this.code].status
  }

  get sqlstate(): string {
    return ERROR_TABLE[this.code].sqlstate
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exitCode
  }
}

/** True for any error pg-authorize raised on purpose, even from another copy of the package. */
export function isPgAuthorizeError(err: unknown): err is PgAuthorizeError {
  return (
    err instanceof Error &&
    (err as { [MARK]?: unknown })[MARK] === true &&
    Object.hasOwn(ERROR_TABLE, (err as unknown as { code: string }).code)
  )
}

/** The mapping for an error; anything not raised on purpose is an internal error. */
export function errorMapping(err: unknown): ErrorMapping {
  return isPgAuthorizeError(err) ? ERROR_TABLE[err.code] : ERROR_TABLE.ERR_INTERNAL
}

/**
 * True for Node's errors from the operating system (`EADDRINUSE`, `EACCES`, `EEXIST`, ...): they carry an
 * errno code and the system call. Their messages name the call and the path or address, never file contents.
 */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { syscall: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  )
}

/** An operating-system error as ERR_SYSTEM, keeping its message (`EACCES: permission denied, mkdir '/x'`). */
export function systemError(err: NodeJS.ErrnoException, message = err.message): PgAuthorizeError {
  return new PgAuthorizeError('ERR_SYSTEM', message, { cause: err })
}
