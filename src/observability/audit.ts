/**
 * The audit trail: one record per verified identity use, written to the log stream and, optionally, to
 * `pgauthorize.audit_log` (batched inserts through the owner connection, with retention).
 *
 * A record never holds the token, the claims or query parameters: provider, `sub`, role, database,
 * transport, request id, statement kind (the first keyword of each statement), outcome and error code.
 *
 * @module
 */
import pg from 'pg'
import type { Logger } from './logger.js'

export interface AuditRecord {
  requestId?: string | undefined
  provider?: string | undefined
  subject?: string | undefined
  role: string
  database: string
  transport: string
  /** Statement kinds, e.g. `SELECT` or `BEGIN,INSERT,COMMIT`; `SESSION` for a wire session. */
  statement?: string | undefined
  outcome: string
  code?: string | undefined
}

export interface AuditOptions {
  logger: Logger
  /** Owner connection string: when set, records are also inserted into pgauthorize.audit_log. */
  tableUrl?: string | undefined
  retentionDays?: number
  /** Flush interval for table writes, ms. Default 1000. */
  flushMs?: number
}

/** The first keyword of a statement, upper-cased (`select ...` → `SELECT`), or `OTHER`. */
export function statementKind(sql: string): string {
  const m = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(sql)
  return m ? m[1]!.toUpperCase().slice(0, 16) : 'OTHER'
}

export class AuditTrail {
  readonly #opts: AuditOptions
  #queue: AuditRecord[] = []
  #timer: NodeJS.Timeout | undefined
  #pruneTimer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  constructor(options: AuditOptions) {
    this.#opts = options
    if (options.tableUrl) {
      this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 1000)
      this.#timer.unref()
      const prune = () => void this.#prune()
      this.#pruneTimer = setInterval(prune, 3_600_000)
      this.#pruneTimer.unref()
      setTimeout(prune, 1000).unref()
    }
  }

  record(r: AuditRecord): void {
    this.#opts.logger.info({ audit: r }, 'audit')
    if (this.#opts.tableUrl) {
      // Bounded: under a flood the oldest unwritten records are dropped from the table (the log has them).
      if (this.#queue.length >= 10_000) this.#queue.shift()
      this.#queue.push(r)
    }
  }

  async flush(): Promise<void> {
    if (this.#flushing) return this.#flushing
    if (!this.#opts.tableUrl || this.#queue.length === 0) return
    const batch = this.#queue
    this.#queue = []
    this.#flushing = (async () => {
      const c = new pg.Client({ connectionString: this.#opts.tableUrl })
      c.on('error', () => {})
      try {
        await c.connect()
        const cols = ['request_id', 'provider', 'subject', 'role', 'database', 'transport', 'statement', 'outcome', 'code'] as const
        const values: (string | null)[] = []
        const rows = batch.map((r, i) => {
          values.push(r.requestId ?? null, r.provider ?? null, r.subject ?? null, r.role, r.database, r.transport, r.statement ?? null, r.outcome, r.code ?? null)
          return `(${cols.map((_, j) => `$${i * cols.length + j + 1}`).join(', ')})`
        })
        await c.query(`insert into pgauthorize.audit_log (${cols.join(', ')}) values ${rows.join(', ')}`, values)
      } catch (err) {
        this.#opts.logger.warn({ code: (err as { code?: string }).code ?? 'ERR_INTERNAL', dropped: batch.length }, 'audit table write failed')
      } finally {
        await c.end().catch(() => {})
      }
    })().finally(() => {
      this.#flushing = undefined
    })
    return this.#flushing
  }

  async #prune(): Promise<void> {
    if (!this.#opts.tableUrl) return
    const c = new pg.Client({ connectionString: this.#opts.tableUrl })
    c.on('error', () => {})
    try {
      await c.connect()
      const days = this.#opts.retentionDays ?? 30
      // The owner's SECURITY DEFINER function (sql/0009): the gateway role may append, not delete.
      await c.query('select pgauthorize.purge_audit_log($1)', [days]).catch(async (err: { code?: string }) => {
        if (err.code !== '42883') throw err
        await c.query(`delete from pgauthorize.audit_log where at < now() - make_interval(days => $1)`, [days])
      })
    } catch {
      // Retention is retried next hour.
    } finally {
      await c.end().catch(() => {})
    }
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    if (this.#pruneTimer) clearInterval(this.#pruneTimer)
    await this.flush()
  }
}
