/**
 * The shape of one CLI command, and the IO it writes through (injected so tests run in-process). A
 * command is made by `defineCommand` or `defineGroup` (define.ts) from one definition, never by hand.
 */
import type { ParseArgsConfig } from 'node:util'

export interface CliIO {
  stdout(text: string): void
  stderr(text: string): void
  env: NodeJS.ProcessEnv
  cwd: string
}

/** What `parseArgs` is given: every option the command's parser accepts. */
export type ParserOptions = NonNullable<ParseArgsConfig['options']>

export interface Command {
  /** The words after `pg-authorize`: `keys`, or `keys generate` for a subcommand. */
  name: string
  /** One line for the command listing. */
  summary: string
  /** The usage lines, each starting `pg-authorize <name>`. */
  usage: readonly string[]
  /**
   * The full help: what `<name> --help` and `help <name>` print. The dispatcher answers those itself,
   * so no command can reject --help as an unknown option.
   */
  help: string
  /** Exactly the options its parser accepts (none for a group: its subcommands have them). */
  options: ParserOptions
  /** Subcommands (`keys generate`, ...), for dispatch, help and the reference. */
  subcommands?: readonly Command[]
  /** Runs with the words after the name; resolves to the exit status (default 0). */
  run(argv: string[], io: CliIO): Promise<number | void>
}
