/**
 * pg-authorize lint --database-url OWNER_URL [--json]
 *
 * Reports RLS and grant mistakes, each with its fix; exits 1 when any finding is an error (for CI).
 */
import type { Command } from '../command.js'
import { DATABASE_OPTIONS, databaseUrl, parse } from '../options.js'
import { formatLint, lintPolicies } from '../../testing/lint.js'

const HELP = `Usage: pg-authorize lint [--database-url OWNER_URL] [--config FILE] [--json]

Checks the tables, policies, sequences and functions the restricted roles can reach, and prints each
finding with its fix. Exits with status 1 when there is an error (warnings alone exit 0).

Rules: rls-disabled (error), rls-no-policy (warning), auth-call-per-row (warning), permissive-true (error),
uid-not-uuid (warning), sequence-grant (error), security-definer (error via PUBLIC, else warning).
See docs/testing-policies.md.

The owner URL comes from --database-url, else $PG_AUTHORIZE_DATABASE_URL or $DATABASE_URL, else
databaseUrl in the configuration file (--config FILE, default ./pg-authorize.config.json).`

export const lintCommand: Command = {
  name: 'lint',
  summary: 'check RLS policies and grants for mistakes, each with its fix (non-zero exit on errors)',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {
      ...DATABASE_OPTIONS,
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    })
    if (values.help) {
      io.stdout(HELP)
      return 0
    }
    const report = await lintPolicies(databaseUrl(values, io))
    io.stdout(values.json ? JSON.stringify(report, null, 2) : formatLint(report))
    return report.errors > 0 ? 1 : 0
  },
}
