/**
 * Every use of node-postgres' internals, in one place. The gateway needs a few things pg has no public API
 * for: the backend's cancel key, the ReadyForQuery status of each reply, the ParameterStatus messages of
 * the login, and the socket itself (closed at once on a failure, or taken over to splice bytes on the
 * wire). `pg` is pinned to an exact version in package.json because of them, and
 * test/database/pg-internals.test.ts pins the behaviour each function relies on, so an upgrade that
 * changes one fails there first.
 *
 * @module
 */
import type { EventEmitter } from 'node:events'
import type net from 'node:net'
import type pg from 'pg'

/** pg's Connection: the protocol writer a submittable drives (execute.ts). */
export type PgConnection = pg.Connection & {
  stream: net.Socket & { cork?(): void; uncork?(): void }
  parse(q: { text: string; name?: string; types?: number[] }): void
  bind(c: { portal?: string; statement?: string; values: readonly (string | null)[] }): void
  describe(c: { type: 'P' | 'S'; name?: string }): void
  execute(c: { portal?: string; rows?: number }): void
  sync(): void
  sendCopyFail(msg: string): void
}

/**
 * Writes `steps` as one pipeline on `connection` (what a pg submittable's `submit` receives): for each,
 * Parse/Bind/(Describe when captured)/Execute through the extended protocol with untyped text params,
 * then a single Sync, corked into as few writes as the socket allows.
 */
export function writePipeline(
  connection: pg.Connection,
  steps: readonly { text: string; values: readonly (string | null)[]; capture: boolean }[],
): void {
  const con = connection as PgConnection
  con.stream.cork?.()
  try {
    for (const s of steps) {
      con.parse({ text: s.text, types: [] })
      con.bind({ values: s.values })
      if (s.capture) con.describe({ type: 'P' })
      con.execute({ rows: 0 })
    }
    con.sync()
  } finally {
    con.stream.uncork?.()
  }
}

interface ClientInternals {
  processID: number | null | undefined
  secretKey: number | null | undefined
  host: string
  port: number
  readyForQuery?: boolean
  connection: PgConnection & EventEmitter
}

const internals = (client: pg.ClientBase) => client as unknown as ClientInternals

/** Where and how to cancel the backend's running statement (its BackendKeyData), once logged in. */
export interface BackendKey {
  host: string
  port: number
  processId: number
  secretKey: number
}

export function backendKey(client: pg.ClientBase): BackendKey | undefined {
  const c = internals(client)
  if (typeof c.processID !== 'number' || typeof c.secretKey !== 'number') return undefined
  return { host: c.host, port: c.port, processId: c.processID, secretKey: c.secretKey }
}

/**
 * Calls `listener` with each ReadyForQuery status (I, T or E), before any query waiting for that reply
 * settles: so whoever gets the result back already sees the session's state.
 */
export function onReadyForQuery(client: pg.ClientBase, listener: (status: string) => void): void {
  internals(client).connection.prependListener('readyForQuery', (msg: { status?: string }) => listener(msg.status ?? '?'))
}

/** Calls `listener` with each ParameterStatus the server sends (at login: server_version, TimeZone, ...). */
export function onParameterStatus(client: pg.ClientBase, listener: (name: string, value: string) => void): void {
  internals(client).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => listener(m.parameterName, m.parameterValue))
}

/** True when the client has no reply pending (pg's own flag for "the next query can be sent"). */
export function isReadyForQuery(client: pg.ClientBase): boolean {
  return internals(client).readyForQuery === true
}

/** Closes the connection's socket at once (its protocol state is unknown, or it missed a deadline). */
export function destroySocket(client: pg.ClientBase): void {
  internals(client).connection?.stream?.destroy()
}

/**
 * Takes the logged-in connection's socket away from pg: every listener pg put on it is removed and the
 * socket is paused, so its bytes can be spliced (the wire relay). The client is unusable afterwards.
 */
export function takeOverSocket(client: pg.ClientBase): net.Socket {
  const connection = internals(client).connection
  const socket = connection.stream
  socket.removeAllListeners('data')
  socket.removeAllListeners('end')
  socket.removeAllListeners('close')
  socket.removeAllListeners('error')
  connection.removeAllListeners()
  connection.on('error', () => {})
  socket.pause()
  return socket
}
