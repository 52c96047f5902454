/**
 * Runs a Data API request's statements on one pg connection as a single pipelined round trip: each step
 * is Parse/Bind/(Describe)/Execute, with one Sync at the end, so a failing step makes Postgres skip the
 * rest (a query never runs without the identity it was meant to run with). Rows of captured steps come
 * back as Postgres's raw text, so the JSON body built by Postgres is handed on without being parsed.
 *
 * @module
 */
import type pg from 'pg'
import { writePipeline, type PgConnection } from '../../database/pg-internals.js'

export interface PipelineStep {
  text: string
  values: readonly (string | null)[]
  /** Keep its rows and command tag. */
  capture: boolean
}

export interface StepResult {
  rows: (string | null)[][]
  /** The command tag (`SELECT 1`, `INSERT 0 3`). */
  command: string
}

/** A pg "submittable": `client.query(new RestPipeline(steps))`, then await `.promise`. */
export class RestPipeline {
  readonly promise: Promise<StepResult[]>
  readonly #steps: readonly PipelineStep[]
  readonly #results: StepResult[] = []
  #rows: (string | null)[][] = []
  #step = 0
  #settled = false
  #resolve!: (r: StepResult[]) => void
  #reject!: (e: unknown) => void
  readonly #maxBytes: number
  #bytes = 0

  /** `maxBytes`: the most text the captured rows may hold; past it the promise rejects with `tooLarge()`. */
  readonly tooLarge: () => Error

  constructor(steps: readonly PipelineStep[], maxBytes: number, tooLarge: () => Error) {
    this.tooLarge = tooLarge
    this.#steps = steps
    this.#maxBytes = maxBytes
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  /** Whether the failure was in step `i` or later (steps before it succeeded). */
  failedStep = -1

  submit(connection: pg.Connection): void {
    writePipeline(connection, this.#steps)
  }

  handleRowDescription(): void {}

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.#settled || !this.#steps[this.#step]?.capture) return
    for (const f of msg.fields) if (f !== null) this.#bytes += f.length
    if (this.#bytes > this.#maxBytes) {
      this.#settled = true
      this.#rows = []
      this.#reject(this.tooLarge())
      return
    }
    this.#rows.push(msg.fields)
  }

  handleCommandComplete(msg: { text: string }): void {
    this.#finish(msg.text)
  }

  handleEmptyQuery(): void {
    this.#finish('')
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    // Never asked for by the builder; refuse it the way /sql does so the connection ends in a known state.
    const con = connection as PgConnection
    con.sendCopyFail('COPY FROM STDIN is not supported')
    if (this.#step === this.#steps.length - 1) con.sync()
  }

  handleCopyData(): void {}

  handleError(err: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.failedStep = this.#step
    this.#reject(err)
  }

  handleReadyForQuery(): void {
    if (this.#settled) return
    this.#settled = true
    this.#resolve(this.#results)
  }

  #finish(tag: string): void {
    const step = this.#steps[this.#step++]
    if (this.#settled || !step?.capture) return
    this.#results.push({ rows: this.#rows, command: tag })
    this.#rows = []
  }
}
