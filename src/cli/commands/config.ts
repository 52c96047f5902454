/**
 * `pg-authorize config print | reference`: the effective configuration, each value with where it came
 * from, secrets masked; or the reference table of every setting.
 *
 * @module
 */
import { CONFIG_OPTION, settingOptions } from '../options.js'
import { defineCommand, defineGroup } from '../define.js'
import { flagValues, loadConfig, maskedConfig, referenceTable } from '../../config/load.js'

const print = defineCommand({
  name: 'config print',
  summary: "print serve's effective configuration, each value with its source, secrets masked",
  usage: '[--config FILE] [--json] [any serve flag]',
  description: `The effective configuration of serve, each value with where it came from (flag, env, file, default),
secrets masked. Takes every flag serve takes, so you can check a command line before running it.`,
  options: { ...settingOptions(), config: CONFIG_OPTION, json: { type: 'boolean', help: 'print JSON: the file, the values and their sources' } },
  async run({ values }, io) {
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
})

const reference = defineCommand({
  name: 'config reference',
  summary: 'every setting with its flag, environment variable, file key, default and meaning (Markdown)',
  usage: '',
  options: {},
  async run(_args, io) {
    io.stdout(referenceTable())
    return 0
  },
})

export const configCommand = defineGroup({
  name: 'config',
  summary: 'print the effective gateway configuration (secrets masked), or the reference of every setting',
  subcommands: [print, reference],
})
