/**
 * The engine of `pg-authorize as`: runs SQL as an identity, each script in a transaction that is rolled
 * back unless asked to commit, and reports each statement's rows or its error with the SQLSTATE.
 *
 * @module
 */
import pg from 'pg'
import { openDatabaseContext, type DatabaseContext } from '../database/context.js'
import type { Claims } from '../database/session.js'
import { checkRole, installIdentity, rollbackQuietly, sqlError } from './identity.js'

/** The outcome of one statement. */
export interface StatementResult {
  command: string
  rowCount: number | null
  fields: string[]
  rows: Record<string, unknown>[]
}

/** The outcome of one script (one `-c`, one file, or one interactive statement). */
export interface ScriptResult {
  results: StatementResult[]
  error?: { sqlstate: string; message: string; detail?: string; hint?: string }
  /** How the transaction ended. `escaped` when the script itself ended our transaction (COMMIT/ROLLBACK in it). */
  ending: 'rolled back' | 'committed' | 'escaped'
}

export interface AsSessionOptions {
  role: string
  claims: Claims | null
  /** Commit instead of rolling back. */
  commit?: boolean
  /** Keep values as Postgres' text (for tables) instead of parsed JS values (for JSON). Default true. */
  rawText?: boolean
}

/** One login as the role; run scripts with `run`, then `close`. */
export interface AsSession {
  run(sql: string): Promise<ScriptResult>
  close(): Promise<void>
}

// Every value as the text Postgres sent, so the table shows what psql would.
const TEXT_TYPES = { getTypeParser: () => (value: string) => value }

export async function openAsSession(ownerUrl: string, options: AsSessionOptions, ctx?: DatabaseContext): Promise<AsSession> {
  const context = ctx ?? (await openDatabaseContext(ownerUrl))
  checkRole(context, options.role)
  const client = new pg.Client(context.roleConnectionConfig(options.role))
  client.on('error', () => {})
  await client.connect()
  const types = options.rawText === false ? undefined : TEXT_TYPES
  return {
    async run(sql) {
      // The transaction's id, fetched again at the end: if it changed (or is gone), the script ran
      // COMMIT or ROLLBACK itself, and we must not claim we rolled its writes back.
      await client.query('BEGIN')
      await installIdentity(client, context, options.role, options.claims)
      const begin = await client.query<{ x: string }>('select pg_catalog.pg_current_xact_id()::text as x')
      const xid = begin.rows[0]!.x
      const out: ScriptResult = { results: [], ending: 'rolled back' }
      try {
        const r = (await client.query({ text: sql, ...(types ? { types } : {}) })) as pg.QueryResult | pg.QueryResult[]
        for (const one of Array.isArray(r) ? r : [r]) {
          out.results.push({
            command: one.command ?? '',
            rowCount: one.rowCount,
            fields: (one.fields ?? []).map((f) => f.name),
            rows: one.rows,
          })
        }
      } catch (err) {
        const e = sqlError(err)
        if (!e) throw err
        const { detail, hint } = err as { detail?: string; hint?: string }
        out.error = { ...e, ...(detail ? { detail } : {}), ...(hint ? { hint } : {}) }
      }
      if (!out.error) {
        const still = await client.query<{ x: string | null }>('select pg_catalog.pg_current_xact_id_if_assigned()::text as x')
        if (still.rows[0]!.x !== xid) out.ending = 'escaped'
      }
      if (out.ending !== 'escaped' && options.commit && !out.error) {
        await client.query('COMMIT')
        out.ending = 'committed'
      } else {
        await rollbackQuietly(client)
      }
      return out
    },
    close: () => client.end().catch(() => {}),
  }
}

/** Splits interactive input into statements: a statement ends with a line whose last character is `;`. */
export function* statementsFromLines(lines: Iterable<string>): Generator<string> {
  let buffer: string[] = []
  for (const line of lines) {
    if (buffer.length === 0 && (line.trim() === '' || line.trim().startsWith('--'))) continue
    buffer.push(line)
    if (line.trimEnd().endsWith(';')) {
      yield buffer.join('\n')
      buffer = []
    }
  }
  if (buffer.join('').trim()) yield buffer.join('\n')
}
