/**
 * pg-authorize config print [--config FILE] [--json] [any serve flag]
 * pg-authorize config reference
 *
 * Shows the effective configuration, each value with where it came from, secrets masked; or the
 * reference table of every setting.
 */
import type { Command } from '../command.js'
import { PgAuthorizeError } from '../../errors.js'
import { parse } from '../options.js'
import { flagValues, loadConfig, maskedConfig, referenceTable, settingFlags } from '../../config/load.js'

const HELP = `Usage:
  pg-authorize config print [--config FILE] [--json] [any serve flag]
  pg-authorize config reference

print: the effective configuration of serve, each value with where it came from (flag, env, file,
  default), secrets masked. Takes every flag serve takes, so you can check a command line before running it.
reference: every setting with its flag, environment variable, file key, default and meaning (Markdown).`

export const configCommand: Command = {
  name: 'config',
  summary: 'print the effective gateway configuration (secrets masked), or the reference of every setting',
  help: HELP,
  subcommands: ['print', 'reference'],
  async run(argv, io) {
    const [sub, ...rest] = argv
    if (sub === 'reference') {
      io.stdout(referenceTable())
      return 0
    }
    if (sub !== 'print') {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', sub === undefined ? 'config needs print or reference' : `unknown config command '${sub}'`, { hint: 'pg-authorize config --help' })
    }
    const { values } = parse(rest, { ...settingFlags(), config: { type: 'string' }, json: { type: 'boolean' } })
    const loaded = loadConfig({
      flags: flagValues(values),
      env: io.env,
      cwd: io.cwd,
      ...(typeof values.config === 'string' ? { configFile: values.config } : {}),
    })
    const masked = maskedConfig(loaded.config)
    if (values.json) {
      io.stdout(JSON.stringify({ file: loaded.file ?? null, config: masked, sources: loaded.sources }, null, 2))
      return 0
    }
    io.stdout(`configuration file: ${loaded.file ?? '(none)'}`)
    const width = Math.max(...Object.keys(masked).map((k) => k.length))
    for (const [key, value] of Object.entries(masked)) {
      io.stdout(`  ${key.padEnd(width)}  ${JSON.stringify(value)}  (${loaded.sources[key as keyof typeof loaded.sources]})`)
    }
    return 0
  },
}
