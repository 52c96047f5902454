/**
 * `pg-authorize <command>`: the command-line program over every part.
 *
 * Each command lives in `commands/<name>.ts` and exports a {@link Command} made from one definition
 * (`define.ts`: its parsing, its help and its reference, over `node:util` `parseArgs`; see there why no
 * CLI library). Errors raised on purpose print
 * as `error [CODE]: message` with the exit status of the error table; anything else is a bug and
 * prints a generic message without details that might hold a secret.
 *
 * @module
 */
import { isPgAuthorizeError, isSystemError, systemError } from '../errors.js'
import type { Command, CliIO } from './command.js'
import { commands } from './commands/index.js'

export type { Command, CliIO } from './command.js'

/** The top-level help: every command with its summary. */
export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return [
    'Usage: pg-authorize <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'pg-authorize <command> --help' for a command's options.",
  ].join('\n')
}

/** `--help` or `-h` anywhere before a `--` (after it, words are data, e.g. SQL). */
function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--')
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

/** The help of `command`, or of its subcommand `word` when it has one by that name. */
function helpOf(command: Command, word: string | undefined): string {
  return command.subcommands?.find((s) => s.name === `${command.name} ${word}`)?.help ?? command.help
}

/** Default IO: the real process. */
export function processIO(): CliIO {
  return {
    stdout: (s) => void process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    stderr: (s) => void process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
    env: process.env,
    cwd: process.cwd(),
  }
}

/** Runs one command line; resolves to the exit status. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    io.stdout(usage())
    return name ? 0 : 2
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module')
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }
    io.stdout(pkg.version)
    return 0
  }
  // `help serve`, `help keys generate`: the same as `serve --help`, `keys generate --help`.
  if (name === 'help') {
    const target = commands.find((c) => c.name === rest[0])
    if (!target) {
      io.stderr(`error [ERR_INVALID_ARGUMENT]: unknown command '${rest[0]}'\n\n${usage()}`)
      return 2
    }
    io.stdout(helpOf(target, rest[1]))
    return 0
  }
  const command = commands.find((c) => c.name === name)
  if (command && wantsHelp(rest)) {
    io.stdout(helpOf(command, rest[0]))
    return 0
  }
  if (!command) {
    io.stderr(`error [ERR_INVALID_ARGUMENT]: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  try {
    return (await command.run(rest, io)) ?? 0
  } catch (caught) {
    const err = isSystemError(caught) ? systemError(caught) : caught
    if (isPgAuthorizeError(err)) {
      io.stderr(`error [${err.code}]: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`)
      return err.exitCode
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`error [ERR_INVALID_ARGUMENT]: ${err.message}`)
      return 2
    }
    io.stderr(`error [ERR_INTERNAL]: ${err instanceof Error ? err.constructor.name : 'unexpected error'}; set PG_AUTHORIZE_DEBUG=1 for details`)
    if (io.env.PG_AUTHORIZE_DEBUG) io.stderr(String(err instanceof Error ? err.stack : err))
    return 1
  }
}
