/**
 * `pg-authorize lint`: reports RLS and grant mistakes, each with its fix; exits 1 when a finding reaches
 * --fail-on (for CI).
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl } from '../options.js'
import { defineCommand } from '../define.js'
import { LINT_RULES, formatLint, lintFails, lintPolicies, type FailOn } from '../../testing/lint.js'
import { toSarif } from '../../testing/lint-sarif.js'

export const lintCommand = defineCommand({
  name: 'lint',
  summary: 'check RLS policies and grants for mistakes, each with its fix (non-zero exit on errors)',
  usage: '[--database-url OWNER_URL] [--config FILE] [--format text|json|sarif] [--fail-on warn|error]',
  description: `Checks the tables, views, policies, sequences, indexes and functions the restricted roles can reach, and
prints each finding with its fix. Exits with status 1 when there is an error (with --fail-on warn: an
error or a warning); info findings never fail it.`,
  options: {
    ...DATABASE_OPTIONS,
    format: { type: 'string', value: 'F', help: 'text (default), json or sarif (SARIF 2.1.0, for code-scanning UIs)' },
    json: { type: 'boolean', help: 'the same as --format json' },
    'fail-on': { type: 'string', value: 'L', help: 'error (default) or warn' },
    'sample-claims': {
      type: 'string',
      value: 'FILE',
      help: 'JSON: the claims of a sample token (an object), or several (an array);\npolicies reading a claim none of them carries are reported (unknown_claim)',
    },
  },
  notes: `Suppress a finding where the choice is made: COMMENT ON POLICY|TABLE|VIEW|FUNCTION ... IS
'pg-authorize:ignore RULE <why>'. Rules: ${LINT_RULES.join(', ')}.
See docs/testing-policies.md.`,
  async run({ values }, io) {
    const format = values.format ?? (values.json ? 'json' : 'text')
    if (!['text', 'json', 'sarif'].includes(format)) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--format must be text, json or sarif')
    const failOn = (values['fail-on'] ?? 'error') as FailOn
    if (failOn !== 'error' && failOn !== 'warn') throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--fail-on must be warn or error')
    const sampleClaims = values['sample-claims'] === undefined ? undefined : await readSampleClaims(path.resolve(io.cwd, values['sample-claims']))
    const report = await lintPolicies(databaseUrl(values, io), sampleClaims ? { sampleClaims } : {})
    if (format === 'json') io.stdout(JSON.stringify(report, null, 2))
    else if (format === 'sarif') {
      const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string }
      io.stdout(JSON.stringify(toSarif(report, { version }), null, 2))
    } else io.stdout(formatLint(report))
    return lintFails(report, failOn) ? 1 : 0
  },
})

async function readSampleClaims(file: string): Promise<Record<string, unknown>[]> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `cannot read --sample-claims ${path.basename(file)} as JSON`, { cause: err })
  }
  const sets = Array.isArray(json) ? json : [json]
  if (!sets.length || !sets.every((s) => typeof s === 'object' && s !== null && !Array.isArray(s))) {
    throw new PgAuthorizeError('ERR_INVALID_CLAIMS', '--sample-claims must hold a claims object or an array of them')
  }
  return sets as Record<string, unknown>[]
}
