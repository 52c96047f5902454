/**
 * One definition per command. From it come the command's parsing, its `--help` text and its section
 * of docs/cli.md, so the three cannot disagree. Adding an option is adding one line to `options`.
 *
 * Why a small typed layer over `node:util` `parseArgs` and not a CLI library: the CLI has no runtime
 * dependency today and needs none (STYLE §7). commander's current major needs Node >= 22.12, citty is
 * still 0.x, and with cac (Node >= 20.19) we would still have to write what this file does: our
 * `error [CODE]` messages and exit statuses, negative numbers as values (`--pool-size -3`), `--no-x` for
 * every boolean setting, flags generated from the settings table, `help <command> <sub>` answered by the
 * dispatcher, and a Markdown reference. What a library would add on top is its help layout, which would
 * then differ from the reference it cannot generate. `parseArgs` is stable in every Node we support.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { PgAuthorizeError } from '../errors.js'
import type { CliIO, Command, ParserOptions } from './command.js'

/** One option: how it parses and how `--help` shows it. */
export interface OptionSpec {
  type: 'string' | 'boolean'
  /** One letter: `-c` for `--command`. */
  short?: string
  /** May be given more than once; the value is an array. */
  multiple?: boolean
  /** Also accepts `--no-<name>` (its value is then under `no-<name>`); help shows `--[no-]<name>`. */
  negatable?: boolean
  /** The value's placeholder in help: `--dir DIR`. */
  value?: string
  /** What it does, with its default; a `\n` starts a continuation line. */
  help: string
}

export type Options = Readonly<Record<string, OptionSpec>>

type ValueOf<O extends OptionSpec> = O extends { type: 'boolean' }
  ? O extends { multiple: true } ? boolean[] : boolean
  : O extends { multiple: true } ? string[] : string

/** The parsed values of `O`, typed by each option's `type` and `multiple`. */
export type Values<O extends Options> = { -readonly [K in keyof O]?: ValueOf<O[K]> } & {
  -readonly [K in keyof O as O[K] extends { negatable: true } ? `no-${K & string}` : never]?: boolean
}

export interface CommandSpec<O extends Options> {
  /** The words after `pg-authorize`: `serve`, `keys generate`. */
  name: string
  /** One line, for the command listing. */
  summary: string
  /** What follows the name in the usage line(s); default `[options]`. */
  usage?: string | readonly string[]
  /** Paragraphs between the usage and the options. */
  description?: string
  options: O
  /** Words that are not options (`TOKEN`, `NAME`), for the usage; without it a stray word is refused. */
  positionals?: string
  /** Text after the options. */
  notes?: string
  /** Runs with the parsed words; resolves to the exit status (default 0). */
  run(args: { values: Values<O>; positionals: string[] }, io: CliIO): Promise<number | void>
}

export interface GroupSpec {
  name: string
  summary: string
  description?: string
  /** Each defined with {@link defineCommand}, named `<group> <sub>`; listed in this order. */
  subcommands: readonly Command[]
  notes?: string
}

/** The `parseArgs` options for a definition's options: exactly what its parser accepts. */
function parserOptions(options: Options): ParserOptions {
  const out: Record<string, ParserOptions[string]> = {}
  for (const [name, o] of Object.entries(options)) {
    out[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }
    if (o.negatable) out[`no-${name}`] = { type: 'boolean' }
  }
  return out
}

/** parseArgs with strict checking and its errors mapped to ERR_INVALID_ARGUMENT. */
export function parseWords(argv: readonly string[], options: ParserOptions): { values: Record<string, unknown>; positionals: string[] } {
  // parseArgs calls `--pool-size -3` ambiguous (the value looks like an option); a negative number is
  // a value, so it is passed as `--pool-size=-3` and the flag's own check says what is wrong with it.
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const next = argv[i + 1]
    if (a.startsWith('--') && options[a.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${a}=${next}`)
      i++
    } else {
      args.push(a)
    }
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', (err as Error).message)
  }
}

const WIDTH = 22
const LINE = 104

/** Breaks `text` into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  return [...lines, line]
}

/** The options block: `  --dir DIR     key directory (default ./keys)`, long labels on a line of their own. */
function optionLines(options: Options): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const long = o.negatable ? `--[no-]${name}` : `--${name}`
    return { label: `${o.short ? `-${o.short}, ` : ''}${long}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`, help: o.help }
  })
  const width = Math.min(WIDTH, Math.max(...rows.map((r) => r.label.length)))
  const pad = ' '.repeat(2 + width + 2)
  const lines = (help: string) => help.split('\n').flatMap((l) => wrap(l, LINE - pad.length))
  return rows.flatMap(({ label, help }) => {
    const [first, ...more] = lines(help)
    const head = label.length <= width ? [`  ${label.padEnd(width)}  ${first}`] : [`  ${label}`, pad + first]
    return [...head, ...more.map((line) => pad + line)]
  })
}

function usageLines(paths: readonly string[]): string {
  return paths.length === 1 ? `Usage: ${paths[0]}` : ['Usage:', ...paths.map((p) => `  ${p}`)].join('\n')
}

function synopses(spec: CommandSpec<Options>): string[] {
  const usage = spec.usage === undefined ? [`[options]${spec.positionals ? ` ${spec.positionals}` : ''}`] : [spec.usage].flat()
  return usage.map((u) => `pg-authorize ${spec.name} ${u}`.trimEnd())
}

/** A command (or a group's subcommand) from its one definition. */
export function defineCommand<const O extends Options>(spec: CommandSpec<O>): Command {
  const options = parserOptions(spec.options)
  const usage = synopses(spec as CommandSpec<Options>)
  const help = [
    usageLines(usage),
    ...(spec.description ? ['', spec.description] : []),
    ...(Object.keys(spec.options).length ? ['', 'Options:', ...optionLines(spec.options)] : []),
    ...(spec.notes ? ['', spec.notes] : []),
  ].join('\n')
  return {
    name: spec.name,
    summary: spec.summary,
    usage,
    help,
    options,
    async run(argv, io) {
      const { values, positionals } = parseWords(argv, options)
      if (!spec.positionals && positionals.length) {
        throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unexpected argument '${positionals[0]!.slice(0, 40)}'`)
      }
      return spec.run({ values: values as Values<O>, positionals }, io)
    },
  }
}

/** A command whose first word picks a subcommand (`keys generate`); it takes no options of its own. */
export function defineGroup(spec: GroupSpec): Command {
  const stray = spec.subcommands.find((c) => !c.name.startsWith(`${spec.name} `))
  if (stray) throw new Error(`subcommand '${stray.name}' of '${spec.name}' must be named '${spec.name} <word>'`)
  const words = spec.subcommands.map((c) => c.name.slice(spec.name.length + 1))
  const width = Math.max(...words.map((w) => w.length))
  const usage = spec.subcommands.flatMap((c) => c.usage)
  const help = [
    usageLines(usage),
    ...(spec.description ? ['', spec.description] : []),
    '',
    'Commands:',
    ...spec.subcommands.map((c, i) => `  ${words[i]!.padEnd(width)}  ${c.summary}`),
    ...(spec.notes ? ['', spec.notes] : []),
    '',
    `Run 'pg-authorize ${spec.name} <command> --help' for its options.`,
  ].join('\n')
  const list = words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`
  return {
    name: spec.name,
    summary: spec.summary,
    usage,
    help,
    options: {},
    subcommands: spec.subcommands,
    async run(argv, io) {
      const [sub, ...rest] = argv
      // Without a subcommand: the help, as a usage error (status 2); `keys help`: the help, status 0.
      if (sub === undefined || sub === 'help') {
        io.stdout(help)
        return sub === undefined ? 2 : 0
      }
      const command = spec.subcommands[words.indexOf(sub)]
      if (!command) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unknown ${spec.name} command '${sub}'`, { hint: `use ${list}` })
      return command.run(rest, io)
    },
  }
}
