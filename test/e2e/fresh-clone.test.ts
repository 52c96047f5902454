/**
 * A fresh clone works: `pg-authorize dev` (what `npm start` runs) reaches a state where the snippet it
 * prints returns rows, run exactly as printed by a shell in the repository root; and a second start on the
 * same folder reuses the data (a change made between the runs is still there) without an error.
 *
 * The CLI runs from source (test/helpers/cli.ts); `npm start` runs the same entry built into dist/.
 * Explicit free ports, so parallel runs never collide on the fixed defaults.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { freePort } from '../../src/database/embedded.js'
import { startCli } from '../helpers/cli.js'
import { alice } from './harness.js'
import { tempDir } from '../helpers/fs.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
let dir: string | undefined
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Runs a printed shell line with bash from the repository root; resolves with its stdout. */
function bash(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
}

/** The printed `TOKEN=... node --input-type=module -e '...'` command (its quoted script spans lines). */
const snippet = (out: string) => /^TOKEN=[\s\S]*?(?=\n\s*\nOr with psql)/m.exec(out)?.[0]

async function startDevCli(stateDir: string, postgresPort: number) {
  const args = ['dev', '--dir', stateDir, '--port', '0', '--pg-port', '0', '--jwks-port', '0', '--postgres-port', String(postgresPort)]
  // "Or with psql" comes after the snippet line: once it is out, the whole snippet is.
  return startCli(args, /Or with psql/, { timeoutMs: 90_000 })
}

test('npm start: `dev` prints a snippet that returns rows, and a second start reuses the data', async () => {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'))
  assert.equal(pkg.scripts.start, 'node bin/pg-authorize.js dev')

  dir = await tempDir('pga-fresh-')
  const stateDir = path.join(dir, '.pg-authorize')
  const postgresPort = await freePort()

  const stopCodes: (number | null)[] = []
  const first = await startDevCli(stateDir, postgresPort)
  let ownerUrl = ''
  try {
    const out = first.output()
    assert.match(out, /pg-authorize dev is ready/)
    const line = snippet(out)
    assert.ok(line, `a TOKEN=... command is printed:\n${out}`)
    assert.match(line, /node --input-type=module -e '/)
    const run = await bash(line)
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, new RegExp(alice.sub), 'Alice\'s row comes back')
    assert.doesNotMatch(run.stdout, /Bob/, 'and only hers')

    ownerUrl = /owner URL[^:]*:\s+(\S+)/.exec(out)![1]!
    // Something only the first run's data has: it must survive the restart.
    const c = new pg.Client(ownerUrl)
    await c.connect()
    await c.query(`update users set name = 'Alice (kept)' where id = $1`, [alice.sub])
    await c.end()
  } finally {
    stopCodes.push(await first.stop('SIGINT'))
  }

  const second = await startDevCli(stateDir, postgresPort)
  try {
    const out = second.output()
    assert.doesNotMatch(out, /error/i)
    assert.ok(out.includes(ownerUrl), 'the same owner URL (password kept beside the data)')
    const line = snippet(out)!
    const run = await bash(line)
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /Alice \(kept\)/)
    assert.match(run.stdout, new RegExp(alice.sub))
  } finally {
    stopCodes.push(await second.stop('SIGTERM'))
  }
  // Ctrl-C and SIGTERM stop everything cleanly: exit status 0, and Postgres is no longer listening.
  assert.deepEqual(stopCodes, [0, 0])
  const gone = await new pg.Client(ownerUrl).connect().then(() => 'still listening', (err: { code?: string }) => err.code)
  assert.equal(gone, 'ECONNREFUSED')
})
