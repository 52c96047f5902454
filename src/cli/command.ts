/** The shape of one CLI command, and the IO it writes through (injected so tests run in-process). */
export interface CliIO {
  stdout(text: string): void
  stderr(text: string): void
  env: NodeJS.ProcessEnv
  cwd: string
}

export interface Command {
  /** The first word on the command line, e.g. `keys`. */
  name: string
  /** One line for the usage listing. */
  summary: string
  /**
   * The full help: what `<name> --help`, `<name> <sub> --help` and `help <name>` print. The dispatcher
   * answers those itself, so no command can reject --help as an unknown option.
   */
  help: string
  /** Subcommands (`keys generate`, ...), for the help walk and the usage listing. */
  subcommands?: readonly string[]
  /** Runs with the words after the name; resolves to the exit status (default 0). */
  run(argv: string[], io: CliIO): Promise<number | void>
}
