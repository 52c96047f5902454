/**
 * A failed start exits, promptly and non-zero, saying why and which flag: a port already in use, a bad
 * TLS PEM, a key directory that cannot be made. Under systemd or a container a start that fails and
 * then idles is a hung service, not a restart. "Promptly" is a bounded wait: a process still running
 * after it is killed, and the test fails.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setup } from '../../src/database/setup.js'
import { freePort } from '../../src/database/embedded.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const entry = path.join(root, 'src/cli/entry.ts')
const tsx = import.meta.resolve('tsx')

let db: TestDatabase
let dir: string
let blocker: net.Server
let busyPort: number

before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  dir = await mkdtemp(path.join(os.tmpdir(), 'pga-startup-'))
  blocker = net.createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  busyPort = (blocker.address() as net.AddressInfo).port
})
after(async () => {
  await new Promise((r) => blocker?.close(r))
  await db?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Runs the CLI; if it is still running after `withinMs`, kills it and says so. */
function run(args: string[], withinMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; killed: boolean; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsx, entry, ...args], { cwd: dir, env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    let killed = false
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, withinMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, killed, stdout, stderr })
    })
  })
}

const serveArgs = (http: number, wire: number) => ['serve', '--database-url', db.url, '--port', String(http), '--pg-port', String(wire)]

test('serve with its HTTP port in use exits non-zero, naming the port and --port', async () => {
  const r = await run(serveArgs(busyPort, await freePort()))
  assert.equal(r.killed, false, `still running:\n${r.stderr}`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, new RegExp(`port ${busyPort} is already in use \\(--port\\)`))
})

test('serve with its wire port in use exits non-zero, naming --pg-port', async () => {
  const r = await run(serveArgs(await freePort(), busyPort))
  assert.equal(r.killed, false, `still running:\n${r.stderr}`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, new RegExp(`port ${busyPort} is already in use \\(--pg-port\\)`))
})

test('serve with a file that is not PEM exits non-zero, naming the flag, never the contents', async () => {
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  await writeFile(cert, 'not a certificate SECRET-LOOKING-TEXT\n')
  await writeFile(key, 'not a key SECRET-LOOKING-TEXT\n')
  const r = await run([...serveArgs(await freePort(), await freePort()), '--tls-cert', cert, '--tls-key', key])
  assert.equal(r.killed, false, `still running:\n${r.stderr}`)
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--tls-key: .*key\.pem is not a PEM private key/)
  assert.doesNotMatch(r.stderr, /SECRET-LOOKING-TEXT/)
})

test('a directory that cannot be made fails at once with the operating system\'s reason', async () => {
  const r = await run(['keys', 'generate', '--dir', '/proc/pg-authorize-test/keys'], 20_000)
  assert.equal(r.killed, false, 'keys generate must not spin')
  assert.equal(r.code, 1)
  assert.match(r.stderr, /error \[ERR_SYSTEM\]: ENOENT: no such file or directory, mkdir '\/proc\/pg-authorize-test'/)
})

test('an existing file where a directory should be: the OS error, not a bare "Error"', async () => {
  const file = path.join(dir, 'a-file')
  await writeFile(file, '')
  const r = await run(['keys', 'generate', '--dir', path.join(file, 'keys')], 20_000)
  assert.equal(r.killed, false)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /error \[ERR_SYSTEM\]: (ENOTDIR|EEXIST)[^\n]*a-file/)
})
