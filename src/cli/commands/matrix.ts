/**
 * `pg-authorize matrix`: for each table with RLS and each named claim set in a file, which of SELECT,
 * INSERT, UPDATE and DELETE are allowed and on how many rows. Writes are probed in a rolled-back
 * transaction: nothing changes.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl, int } from '../options.js'
import { defineCommand } from '../define.js'
import { formatMatrix, parseClaimSets, policyMatrix, type MatrixFormat } from '../../testing/matrix.js'

export const matrixCommand = defineCommand({
  name: 'matrix',
  summary: 'show which operations the RLS policies allow each named claim set, table by table',
  usage: '--database-url OWNER_URL --claims FILE [--format table|json|markdown]',
  description: `For each table with RLS enabled and each named claim set, shows which of SELECT, INSERT, UPDATE and
DELETE the policies allow and on how many rows. Every probe runs as the restricted role with the claims
installed as the gateway installs them, in a transaction that is rolled back: nothing changes.

FILE is JSON: { "alice": { "sub": "...", "tenant_id": "..." }, "nobody": null,
                "guest": { "role": "anonymous", "claims": { ... } } }
(null: a request without a token, the anonymous role with no identity)

Cells: yes (N) / no (0): rows visible (SELECT), touched (UPDATE: set c = c; DELETE);
       INSERT yes (k/n): k of n sampled rows, copied, pass the INSERT policies' WITH CHECK;
       no grant: the role lacks the table privilege; error CODE: the probe failed.`,
  options: {
    ...DATABASE_OPTIONS,
    claims: { type: 'string', value: 'FILE', help: 'the named claim sets' },
    role: { type: 'string', value: 'NAME', help: 'role of claim sets that do not name one (default authenticated)' },
    format: { type: 'string', value: 'F', help: 'table (default), json or markdown' },
    sample: { type: 'string', value: 'N', help: 'rows per table copied for the INSERT probe (default 50)' },
  },
  async run({ values }, io) {
    if (!values.claims) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--claims FILE is required')
    const format = (values.format ?? 'table') as MatrixFormat
    if (!['table', 'json', 'markdown'].includes(format)) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--format must be table, json or markdown')
    }
    const url = databaseUrl(values, io)
    let text: string
    try {
      text = await readFile(path.resolve(io.cwd, values.claims), 'utf8')
    } catch (err) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `cannot read the claims file ${values.claims}`, { cause: err })
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new PgAuthorizeError('ERR_INVALID_CLAIMS', `the claims file ${values.claims} is not valid JSON`)
    }
    const identities = parseClaimSets(json, values.role ?? 'authenticated')
    const m = await policyMatrix(url, identities, { sampleRows: int(values.sample, '--sample', 50, 0, 10_000) })
    io.stdout(formatMatrix(m, format))
    if (format === 'table') io.stdout('(probed in a transaction that was rolled back; nothing was changed)')
    return 0
  },
})
