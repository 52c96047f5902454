/** Every CLI command, in the order `pg-authorize --help` lists them. One line per command file; each is one
 * definition (define.ts), and help, parsing, the help walk test and docs/cli.md all follow from this list. */
import type { Command } from '../command.js'
import { keys } from './keys.js'
import { token } from './token.js'
import { jwks } from './jwks.js'
import { setupCommand } from './setup.js'
import { providersCommand } from './providers.js'
import { serveCommand } from './serve.js'
import { devCommand } from './dev.js'
import { configCommand } from './config.js'
import { asCommand } from './as.js'
import { matrixCommand } from './matrix.js'
import { lintCommand } from './lint.js'

export const commands: Command[] = [devCommand, keys, token, jwks, setupCommand, providersCommand, serveCommand, configCommand, asCommand, matrixCommand, lintCommand]
