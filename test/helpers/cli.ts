/** Runs the real CLI in a child process (TypeScript through tsx), as a user would. */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const entry = path.join(root, 'src/cli/entry.ts')
// Resolved here, so the CLI also runs with a working directory outside the repository.
const tsx = import.meta.resolve('tsx')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, entry, ...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, stdout, stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

/** Spawns a long-running CLI command (e.g. `serve`) and resolves once a line matches `ready`. */
export function startCli(
  args: string[],
  ready: RegExp,
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<{
  output: () => string
  match: RegExpMatchArray
  /** Sends a signal and waits for the exit status. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Sends a signal without waiting (e.g. SIGHUP). */
  signal: (signal: NodeJS.Signals) => void
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, entry, ...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let done = false
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    const timer = setTimeout(() => {
      if (done) return
      done = true
      child.kill('SIGKILL')
      reject(new Error(`timed out waiting for ${ready}; output:\n${out}`))
    }, options.timeoutMs ?? 60_000)
    const onData = (d: Buffer) => {
      out += d
      const m = out.match(ready)
      if (m && !done) {
        done = true
        clearTimeout(timer)
        resolve({
          output: () => out,
          match: m,
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null) child.kill(signal)
            return exited
          },
          signal: (signal) => void child.kill(signal),
        })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => {
      if (!done) {
        done = true
        clearTimeout(timer)
        reject(new Error(`exited with ${code} before ready; output:\n${out}`))
      }
    })
  })
}
