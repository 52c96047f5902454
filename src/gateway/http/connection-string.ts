/**
 * Parses the `Neon-Connection-String` header the way Neon's proxy does (`http_util.rs::get_conn_info`):
 * `postgres:` or `postgresql:`, the user and the first path segment percent-decoded, the password optional
 * and ignored (identity comes from the JWT; Neon's driver sends whatever URL it was given, and Neon's proxy
 * ignores a password next to a JWT, so refusing one would break drop-in use), `sslmode`/`channel_binding`
 * ignored, `application_name` kept.
 * Failures carry Neon's own messages, as HTTP 400.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'

export interface NeonConnectionInfo {
  /** The user of the URL, percent-decoded: the role the request asks to run as. */
  role: string
  /** The first path segment, percent-decoded. */
  database: string
  applicationName: string | undefined
  url: URL
}

function invalid(message: string): PgAuthorizeError {
  return new PgAuthorizeError('ERR_CONNECTION_STRING_INVALID', message)
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw invalid(`invalid ${what}`)
  }
}

/** Parses the header value; `null` (header absent) fails like Neon does. */
export function parseConnectionString(header: string | null): NeonConnectionInfo {
  if (header === null) throw invalid('invalid header: neon-connection-string')
  let url: URL
  try {
    url = new URL(header)
  } catch {
    throw invalid('invalid connection string: could not parse it as a URL')
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') throw invalid('incorrect scheme')
  if (url.hostname === '') throw invalid('missing hostname')
  const segment = url.pathname.split('/')[1] ?? ''
  if (segment === '') throw invalid('missing database name')
  const database = decode(segment, 'database name')
  if (url.username === '') throw invalid('missing username')
  const role = decode(url.username, 'username')
  return { role, database, applicationName: url.searchParams.get('application_name') ?? undefined, url }
}
