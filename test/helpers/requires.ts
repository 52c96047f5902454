/**
 * Tests that need a program outside npm (Chromium, psql, openssl). `npm install && npm test` must pass on a
 * fresh machine, so without the program such a test is skipped, loudly, naming the command that enables
 * it. CI (`CI=true`, set by .ci/run, which installs them all) must run every test, so there a missing
 * program fails the file instead of skipping.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

export interface External {
  /** What is missing, as the user knows it. */
  name: string
  /** The shell command that installs it (Debian). */
  install: string
  /** Whether it can run here. */
  present(): boolean
}

/** An executable at a fixed path (Chromium for playwright-core). */
export function executable(name: string, file: string, install: string): External {
  return {
    name: `${name} (${file})`,
    install,
    present() {
      try {
        accessSync(file, constants.X_OK)
        return true
      } catch {
        return false
      }
    },
  }
}

/** A program on PATH that answers `--version` (or `version`, for openssl). */
export function program(name: string, install: string, versionArgs = ['--version']): External {
  return {
    name,
    install,
    present() {
      try {
        execFileSync(name, versionArgs, { stdio: 'ignore', timeout: 10_000 })
        return true
      } catch {
        return false
      }
    },
  }
}

export const CHROMIUM = executable('Chromium', process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', 'apt-get install chromium (or set CHROMIUM_PATH)')
export const PSQL = program('psql', 'apt-get install postgresql-client')
export const OPENSSL = program('openssl', 'apt-get install openssl', ['version'])

const found = new Map<External, boolean>()

/**
 * The `skip` option for `test(name, { skip: needs(X) }, fn)`: `false` when everything is present, else the
 * reason, also printed to standard error so the run says which tests it did not run. With `CI=true` a
 * missing program throws: the file fails, naming it.
 */
export function needs(...externals: External[]): string | false {
  const missing = externals.filter((e) => {
    if (!found.has(e)) found.set(e, e.present())
    return !found.get(e)
  })
  if (!missing.length) return false
  const what = missing.map((e) => `${e.name} is not installed; enable with: ${e.install}`).join('; ')
  if (process.env.CI === 'true') throw new Error(`CI=true requires every test to run, but ${what}`)
  const reason = `SKIPPED: ${what}`
  process.stderr.write(`\n*** ${reason} ***\n\n`)
  return reason
}
