/**
 * Coalesces triggers of one async job: however often `trigger()` is called, at most one run is in flight and
 * at most one more is pending (security property 10: a flood of NOTIFYs, from anyone, costs two reloads, not
 * one per notification). Every trigger is answered by a run that starts after it.
 *
 * @module
 */
export interface Coalesced<T> {
  /** Asks for a run; resolves with the result of the first run that starts after this call. */
  trigger(): Promise<T>
  /** Runs started so far (for tests and metrics). */
  readonly runs: number
}

export function coalesce<T>(job: () => Promise<T>): Coalesced<T> {
  let running: Promise<T> | undefined
  let pending: Promise<T> | undefined
  let runs = 0
  const start = (): Promise<T> => {
    runs++
    const p = job().finally(() => {
      if (running === p) running = undefined
    })
    running = p
    return p
  }
  return {
    trigger() {
      if (!running) return start()
      // One run is in flight and may have read its inputs already: queue exactly one more behind it.
      pending ??= running
        .catch(() => undefined)
        .then(() => {
          pending = undefined
          return start()
        })
      return pending
    },
    get runs() {
      return runs
    },
  }
}
