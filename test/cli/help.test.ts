/**
 * Every command explains itself: `--help` (or `-h`) on every command and subcommand, and `help <command>`,
 * print that command's help and exit 0, never "Unknown option '--help'". Negative numbers are values the
 * flag's own check judges, and a closed pipe (`config print | head -1`) is not a crash.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { main, type CliIO } from '../../src/cli/main.js'
import { commands } from '../../src/cli/commands/index.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: CliIO = { stdout: (s) => void (stdout += s + '\n'), stderr: (s) => void (stderr += s + '\n'), env: {}, cwd: root }
  const code = await main(argv, io)
  return { code, stdout, stderr }
}

test('every command and subcommand answers --help, -h and help <command> with its own help', async () => {
  assert.ok(commands.length >= 11)
  for (const c of commands) {
    const lines = [[c.name, '--help'], [c.name, '-h'], ['help', c.name], ...(c.subcommands ?? []).flatMap((s) => [[c.name, s, '--help'], [c.name, s, '-h']])]
    for (const argv of lines) {
      const r = await cli(argv)
      const what = argv.join(' ')
      assert.equal(r.code, 0, `${what}: ${r.stderr}`)
      assert.equal(r.stderr, '', what)
      assert.match(r.stdout, /^Usage:/, what)
      assert.ok(r.stdout.includes(`pg-authorize ${c.name}`), `${what} names the command`)
      if (argv.length === 3) assert.ok(r.stdout.includes(`${c.name} ${argv[1]}`), `${what} shows the subcommand`)
    }
  }
  const top = await cli(['--help'])
  for (const c of commands) assert.ok(top.stdout.includes(c.name), `the command list names ${c.name}`)
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
