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

export const configCommand: Command = {
  name: 'config',
  summary: 'print the effective gateway configuration (secrets masked), or the reference of every setting',
  async run(argv, io) {
    const [sub, ...rest] = argv
    if (sub === 'reference') {
      io.stdout(referenceTable())
      return 0
    }
    if (sub !== 'print') {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'usage: pg-authorize config print [--config FILE] [--json] [serve flags] | config reference')
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
