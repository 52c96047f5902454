/**
 * Every command explains itself: `--help` (or `-h`) on every command and subcommand, and `help <command>`,
 * print that command's help and exit 0, never "Unknown option '--help'". The commands are walked from
 * their definitions, and each help must show every option its parser accepts. Negative numbers are values the
 * flag's own check judges, and a closed pipe (`config print | head -1`) is not a crash.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { main, type CliIO } from '../../src/cli/main.js'
import { commands } from '../../src/cli/commands/index.js'
import { cliReference } from '../../src/cli/reference.js'
import type { Command } from '../../src/cli/command.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: CliIO = { stdout: (s) => void (stdout += s + '\n'), stderr: (s) => void (stderr += s + '\n'), env: {}, cwd: root }
  const code = await main(argv, io)
  return { code, stdout, stderr }
}

/** Every command and subcommand, from the definitions themselves: a new one cannot be missed. */
function walk(list: readonly Command[]): Command[] {
  return list.flatMap((c) => [c, ...walk(c.subcommands ?? [])])
}
const all = walk(commands)
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

test('the walk reaches every command and subcommand', () => {
  const names = all.map((c) => c.name)
  for (const name of ['dev', 'serve', 'keys generate', 'keys list', 'token sign', 'token verify', 'jwks serve', 'providers add', 'providers refresh', 'config print', 'config reference', 'as', 'matrix', 'lint', 'setup']) {
    assert.ok(names.includes(name), name)
  }
})

test('every command and subcommand answers --help, -h and help <words> with its own help', async () => {
  for (const c of all) {
    const words = c.name.split(' ')
    for (const argv of [[...words, '--help'], [...words, '-h'], ['help', ...words], [...words, '--unknown-flag', '--help']]) {
      const r = await cli(argv)
      const what = argv.join(' ')
      assert.equal(r.code, 0, `${what}: ${r.stderr}`)
      assert.equal(r.stderr, '', what)
      assert.equal(r.stdout, c.help + '\n', `${what} prints the help of ${c.name}`)
    }
    assert.match(c.help, /^Usage:/, c.name)
    for (const line of c.usage) assert.ok(line.startsWith(`pg-authorize ${c.name}`), `${c.name}: ${line}`)
    assert.ok(c.help.includes(`pg-authorize ${c.name}`), `${c.name}: the help names the command`)
    for (const sub of c.subcommands ?? []) assert.ok(c.help.includes(sub.name), `${c.name}: the help lists ${sub.name}`)
  }
  const top = await cli(['--help'])
  for (const c of commands) assert.match(top.stdout, new RegExp(`^  ${c.name} `, 'm'), `the command list names ${c.name}`)
})

test('every option a parser accepts is in its help, and every flag a usage line names is one it accepts', async () => {
  for (const c of all) {
    for (const [name, option] of Object.entries(c.options)) {
      // `--[no-]x` stands for both --x and --no-x.
      const forms = [name, ...(name.startsWith('no-') ? [`[no-]${name.slice(3)}`] : [`[no-]${name}`])]
      const shown = forms.some((f) => new RegExp(`(^|[\\s,])--${escape(f)}(?![\\w-])`, 'm').test(c.help))
      assert.ok(shown, `${c.name} accepts --${name}, but its help does not show it`)
      if (option.short) assert.ok(c.help.includes(`-${option.short}, --${name}`), `${c.name}: -${option.short} is not shown`)
    }
    if (c.subcommands) continue
    for (const line of c.usage) {
      for (const [, flag] of line.matchAll(/--([a-z][a-z-]*)/g)) assert.ok(flag! in c.options, `${c.name}: the usage names --${flag}, which it does not accept`)
    }
    // And what is not defined is refused (the parser is strict), with the usage status.
    const r = await cli([...c.name.split(' '), '--not-an-option-of-any-command'])
    assert.equal(r.code, 2, `${c.name}: ${r.stderr}`)
    assert.match(r.stderr, /^error \[ERR_INVALID_ARGUMENT\]: Unknown option '--not-an-option-of-any-command'/, c.name)
  }
})

test('a group without a subcommand prints its help with the usage status; an unknown subcommand is named', async () => {
  for (const c of all.filter((c) => c.subcommands)) {
    const none = await cli([c.name])
    assert.equal(none.code, 2, c.name)
    assert.equal(none.stdout, c.help + '\n', c.name)
    const bad = await cli([c.name, 'nope'])
    assert.equal(bad.code, 2, c.name)
    assert.match(bad.stderr, new RegExp(`^error \\[ERR_INVALID_ARGUMENT\\]: unknown ${c.name} command 'nope'\nhint: use `), c.name)
  }
})

test('docs/cli.md is the reference the definitions generate', () => {
  const committed = readFileSync(path.join(root, 'docs/cli.md'), 'utf8')
  assert.ok(committed === cliReference(), 'docs/cli.md is out of date: run npm run docs:cli')
  for (const c of all) assert.ok(committed.includes(c.help), `docs/cli.md holds the help of ${c.name}`)
})

test('a negative number is a value the flag rejects by name, not "ambiguous"', async () => {
  const pool = await cli(['config', 'print', '--database-url', 'postgresql://u@h/d', '--pool-size', '-3'])
  assert.equal(pool.code, 2)
  assert.match(pool.stderr, /--pool-size: must be an integer from 1/)
  const exp = await cli(['token', 'sign', '--sub', 'x', '--expires-in', '-5m'])
  assert.equal(exp.code, 2)
  assert.match(exp.stderr, /ERR_INVALID_DURATION/)
  assert.doesNotMatch(pool.stderr + exp.stderr, /ambiguous/)
})

test('setup --cascade without --uninstall is refused instead of running setup', async () => {
  const r = await cli(['setup', '--cascade', '--database-url', 'postgresql://u@127.0.0.1:1/d'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--cascade goes with --uninstall/)
})

test('config print | head -1 ends quietly', async () => {
  const tsx = import.meta.resolve('tsx')
  const entry = path.join(root, 'src/cli/entry.ts')
  // The reader closes the pipe before anything is written: every write then fails with EPIPE.
  const line = `set -o pipefail; node --import '${tsx}' '${entry}' config print --database-url postgresql://u@h/d | { exec 0<&-; sleep 3; }`
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('bash', ['-c', line], { timeout: 60_000 }, (err, _stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr })),
  )
  assert.equal(r.stderr, '')
  assert.equal(r.code, 0)
})
