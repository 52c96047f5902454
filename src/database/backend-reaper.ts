/**
 * Ends restricted-role backends that outlive their session. When a wire session ends (token expiry, the
 * client going away, shutdown), the gateway sends a CancelRequest and closes the upstream socket, and an
 * idle backend exits at once. A statement that catches the cancel (`loop ... exception when
 * query_canceled ... end loop`) and never reads from its socket keeps running, though, with the claims of a
 * session that is over. After a short grace period the backend is terminated through the owner.
 *
 * Backends are named by pid *and* `backend_start`, so a pid the kernel has handed to a new backend since
 * is never touched. Due backends are terminated in one statement, one in flight at a time: a burst of
 * ended sessions costs one owner query, not one each (security property 10).
 *
 * @module
 */
import type pg from 'pg'

/** How long an ended session's backend may take to exit on its own before it is terminated. */
export const BACKEND_GRACE_MS = 3000

/** Most backends waiting for their grace period to pass; beyond that the oldest are checked at once. */
const MAX_PENDING = 10_000

interface Pending {
  pid: number
  /** `extract(epoch from backend_start)` as exact decimal text. */
  started: string
  role: string
  due: number
}

// Multi-array unnest is grammar (it cannot be schema-qualified); this runs on the owner connection only.
const REAP_SQL = `select pg_catalog.pg_terminate_backend(a.pid) as ended
  from pg_catalog.pg_stat_activity a
  join unnest($1::int[], $2::numeric[], $3::text[]) as t(pid, started, role) on a.pid = t.pid
 where extract(epoch from a.backend_start) = t.started and a.usename = t.role`

export interface BackendReaperOptions {
  withOwner<T>(fn: (owner: pg.ClientBase) => Promise<T>): Promise<T>
  /** Default {@link BACKEND_GRACE_MS}. */
  graceMs?: number
  /** Told how many backends a sweep terminated. */
  onReaped?: (count: number) => void
}

export class BackendReaper {
  readonly #opts: BackendReaperOptions
  readonly #pending: Pending[] = []
  #timer: NodeJS.Timeout | undefined
  #running = false
  #closed = false
  /** True: no `pgauthorize.reap_backends` in this database, terminate with our own rights. */
  #direct: boolean | undefined

  constructor(options: BackendReaperOptions) {
    this.#opts = options
  }

  /** Terminates backend `pid` of `role` after the grace period, if it is still the same backend then. */
  schedule(pid: number, started: string, role: string): void {
    if (this.#closed) return
    this.#pending.push({ pid, started, role, due: Date.now() + (this.#opts.graceMs ?? BACKEND_GRACE_MS) })
    if (this.#pending.length > MAX_PENDING) this.#pending[0]!.due = 0
    this.#arm()
  }

  #arm(): void {
    if (this.#timer || this.#running || this.#pending.length === 0 || this.#closed) return
    const wait = Math.max(0, this.#pending[0]!.due - Date.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#sweep()
    }, wait)
    this.#timer.unref()
  }

  async #sweep(): Promise<void> {
    this.#running = true
    const now = Date.now()
    // Scheduled in order with one grace period, so the due ones are a prefix (an overflow only lowers `due`).
    let n = 0
    while (n < this.#pending.length && this.#pending[n]!.due <= now) n++
    const due = this.#pending.splice(0, n)
    try {
      if (due.length > 0) {
        const args = [due.map((p) => p.pid), due.map((p) => p.started), due.map((p) => p.role)]
        const ended = await this.#opts.withOwner(async (c) => {
          if (this.#direct !== true) {
            try {
              // The owner's SECURITY DEFINER function (sql/0009): the gateway role cannot signal backends itself.
              const r = await c.query<{ n: number }>('select pgauthorize.reap_backends($1::int[], $2::numeric[], $3::text[]) as n', args)
              this.#direct = false
              return r.rows[0]?.n ?? 0
            } catch (err) {
              // Before 0009 (setup not run again yet): the owner's own rights.
              if ((err as { code?: unknown }).code !== '42883' || this.#direct === false) throw err
              this.#direct = true
            }
          }
          return (await c.query(REAP_SQL, args)).rowCount ?? 0
        })
        if (ended > 0) this.#opts.onReaped?.(ended)
      }
    } catch {
      // The owner side is down: those backends went with it, or the next sweep's owner query fails too.
    } finally {
      this.#running = false
      this.#arm()
    }
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#pending.length = 0
  }
}
