/**
 * `serve --workers N`: the gateway on every core, with `node:cluster`.
 *
 * The primary runs no gateway. It forks N workers, each a full gateway (its own verifier, token cache,
 * pools and LISTEN connection, so providers, key rotations and NOTIFY reach each one through the
 * database, exactly as they reach separate instances), sharing the HTTP, wire and metrics ports through
 * the cluster module (the primary accepts and hands connections out round-robin). The primary:
 *
 * - holds the signals: SIGHUP is forwarded to every worker as a reload; SIGTERM/SIGINT ask every worker to
 *   drain and stop, and the primary exits only once all have exited (0 when all stopped cleanly);
 * - routes wire cancels: a CancelRequest arrives on a fresh TCP connection, which lands on any worker.
 *   Process ids are handed out so that `processId % count` names the worker owning the session; a worker
 *   that does not own one passes it (id and secret, checked only by the owner) to the primary, which
 *   passes it to the owner;
 * - sums `/metrics`: the worker that receives a scrape asks the primary, which collects every worker's
 *   registry with prom-client's `AggregatorRegistry` (counters and histograms summed; gauges summed
 *   except where a metric names another aggregator).
 *
 * Totals stay totals: pool sizes, session limits and the token cache are divided among the workers
 * (`shareOfTotals`), so N workers open no more connections to Postgres than one would.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster'
import os from 'node:os'
import { AggregatorRegistry } from 'prom-client'
import type { GatewayConfig } from '../config/schema.js'
import { PgAuthorizeError } from '../errors.js'
import type { Logger } from '../observability/logger.js'
import type { Gateway } from './gateway.js'

const INDEX_ENV = 'PG_AUTHORIZE_WORKER_INDEX'
const COUNT_ENV = 'PG_AUTHORIZE_WORKER_COUNT'

/** What a worker's gateway needs to act as one of several (see `GatewayOptions.worker`). */
export interface WorkerHooks {
  /** This worker's index, 0 to count - 1. */
  index: number
  count: number
  /** Sends a cancel for a session of another worker to the primary, which routes it to the owner. */
  forwardCancel(processId: number, secret: Buffer): void
  /** The Prometheus text summed over every worker. */
  metricsText(): Promise<string>
}

type ToPrimary =
  | { pga: 'ready'; lines: string[] }
  | { pga: 'cancel'; processId: number; secret: string }
  | { pga: 'metrics'; id: number }
type ToWorker =
  | { pga: 'reload' }
  | { pga: 'stop' }
  | { pga: 'cancel'; processId: number; secret: string }
  | { pga: 'metrics'; id: number; text?: string; error?: string }

/** `--workers`: a count of at least 1, or `auto` (one per core). */
export function resolveWorkers(value: string | number): number {
  if (value === 'auto') return Math.max(1, os.availableParallelism?.() ?? os.cpus().length)
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--workers: expected a number from 1 to 1024 or 'auto', got '${String(value)}'`)
  }
  return n
}

/** This process's slot when it is a worker forked by {@link runPrimary}; undefined otherwise. */
export function workerSlot(): { index: number; count: number } | undefined {
  if (!cluster.isWorker) return undefined
  const index = Number(process.env[INDEX_ENV])
  const count = Number(process.env[COUNT_ENV])
  if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) return undefined
  return { index, count }
}

/**
 * One worker's share of the configured totals: pool sizes, session limits, queues and the token cache
 * divided by `count` (rounded down, at least 1; 0, "no limit", stays 0). With more workers than a total,
 * each keeps 1, so the sum may then exceed it: size `--workers` below `--pool-size`.
 */
export function shareOfTotals(config: GatewayConfig, count: number): GatewayConfig {
  if (count <= 1) return config
  const share = (n: number) => (n === 0 ? 0 : Math.max(1, Math.floor(n / count)))
  return {
    ...config,
    poolSize: share(config.poolSize),
    poolIdentityQueue: share(config.poolIdentityQueue),
    wireMaxSessions: share(config.wireMaxSessions),
    wireMaxSessionsPerIdentity: share(config.wireMaxSessionsPerIdentity),
    wireMaxStartupPerAddress: share(config.wireMaxStartupPerAddress),
    tokenCacheSize: share(config.tokenCacheSize),
  }
}

export interface PrimaryOptions {
  count: number
  logger: Logger
  /** Extra environment for the workers (e.g. a console token generated once, shared by all). */
  env?: Record<string, string>
  /** How long workers get to drain on SIGTERM before they are killed, ms. */
  shutdownTimeoutMs: number
  /** Called once, when every worker listens, with the first worker's description of its listeners. */
  onReady(lines: string[]): void
}

/**
 * Runs the primary: forks the workers, routes cancels and metrics, forwards signals. Resolves the exit
 * status once every worker has exited after SIGTERM/SIGINT, or 1 when a worker failed to start.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { count, logger } = options
  const aggregator = new AggregatorRegistry()
  const workers = new Map<number, Worker>()
  const everReady = new Set<number>()
  let announced = false
  let stopping = false
  let status = 0
  return new Promise((resolve) => {
    const finishIfDone = () => {
      if (stopping && workers.size === 0) {
        process.off('SIGHUP', onHup)
        resolve(status)
      }
    }
    const stop = (signal: string | undefined) => {
      if (stopping) return
      stopping = true
      logger.info({ signal, workers: workers.size }, 'stopping: asking every worker to drain')
      for (const w of workers.values()) send(w, { pga: 'stop' })
      // A worker stuck past its drain deadline is killed, and the exit reports the failure.
      setTimeout(() => {
        for (const w of workers.values()) {
          status = 1
          w.process.kill('SIGKILL')
        }
      }, options.shutdownTimeoutMs + 10_000).unref()
      finishIfDone()
    }
    const onHup = () => {
      logger.info({ workers: workers.size }, 'SIGHUP: reloading every worker')
      for (const w of workers.values()) send(w, { pga: 'reload' })
    }
    process.on('SIGHUP', onHup)
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))

    const fork = (index: number) => {
      const w = cluster.fork({ ...options.env, [INDEX_ENV]: String(index), [COUNT_ENV]: String(count) })
      workers.set(index, w)
      w.on('message', (m: ToPrimary) => {
        if (m?.pga === 'ready') {
          everReady.add(index)
          if (!announced && everReady.size === count) {
            announced = true
            if (!stopping) options.onReady(m.lines)
          }
        } else if (m?.pga === 'cancel') {
          // Only the owner compares the secret; the primary just routes by the id's residue.
          const to = ((m.processId % count) + count) % count
          const owner = workers.get(to)
          logger.debug({ from: index, to }, 'wire cancel routed to the worker that owns the session')
          if (owner) send(owner, { pga: 'cancel', processId: m.processId, secret: m.secret })
        } else if (m?.pga === 'metrics') {
          aggregator.clusterMetrics().then(
            (text) => send(w, { pga: 'metrics', id: m.id, text }),
            (err: Error) => send(w, { pga: 'metrics', id: m.id, error: err.message }),
          )
        }
      })
      w.on('exit', (code, signal) => {
        if (workers.get(index) === w) workers.delete(index)
        if (stopping) {
          if (code !== 0) status = 1
          finishIfDone()
          return
        }
        if (!everReady.has(index)) {
          // A worker that never started (a port in use, a database not set up): the same error would
          // repeat in every one, so stop all of them and report it (the worker printed the reason).
          logger.error({ worker: index, code, signal }, 'a worker failed to start; stopping')
          status = code || 1
          stop(undefined)
          return
        }
        logger.error({ worker: index, code, signal }, 'a worker exited; starting a new one')
        everReady.delete(index)
        setTimeout(() => {
          if (!stopping) fork(index)
        }, 1000).unref()
      })
    }
    for (let i = 0; i < count; i++) fork(i)
  })
}

function send(w: Worker, m: ToWorker): void {
  if (!w.isConnected()) return
  try {
    w.send(m)
  } catch {
    // the worker is going away; its exit is handled
  }
}

function toPrimary(m: ToPrimary): void {
  if (process.connected) process.send?.(m)
}

/** The hooks a worker's gateway is started with. */
export function workerHooks(slot: { index: number; count: number }): WorkerHooks {
  // prom-client answers the primary's collection requests from this process (its listener is installed
  // by the constructor); the registry it reports is set in runWorker once the gateway exists.
  new AggregatorRegistry()
  let nextId = 0
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>()
  process.on('message', (m: ToWorker) => {
    if (m?.pga !== 'metrics') return
    const w = waiting.get(m.id)
    if (!w) return
    waiting.delete(m.id)
    if (m.text !== undefined) w.resolve(m.text)
    else w.reject(new Error(m.error ?? 'metrics collection failed'))
  })
  return {
    ...slot,
    forwardCancel: (processId, secret) => toPrimary({ pga: 'cancel', processId, secret: secret.toString('hex') }),
    metricsText: () =>
      new Promise((resolve, reject) => {
        const id = nextId++
        waiting.set(id, { resolve, reject })
        toPrimary({ pga: 'metrics', id })
        setTimeout(() => {
          if (waiting.delete(id)) reject(new Error('metrics collection timed out'))
        }, 10_000).unref()
      }),
  }
}

/**
 * Runs a started gateway as a worker until the primary asks it to stop (or it gets SIGTERM/SIGINT itself,
 * as the whole process group does on Ctrl-C, or the primary is gone). SIGHUP is the primary's to forward:
 * a worker ignores its own, so a terminal's SIGHUP to the group reloads once, not twice.
 */
export function runWorker(gw: Gateway, lines: string[], reload: () => Promise<void>): Promise<number> {
  AggregatorRegistry.setRegistries([gw.metrics.registry])
  return new Promise((resolve) => {
    let stopping = false
    const stop = () => {
      if (stopping) return
      stopping = true
      gw.close().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    process.on('SIGHUP', () => {})
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    process.once('disconnect', stop)
    process.on('message', (m: ToWorker) => {
      if (m?.pga === 'stop') stop()
      else if (m?.pga === 'reload') void reload().catch(() => {})
      else if (m?.pga === 'cancel') gw.wire.cancel(m.processId, Buffer.from(m.secret, 'hex'))
    })
    toPrimary({ pga: 'ready', lines })
  })
}
