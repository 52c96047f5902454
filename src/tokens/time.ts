/**
 * Parsing durations (`90`, `30s`, `15m`, `1h`, `7d`, `2w`) and points in time (a duration from now,
 * epoch seconds, or an ISO 8601 date). Hand-written because jose parses durations only internally
 * and throws a generic TypeError; we need ERR_INVALID_DURATION with a message that says what is allowed.
 *
 * @module
 */
import { PgAuthorizeError } from '../errors.js'

const UNIT_SECONDS: Record<string, number> = {
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
}

const DURATION = /^(\d+)\s*([a-z]*)$/i

/** A duration in whole seconds (> 0). A bare number is seconds. */
export function parseDuration(value: string | number, what = 'duration'): number {
  let seconds: number | undefined
  if (typeof value === 'number') {
    seconds = Number.isInteger(value) ? value : undefined
  } else {
    const m = DURATION.exec(value.trim())
    const unit = m?.[2]?.toLowerCase() ?? ''
    if (m && (unit === '' || UNIT_SECONDS[unit] !== undefined)) seconds = Number(m[1]) * (unit ? UNIT_SECONDS[unit]! : 1)
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new PgAuthorizeError('ERR_INVALID_DURATION', `invalid ${what} '${String(value)}'`, {
      hint: 'use a positive whole number of seconds or a number with a unit: 30s, 15m, 1h, 7d, 2w',
    })
  }
  return seconds
}

/**
 * A point in time as epoch seconds: a duration from `nowSeconds` (`5m`), epoch seconds (`1735689600`),
 * or an ISO 8601 date (`2025-01-01T00:00:00Z`).
 */
export function parseTime(value: string | number | Date, nowSeconds: number, what = 'time'): number {
  if (value instanceof Date) {
    if (!Number.isNaN(value.getTime())) return Math.floor(value.getTime() / 1000)
  } else if (typeof value === 'number' || /^\d+$/.test(value.trim())) {
    const n = Number(value)
    if (Number.isSafeInteger(n) && n >= 0) return n
  } else if (/^\d+\s*[a-z]+$/i.test(value.trim())) {
    return nowSeconds + parseDuration(value, what)
  } else {
    const ms = Date.parse(value)
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000)
  }
  throw new PgAuthorizeError('ERR_INVALID_DURATION', `invalid ${what} '${String(value)}'`, {
    hint: 'use a duration from now (5m), epoch seconds, or an ISO 8601 date',
  })
}
