/**
 * docs/cli.md, generated from the command definitions: the top-level help, then each command's and each
 * subcommand's `--help`, exactly as the CLI prints them. `npm run docs:cli` writes it, and
 * test/cli/help.test.ts fails when the committed file differs.
 *
 * @module
 */
import type { Command } from './command.js'
import { commands } from './commands/index.js'
import { usage } from './main.js'

const block = (text: string) => ['```text', text, '```'].join('\n')

function section(command: Command, depth: number): string[] {
  return [
    `${'#'.repeat(depth)} pg-authorize ${command.name}`,
    '',
    command.summary.charAt(0).toUpperCase() + command.summary.slice(1) + '.',
    '',
    block(command.help),
    '',
    ...(command.subcommands ?? []).flatMap((sub) => section(sub, depth + 1)),
  ]
}

/** The Markdown of docs/cli.md. */
export function cliReference(): string {
  return [
    '# pg-authorize command-line reference',
    '',
    '<!-- Generated from src/cli/commands/* by `npm run docs:cli`; edit the definitions, not this file. -->',
    '',
    "Every command's `--help`, as the CLI prints it. The settings `serve` takes also come from the",
    "environment and the configuration file: see the README's configuration reference (`pg-authorize config reference`).",
    '',
    block(usage()),
    '',
    ...commands.flatMap((c) => section(c, 2)),
  ].join('\n')
}
