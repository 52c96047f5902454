/**
 * `pg-authorize as`: runs SQL and shows exactly what a gateway request with those claims would see: it
 * logs in as the restricted role itself and installs the claims through the gateway's own sealed
 * mechanism. Needs no gateway and no signing keys. Each script runs in a transaction that is rolled back
 * unless --commit. Its options are in the definition below (and in docs/cli.md).
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { CliIO } from '../command.js'
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl } from '../options.js'
import { defineCommand } from '../define.js'
import { openDatabaseContext } from '../../database/context.js'
import type { Claims } from '../../database/session.js'
import { claimsFromToken, parseClaimsOption } from '../../testing/identity.js'
import { openAsSession, statementsFromLines, type ScriptResult } from '../../testing/run-as.js'
import { alignedTable, cellText } from '../../testing/format.js'

function printScript(io: CliIO, r: ScriptResult, commit: boolean): void {
  for (const s of r.results) {
    if (s.fields.length) {
      io.stdout(alignedTable(s.fields, s.rows.map((row) => s.fields.map((f) => cellText(row[f])))))
      io.stdout(`(${s.rows.length} row${s.rows.length === 1 ? '' : 's'})`)
    } else {
      io.stdout(`${s.command}${s.command === 'INSERT' ? ' 0' : ''}${s.rowCount !== null ? ' ' + s.rowCount : ''}`)
    }
  }
  if (r.error) {
    io.stdout(`ERROR:  ${r.error.sqlstate}: ${r.error.message}`)
    if (r.error.detail) io.stdout(`DETAIL:  ${r.error.detail}`)
    if (r.error.hint) io.stdout(`HINT:  ${r.error.hint}`)
  }
  io.stdout(
    r.ending === 'committed'
      ? '-- committed'
      : r.ending === 'escaped'
        ? '-- warning: the SQL ended the transaction itself (COMMIT/ROLLBACK); what ran after that ran without these claims and was not rolled back by pg-authorize'
        : `-- rolled back${commit ? ' (the statement failed)' : ' (nothing was changed; pass --commit to keep writes)'}`,
  )
}

export const asCommand = defineCommand({
  name: 'as',
  summary: 'run SQL as any claims, exactly as a gateway request would (rolled back by default)',
  usage: '--database-url OWNER_URL (--claims JSON | --token JWT | --anonymous) [-c SQL | -f FILE] [options]',
  description: `Runs SQL as a restricted role with the given claims, exactly as a gateway request would: logged in as
the role itself, the claims sealed and installed by the gateway's own mechanism, RLS applied.
Without -c or -f, reads statements from stdin, one per line ending in ';' (each in its own transaction).`,
  options: {
    ...DATABASE_OPTIONS,
    'database-url': {
      ...DATABASE_OPTIONS['database-url'],
      help: `${DATABASE_OPTIONS['database-url'].help};\nused only to read the role's credentials, the sealing key and the providers;\nyour SQL never runs on it`,
    },
    claims: { type: 'string', value: 'JSON', help: `the claims, e.g. '{"sub":"u1","tenant_id":"t1"}'; null for no identity` },
    token: { type: 'string', value: 'JWT', help: "a real token: verified against the database's providers, then its claims are used" },
    anonymous: { type: 'boolean', help: 'the anonymous role with no identity (a request without a token)' },
    role: { type: 'string', value: 'NAME', help: 'the restricted role to log in as (default authenticated)' },
    command: { type: 'string', short: 'c', value: 'SQL', help: 'the SQL to run (several statements run in one transaction)' },
    file: { type: 'string', short: 'f', value: 'FILE', help: 'read the SQL from a file' },
    commit: { type: 'boolean', help: 'commit instead of rolling back (writes are kept)' },
    json: { type: 'boolean', help: 'print results as JSON' },
  },
  async run({ values }, io) {
    const given = [values.claims !== undefined, values.token !== undefined, values.anonymous === true].filter(Boolean).length
    if (given !== 1) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'give exactly one of --claims JSON, --token JWT or --anonymous')
    }
    if (values.command !== undefined && values.file !== undefined) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'give -c or -f, not both')
    }
    const url = databaseUrl(values, io)
    const role = values.role ?? (values.anonymous ? 'anonymous' : 'authenticated')
    let claims: Claims | null = null
    if (values.claims !== undefined) claims = parseClaimsOption(values.claims)
    else if (values.token !== undefined) claims = await claimsFromToken(url, values.token, role)

    let script: string | undefined = values.command
    if (values.file !== undefined) script = await readFile(path.resolve(io.cwd, values.file), 'utf8')

    const ctx = await openDatabaseContext(url)
    const session = await openAsSession(url, { role, claims, commit: values.commit ?? false, rawText: !values.json }, ctx)
    const commit = values.commit ?? false
    let failed = false
    const all: ScriptResult[] = []
    const handle = (sql: string, r: ScriptResult) => {
      failed ||= r.error !== undefined
      if (values.json) all.push({ sql, ...r } as ScriptResult)
      else printScript(io, r, commit)
    }
    try {
      if (!values.json) {
        io.stdout(`-- as role ${role}, ${claims === null ? 'no identity' : `claims ${JSON.stringify(claims)}`}`)
      }
      if (script !== undefined) {
        handle(script, await session.run(script))
      } else {
        const tty = process.stdin.isTTY === true
        const rl = createInterface({ input: process.stdin, terminal: tty, ...(tty ? { output: process.stdout } : {}) })
        if (tty) rl.setPrompt(`${role}=> `), rl.prompt()
        const pending: string[] = []
        for await (const line of rl) {
          pending.push(line)
          if (!line.trimEnd().endsWith(';')) continue
          for (const sql of statementsFromLines(pending.splice(0))) handle(sql, await session.run(sql))
          if (tty) rl.prompt()
        }
        for (const sql of statementsFromLines(pending)) handle(sql, await session.run(sql))
      }
    } finally {
      await session.close()
    }
    if (values.json) io.stdout(JSON.stringify(all, null, 2))
    return failed ? 1 : 0
  },
})
