/**
 * Plain-text renderings shared by `as`, `matrix` and `lint`: psql-like aligned tables and Markdown tables.
 *
 * @module
 */

/** Display width of a string (code points; good enough for a terminal table of SQL values). */
const width = (s: string): number => [...s].length

/** psql-style aligned table: header, a rule of dashes, one line per row. */
export function alignedTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))))
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => ' ' + c + ' '.repeat(widths[i]! - width(c)) + ' ').join('|').trimEnd()
  return [line(headers), widths.map((w) => '-'.repeat(w + 2)).join('+'), ...rows.map(line)].join('\n')
}

/** A GitHub-flavoured Markdown table (pipes in cells escaped). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}

/** A cell's text: Postgres' own text form when the value came as text, JSON for anything structured. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value.replace(/\n/g, '\\n')
  if (value instanceof Date) return value.toISOString()
  if (Buffer.isBuffer(value)) return '\\x' + value.toString('hex')
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
