/**
 * A lint report as SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), for code-scanning
 * UIs and CI annotations. Database objects have no file, so each result names its object as a logical
 * location; the fix travels in the message and in `properties.fix`. Suppressed findings are kept as
 * results with an `inSource` suppression (the comment), as SARIF expects.
 *
 * @see https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
 * @module
 */
import { LINT_RULES, RULES, type Finding, type LintReport, type Severity } from './lint.js'

const level: Record<Severity, 'error' | 'warning' | 'note'> = { error: 'error', warning: 'warning', info: 'note' }

export interface SarifOptions {
  /** The tool version reported in `tool.driver.version`. */
  version?: string
}

/** The SARIF log (a plain JSON value) of a report. */
export function toSarif(report: LintReport, options: SarifOptions = {}): Record<string, unknown> {
  const index = new Map(LINT_RULES.map((r, i) => [r, i]))
  const result = (f: Finding, justification?: string) => ({
    ruleId: f.rule,
    ruleIndex: index.get(f.rule),
    level: level[f.severity],
    message: { text: `${f.message}. Fix: ${f.fix}` },
    locations: [{ logicalLocations: [{ fullyQualifiedName: f.object, kind: f.object.endsWith(')') ? 'function' : 'object' }] }],
    // Stable across runs, so a code-scanning UI tracks one finding over time.
    partialFingerprints: { 'pgAuthorizeObject/v1': `${f.rule}:${f.object}` },
    properties: { object: f.object, ...(f.table ? { table: f.table } : {}), fix: f.fix, category: f.category },
    ...(justification === undefined ? {} : { suppressions: [{ kind: 'inSource', justification }] }),
  })
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'pg-authorize lint',
          ...(options.version ? { version: options.version } : {}),
          rules: LINT_RULES.map((r) => ({
            id: r,
            name: r,
            shortDescription: { text: RULES[r].summary },
            help: { text: `${RULES[r].summary} See docs/testing-policies.md, rule ${r}, for the exact semantics and the fix.` },
            defaultConfiguration: { level: level[RULES[r].severity] },
            properties: { tags: [RULES[r].category] },
          })),
        },
      },
      results: [...report.findings.map((f) => result(f)), ...report.suppressed.map((f) => result(f, f.justification))],
    }],
  }
}
