/**
 * Runs a request's statements on one leased connection as a single pipelined round trip, and renders
 * the results directly as Neon's JSON text.
 *
 * Why a custom pg "submittable" instead of `client.query(...)`:
 * - Every statement goes through the extended protocol (Parse/Bind/Describe/Execute), as Neon's proxy does,
 *   so a multi-statement string is rejected by Postgres (42601) and params are bound as untyped text (OID 0).
 * - All steps of a request (claims, application_name, BEGIN, the user's queries, COMMIT) are written at once
 *   with a single Sync at the end: one round trip, and if any step fails the rest are skipped by Postgres
 *   itself (fail closed: a query never runs without the identity it was meant to run with).
 * - DataRow values arrive from pg-protocol as the raw Postgres text; they are JSON-encoded as they arrive
 *   (no type parsing, no intermediate row objects, no re-parsing), and the response size cap is enforced
 *   row by row so a huge result is stopped early instead of being buffered.
 *
 * @module
 */
import type pg from 'pg'
import { PgAuthorizeError } from '../../errors.js'
import { writePipeline, type PgConnection } from '../../database/pg-internals.js'

/** One statement of a request. */
export interface Step {
  text: string
  values: readonly (string | null)[]
  /** Whether its result goes into the response (false for the gateway's own BEGIN/claims/COMMIT). */
  capture: boolean
  /** Rows as arrays (Neon-Array-Mode) or as objects. */
  arrayMode: boolean
  /** Values as raw Postgres text (Neon-Raw-Text-Output: true) or converted to JSON types. */
  rawText: boolean
}

/** Thrown when a step fails; `step` is the index of the failing step, `error` what Postgres (or pg) said. */
export class StepError extends Error {
  readonly step: number
  readonly error: unknown
  constructor(step: number, error: unknown) {
    super('statement failed')
    this.step = step
    this.error = error
  }
}

interface ProtocolField {
  name: string
  tableID: number
  columnID: number
  dataTypeID: number
  dataTypeSize: number
  dataTypeModifier: number
  format: string
}


/** Converts one raw text value to its JSON text in non-raw mode (Neon's json.rs, scalars). */
type ToJson = (v: string) => string

const jsonBool: ToJson = (v) => (v === 't' ? 'true' : 'false')
const jsonNumber: ToJson = (v) => v
const jsonFloat: ToJson = (v) => (/^[-+0-9.eE]+$/.test(v) ? v : JSON.stringify(v))
const jsonRaw: ToJson = (v) => v
const jsonString: ToJson = (v) => JSON.stringify(v)

/** Non-raw mode converters by type OID; everything else (int8 and numeric included, as Neon) is a string. */
const TO_JSON: ReadonlyMap<number, ToJson> = new Map([
  [16, jsonBool],
  [21, jsonNumber],
  [23, jsonNumber],
  [700, jsonFloat],
  [701, jsonFloat],
  [114, jsonRaw],
  [3802, jsonRaw],
])

/**
 * A pg submittable running `steps` and producing, for each captured step, the JSON text of its result
 * object. `budget` is the most bytes the rendered results may take (Neon's max_response_size_bytes).
 */
export class Pipeline {
  readonly promise: Promise<string[]>
  readonly #steps: readonly Step[]
  #resolve!: (r: string[]) => void
  #reject!: (e: unknown) => void
  #settled = false
  #step = 0
  #budget: number
  readonly #maxBytes: number
  readonly #results: string[] = []
  // state of the current captured step
  #fieldsJson = '[]'
  #rows: string[] = []
  #keys: string[] | null = null
  #convert: (ToJson | undefined)[] | null = null

  constructor(steps: readonly Step[], maxBytes: number) {
    this.#steps = steps
    this.#maxBytes = maxBytes
    this.#budget = maxBytes
    this.promise = new Promise<string[]>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  /** Called by pg when the connection is ready: writes every step and one Sync. */
  submit(connection: pg.Connection): void {
    writePipeline(connection, this.#steps)
  }

  handleRowDescription(msg: { fields: ProtocolField[] }): void {
    const step = this.#steps[this.#step]
    if (step === undefined || !step.capture) return
    const fields = msg.fields
    const meta = new Array<string>(fields.length)
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!
      meta[i] =
        `{"name":${JSON.stringify(f.name)},"dataTypeID":${f.dataTypeID},"tableID":${f.tableID},` +
        `"columnID":${f.columnID},"dataTypeSize":${f.dataTypeSize},"dataTypeModifier":${f.dataTypeModifier},` +
        `"format":${JSON.stringify(f.format)}}`
    }
    this.#fieldsJson = '[' + meta.join(',') + ']'
    this.#keys = step.arrayMode ? null : fields.map((f) => JSON.stringify(f.name) + ':')
    this.#convert = step.rawText ? null : fields.map((f) => TO_JSON.get(f.dataTypeID) ?? jsonString)
    this.#charge(this.#fieldsJson.length)
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.#settled) return
    const step = this.#steps[this.#step]
    if (step === undefined || !step.capture) return
    const values = msg.fields
    let row: string
    if (this.#keys === null && this.#convert === null) {
      // Hot path (what the Neon driver always asks for): the row is already an array of text or null.
      row = JSON.stringify(values)
    } else {
      const parts = new Array<string>(values.length)
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        const json = v === null || v === undefined ? 'null' : this.#convert ? this.#convert[i]!(v) : JSON.stringify(v)
        parts[i] = this.#keys ? this.#keys[i] + json : json
      }
      row = this.#keys ? '{' + parts.join(',') + '}' : '[' + parts.join(',') + ']'
    }
    // JSON text is ASCII-escaped only for control characters, so count real UTF-8 bytes.
    if (this.#charge(Buffer.byteLength(row) + 1)) this.#rows.push(row)
  }

  handleCommandComplete(msg: { text: string }): void {
    this.#finishStep(msg.text)
  }

  handleEmptyQuery(): void {
    this.#finishStep('')
  }

  handlePortalSuspended(): void {
    // Never asked for (Execute with rows = 0 runs to completion).
  }

  /**
   * `COPY … FROM STDIN` has no data source over HTTP: refuse it with CopyFail, and finish the protocol so the
   * connection comes back with exactly one ReadyForQuery. Postgres ignores a Sync that arrives during COPY IN,
   * and it reads our pipelined messages in order, all before the CopyFail:
   * - COPY as the last step: the request's one Sync was swallowed by COPY mode, so CopyFail ends the COPY
   *   with an error and a Sync of our own ends the discarding that follows (without it the backend waits for
   *   a Sync forever, issue 23);
   * - another step after it (a batch's COMMIT): that step's Parse already ended COPY mode with an error
   *   (08P01), the request's own Sync then ends the pipeline, and the CopyFail is ignored outside COPY mode.
   *   Another Sync here would produce a second ReadyForQuery and corrupt the connection's next reply.
   */
  handleCopyInResponse(connection: pg.Connection): void {
    const con = connection as PgConnection
    con.sendCopyFail('COPY FROM STDIN is not supported over HTTP')
    if (this.#step === this.#steps.length - 1) con.sync()
  }

  handleCopyData(): void {
    // COPY TO STDOUT output has nowhere to go over HTTP; the command tag still reports it.
  }

  handleError(err: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.#reject(new StepError(this.#step, err))
  }

  handleReadyForQuery(): void {
    if (this.#settled) return
    this.#settled = true
    this.#resolve(this.#results)
  }

  /** Takes `n` bytes from the budget; on overrun rejects at once (the caller cancels the backend). */
  #charge(n: number): boolean {
    this.#budget -= n
    if (this.#budget >= 0) return true
    if (!this.#settled) {
      this.#settled = true
      this.#rows = []
      this.#reject(
        new PgAuthorizeError('ERR_RESPONSE_TOO_LARGE', `response is too large (max is ${this.#maxBytes} bytes)`),
      )
    }
    return false
  }

  #finishStep(tag: string): void {
    const step = this.#steps[this.#step++]
    if (this.#settled || step === undefined || !step.capture) return
    const words = tag.split(' ')
    const command = words[0] ?? ''
    // Neon: the count is the 3rd word of INSERT's tag ("INSERT 0 5"), the 2nd otherwise, null when absent.
    const countWord = command === 'INSERT' ? words[2] : words[1]
    const rowCount = countWord !== undefined && /^\d+$/.test(countWord) ? countWord : 'null'
    const json =
      `{"command":${JSON.stringify(command)},"fields":${this.#fieldsJson},"rowCount":${rowCount},` +
      `"rows":[${this.#rows.join(',')}],"rowAsArray":${step.arrayMode}}`
    this.#charge(command.length + 64) // the envelope around fields and rows (those were charged already)
    this.#results.push(json)
    this.#fieldsJson = '[]'
    this.#rows = []
    this.#keys = null
    this.#convert = null
  }
}
