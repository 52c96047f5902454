/** Argument helpers shared by the CLI commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { PgAuthorizeError } from '../errors.js'
import { parseDatabaseUrl } from '../database/connect.js'
import type { CliIO } from './command.js'

/** `--database-url`, else `DATABASE_URL`; validated, never echoed. */
export function databaseUrl(value: string | undefined, io: CliIO): string {
  const url = value ?? io.env.DATABASE_URL
  parseDatabaseUrl(url)
  return url!
}

/** parseArgs with strict checking and the errors mapped to ERR_INVALID_ARGUMENT. */
export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ options: O; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true })
  } catch (err) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', (err as Error).message)
  }
}

/** Splits a comma-separated flag value (`--algorithms RS256,ES256`). */
export function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  return value.split(',').map((s) => s.trim()).filter(Boolean)
}

/** A positive integer flag (ports, sizes), naming the flag when it is not one. */
export function int(value: string | undefined, flag: string, fallback: number, min = 0, max = 2 ** 31): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `${flag} must be an integer between ${min} and ${max}`)
  }
  return n
}
