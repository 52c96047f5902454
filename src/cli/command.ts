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
  /** Runs with the words after the name; resolves to the exit status (default 0). */
  run(argv: string[], io: CliIO): Promise<number | void>
}
