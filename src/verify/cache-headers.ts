/**
 * How long a fetched JWKS or discovery document stays fresh, by the rules of HTTP caching (RFC 9111
 * 4.2.1) as they apply to a private cache: `Cache-Control: no-store` or `no-cache` → 0; `max-age=N` → N
 * seconds minus `Age`; else `Expires` minus `Date` (the response's own clock, so a skewed local clock
 * does not matter; without `Date`, minus now); an invalid `Expires` ("0", "-1") → 0. `s-maxage` is for
 * shared caches and ignored. The caller bounds the result (a provider sending `no-cache` must not make
 * every token a fetch, one sending a year must not pin keys for a year).
 *
 * @module
 */

/** Freshness in ms, or `undefined` when the headers say nothing (the caller's default applies). */
export function freshnessMs(headers: Headers, nowMs: number): number | undefined {
  const cc = headers.get('cache-control')
  if (cc) {
    const directives = cc.toLowerCase().split(',').map((d) => d.trim())
    if (directives.some((d) => d === 'no-store' || d === 'no-cache' || d.startsWith('no-cache='))) return 0
    const maxAge = directives.find((d) => d.startsWith('max-age='))
    if (maxAge) {
      const n = Number(maxAge.slice('max-age='.length).replace(/^"|"$/g, ''))
      if (!Number.isInteger(n) || n < 0) return 0
      const age = Number(headers.get('age') ?? 0)
      return Math.max(0, n - (Number.isFinite(age) && age > 0 ? age : 0)) * 1000
    }
  }
  const expires = headers.get('expires')
  if (expires !== null) {
    const at = Date.parse(expires)
    if (Number.isNaN(at)) return 0
    const date = Date.parse(headers.get('date') ?? '')
    return Math.max(0, at - (Number.isNaN(date) ? nowMs : date))
  }
  return undefined
}

/** `ms` within `[min, max]`, or `fallback` when the headers gave nothing. */
export function boundFreshness(ms: number | undefined, fallback: number, min: number, max: number): number {
  return ms === undefined ? fallback : Math.min(max, Math.max(min, ms))
}
