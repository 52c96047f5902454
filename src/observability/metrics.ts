/**
 * Prometheus metrics of the gateway, on a registry of its own (prom-client, the library Prometheus users
 * already run). Fed by the gateway's events; pool and session gauges are read at scrape time.
 *
 * Labels never carry a token, a subject or anything a client chose freely: transport, outcome, error
 * code, provider name, database and role names (the last two are set up by the operator).
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type Transport = 'http' | 'tcp' | 'tls' | 'websocket'

/** Where the gauges read their values at scrape time. */
export interface MetricsSources {
  pools?: () => Array<{ database: string; role: string; total: number; idle: number; waiting: number; leased: number }>
  wireSessions?: () => number
  /** Seconds since each provider's JWKS was last fetched successfully. */
  jwksAges?: () => Array<{ database: string; provider: string; ageSeconds: number }>
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests = new Counter({
    name: 'pg_authorize_requests_total',
    help: 'Requests (HTTP) and session starts (wire), by transport and outcome.',
    labelNames: ['transport', 'outcome'] as const,
    registers: [this.registry],
  })
  readonly verificationFailures = new Counter({
    name: 'pg_authorize_verification_failures_total',
    help: 'JWT verification failures by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })
  readonly jwksFetches = new Counter({
    name: 'pg_authorize_jwks_fetches_total',
    help: 'JWKS fetches by provider, reason and result.',
    labelNames: ['provider', 'reason', 'result'] as const,
    registers: [this.registry],
  })
  readonly tokenCache = new Counter({
    name: 'pg_authorize_token_cache_total',
    help: 'Verified-token cache lookups by result (hit or miss).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly verifyDuration = new Histogram({
    name: 'pg_authorize_verify_duration_seconds',
    help: 'Time to verify a JWT (including any JWKS fetch).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly poolWait = new Histogram({
    name: 'pg_authorize_pool_wait_seconds',
    help: 'Time a request waited for a pooled connection.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly queryDuration = new Histogram({
    name: 'pg_authorize_query_duration_seconds',
    help: 'Time from a leased connection to the last result, per HTTP request.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly requestDuration = new Histogram({
    name: 'pg_authorize_request_duration_seconds',
    help: 'Whole HTTP request time, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly wireSessionsTotal = new Counter({
    name: 'pg_authorize_wire_sessions_total',
    help: 'Wire sessions ended, by transport and reason.',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  })

  readonly limitRefusals = new Counter({
    name: 'pg_authorize_limit_refusals_total',
    help: 'Requests and logins refused by a fair-share or session limit, by transport and reason (queue-full, share-timeout: an identity past its share of an HTTP pool; wire-identity, wire-total, startup-address: wire session limits).',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  })
  readonly queueWaits = new Histogram({
    name: 'pg_authorize_pool_queue_wait_seconds',
    help: 'Time an HTTP request that could not get a connection at once waited for one, by reason (share: its identity was at its share; pool: the pool was full).',
    labelNames: ['reason'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly timeouts = new Counter({
    name: 'pg_authorize_timeouts_total',
    help: 'Timeouts by transport and reason (pool_wait: no connection within the pool timeout; statement_timeout: 57014; idle_in_transaction_timeout: 25P03).',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  })

  readonly roleRepairs = new Counter({
    name: 'pg_authorize_role_repairs_total',
    help: 'Repairs of a restricted role a client had altered (ALTER ROLE CURRENT_USER PASSWORD/SET), by reason.',
    labelNames: ['database', 'role', 'reason'] as const,
    registers: [this.registry],
  })

  constructor(sources: MetricsSources = {}) {
    const { pools, wireSessions, jwksAges } = sources
    new Gauge({
      name: 'pg_authorize_pool_connections',
      help: 'Pooled connections by database, role and state (idle, leased), and requests waiting.',
      labelNames: ['database', 'role', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const p of pools?.() ?? []) {
          this.set({ database: p.database, role: p.role, state: 'idle' }, p.idle)
          this.set({ database: p.database, role: p.role, state: 'leased' }, p.leased)
          this.set({ database: p.database, role: p.role, state: 'waiting' }, p.waiting)
        }
      },
    })
    new Gauge({
      name: 'pg_authorize_wire_sessions',
      help: 'Open wire-protocol sessions (TCP, TLS and WebSocket).',
      registers: [this.registry],
      collect() {
        this.set(wireSessions?.() ?? 0)
      },
    })
    new Gauge({
      name: 'pg_authorize_jwks_age_seconds',
      help: 'Seconds since each provider\'s JWKS was last fetched successfully.',
      labelNames: ['database', 'provider'] as const,
      // With several workers (serve --workers) each fetches on its own: report the stalest, not a sum.
      aggregator: 'max',
      registers: [this.registry],
      collect() {
        this.reset()
        for (const a of jwksAges?.() ?? []) this.set({ database: a.database, provider: a.provider }, a.ageSeconds)
      },
    })
    collectDefaultMetrics({ register: this.registry, prefix: 'pg_authorize_process_' })
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
