/**
 * Structured JSON logs (pino: fast, and what log pipelines already parse), with levels and request ids.
 *
 * Nothing that could carry a credential is ever passed to the logger: call sites log codes, names and
 * timings. As a second line of defence, the usual credential fields are redacted wherever they appear.
 *
 * @module
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level?: string
  /** Where lines go. Default: standard output. */
  destination?: DestinationStream
}

const REDACT = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization',
  'envelope', '*.envelope', 'secret', '*.secret', 'key', '*.key', 'databaseUrl', '*.databaseUrl', 'params', '*.params',
]

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'pg-authorize' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  )
}

/** A logger that drops everything (library use without logging). */
export const silentLogger: Logger = pino({ level: 'silent' })
