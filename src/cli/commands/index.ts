/** Every CLI command, in the order `pg-authorize --help` lists them. One line per command file. */
import type { Command } from '../command.js'

export const commands: Command[] = []
