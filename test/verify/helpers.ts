/** Shared helpers for the JWT tests: temp dirs, file snapshots, hand-made JWS and error assertions. */
import assert from 'node:assert/strict'
import { createPrivateKey, sign as nodeSign } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { isPgAuthorizeError, type ErrorCode } from '../../src/errors.js'


/** Bytes and mtime of every file under `dir`, to prove a failed command changed nothing. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name)
    const st = await stat(file)
    out[name] = st.isDirectory() ? 'dir' : `${st.mtimeMs}:${st.mode}:${(await readFile(file)).toString('base64')}`
  }
  return out
}

export const b64url = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/**
 * A JWS signed by hand with node:crypto, so tests can put in headers jose refuses to produce
 * (crit, b64, alg none) and still carry a genuine signature. A string payload is used as the exact JSON
 * text (for what JSON.stringify cannot write, such as `1e400`).
 */
export function rawSign(header: Record<string, unknown>, payload: Record<string, unknown> | string, privateJwk: Record<string, unknown>): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  const key = createPrivateKey({ key: privateJwk as never, format: 'jwk' })
  const alg = String(header.alg)
  let sig: Buffer
  if (alg === 'EdDSA') sig = nodeSign(null, Buffer.from(input), key)
  else if (alg.startsWith('ES')) sig = nodeSign(`sha${alg.slice(2)}`, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  else if (alg.startsWith('PS')) sig = nodeSign(`sha${alg.slice(2)}`, Buffer.from(input), { key, padding: 6, saltLength: Number(alg.slice(2)) / 8 })
  else sig = nodeSign(`sha${alg.slice(2)}`, Buffer.from(input), key)
  return `${input}.${sig.toString('base64url')}`
}

/** Asserts a PgAuthorizeError with `code` whose message does not echo the token. */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, token?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isPgAuthorizeError(err), `expected a PgAuthorizeError, got ${String(err)}`)
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    if (token) {
      for (const part of token.split('.').filter((s) => s.length > 8)) assert.ok(!err.message.includes(part), 'message echoes the token')
    }
    return true
  })
}
