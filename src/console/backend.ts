/**
 * What the console needs from the gateway, and nothing more: the served database's context (its name,
 * its restricted roles, how to log in as one, how to seal claims), its verifier (the providers, a forced
 * JWKS refresh) and its provider watch (to make a change visible now), plus a reload after set-up.
 *
 * The console depends on this interface, not on the gateway's `Databases`, which satisfies it
 * structurally: so the console imports nothing from `src/gateway`, and the gateway is free to move or
 * reshape its classes as long as they still offer these members.
 *
 * @module
 */
import type { DatabaseContext } from '../database/context.js'
import type { Verifier } from '../verify/verifier.js'

/** The parts of a database context the console uses (the header, the playground). */
export type ConsoleDatabase = Pick<DatabaseContext, 'database' | 'roles' | 'roleConnectionConfig' | 'seal'>

/** The parts of the gateway's verifier the console uses (its own inspector verifier copies the providers). */
export type ConsoleGatewayVerifier = Pick<Verifier, 'providers' | 'refresh'>

/** One served database, as the gateway has opened it. */
export interface ConsoleServed {
  ctx: ConsoleDatabase
  verifier: ConsoleGatewayVerifier
  watch: { reload(): Promise<void> }
}

/**
 * The gateway as the console sees it. The console manages the default database only.
 *
 * @example
 * // The gateway's Databases satisfies it as it is:
 * createConsoleApp({ databases, ownerUrl, adminToken, endpoints })
 */
export interface ConsoleBackend {
  /** Opens (once) the default database; rejects with ERR_DB_NOT_SET_UP when pg-authorize is not installed there. */
  open(): Promise<ConsoleServed>
  /** Re-reads providers and credentials of every open database (after set-up). */
  reload(): Promise<void>
}
