/** Metrics, structured logs and the audit trail of the gateway. */
export * from './metrics.js'
export * from './logger.js'
export * from './audit.js'
