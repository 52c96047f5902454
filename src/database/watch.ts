/**
 * Keeps a gateway's view of one database current: its providers and its sealing key.
 *
 * One owner connection LISTENs on `pg_authorize_providers` and `pg_authorize_keys` and also runs every reload,
 * so watching a database costs one connection however much happens. Any role may NOTIFY on any channel, so a
 * notification is only a hint: it triggers a coalesced reload (at most one in flight and one pending, see
 * `lib/coalesce.ts`), never work of its own, and its payload is ignored. A poll every `pollMs` covers lost
 * notifications (a dropped connection, a pooler that does not pass NOTIFY through); a dropped connection is
 * replaced with backoff.
 *
 * @module
 */
import type pg from 'pg'
import { coalesce } from '../lib/coalesce.js'
import { connectOwner } from './connect.js'
import { listProviders, providerVersions, type StoredProvider } from './providers.js'
import { KEYS_CHANNEL } from './session.js'

export const PROVIDERS_CHANNEL = 'pg_authorize_providers'

export interface WatchHandlers {
  /** The providers, whenever they differ from the last ones delivered. */
  providers(providers: StoredProvider[]): void
  /**
   * Providers whose row was touched (a newer `updated_at`, the same config: `providers refresh`): refetch
   * their keys. Not called for new or changed providers, whose keys start afresh anyway.
   */
  refresh?(names: string[]): void
  /** Re-reads the sealing key on `owner` (the watch's own connection). */
  keys?(owner: pg.ClientBase): Promise<void>
  onError?(err: unknown): void
}

export interface DatabaseWatch {
  /** The providers as last loaded. */
  current(): StoredProvider[]
  /** Reloads now (e.g. on SIGHUP), coalesced with any reload already asked for. */
  reload(): Promise<void>
  /** Reloads run so far (one per coalesced burst). */
  readonly reloads: number
  close(): Promise<void>
}

export interface WatchOptions {
  /** Poll interval, ms. Default 30000. */
  pollMs?: number
  /** First and longest wait before reconnecting a dropped connection, ms. Defaults 500 and 30000. */
  retryMs?: number
  maxRetryMs?: number
}

export async function watchDatabase(ownerUrl: string, handlers: WatchHandlers, options: WatchOptions = {}): Promise<DatabaseWatch> {
  let closed = false
  let conn: pg.Client | undefined
  let providers: StoredProvider[] = []
  let fingerprint = ''
  // Per provider: its config as JSON and its row's updated_at, to see which were only touched.
  let seen = new Map<string, { json: string; version: string | undefined }>()
  let retryMs = options.retryMs ?? 500
  const onError = handlers.onError ?? (() => {})

  const connect = async (): Promise<pg.Client> => {
    const c = await connectOwner(ownerUrl)
    c.on('notification', () => void reload.trigger().catch(onError))
    c.on('error', () => dropped(c))
    c.on('end', () => dropped(c))
    await c.query(`listen ${PROVIDERS_CHANNEL}; listen ${KEYS_CHANNEL}`)
    return c
  }

  const dropped = (c: pg.Client): void => {
    if (conn !== c) return
    conn = undefined
    if (closed) return
    const wait = retryMs
    retryMs = Math.min(retryMs * 2, options.maxRetryMs ?? 30_000)
    setTimeout(() => void reload.trigger().catch(onError), wait).unref()
  }

  // Everything runs on the one connection; a reload with no connection first makes one (and the reload then
  // also covers whatever changed while it was away).
  const reload = coalesce(async () => {
    if (closed) return
    if (!conn) {
      try {
        conn = await connect()
      } catch (err) {
        // Unreachable: try again later, backing off, rather than on every notification or poll tick.
        const wait = retryMs
        retryMs = Math.min(retryMs * 2, options.maxRetryMs ?? 30_000)
        if (!closed) setTimeout(() => void reload.trigger().catch(onError), wait).unref()
        throw err
      }
    }
    const c = conn
    const next = await listProviders(c)
    const versions = await providerVersions(c)
    const fp = JSON.stringify(next)
    providers = next
    if (fp !== fingerprint) {
      fingerprint = fp
      handlers.providers(next)
    }
    const now = new Map(next.map((p) => [p.name, { json: JSON.stringify(p), version: versions.get(p.name) }]))
    const touched = [...now].filter(([name, p]) => {
      const before = seen.get(name)
      return before !== undefined && before.json === p.json && before.version !== p.version
    })
    seen = now
    if (touched.length) handlers.refresh?.(touched.map(([name]) => name))
    await handlers.keys?.(c)
    retryMs = options.retryMs ?? 500
  })

  await reload.trigger()
  const timer = setInterval(() => void reload.trigger().catch(onError), options.pollMs ?? 30_000)
  timer.unref()
  return {
    current: () => providers,
    reload: () => reload.trigger(),
    get reloads() {
      return reload.runs
    },
    async close() {
      closed = true
      clearInterval(timer)
      const c = conn
      conn = undefined
      await c?.end().catch(() => {})
    },
  }
}
