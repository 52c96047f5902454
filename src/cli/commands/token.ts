/**
 * `pg-authorize token sign | verify`: sign a custom JWT, or verify one against a JWKS.
 *
 * @module
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { PgAuthorizeError } from '../../errors.js'
import { ALGORITHMS, isAlgorithm, type Algorithm } from '../../keys/algorithms.js'
import { publishedJwks } from '../../keys/keydir.js'
import { buildClaims } from '../../tokens/claims.js'
import { readSigningKey } from '../../tokens/key-source.js'
import { signToken } from '../../tokens/sign.js'
import { parseDuration, parseTime } from '../../tokens/time.js'
import type { ProviderConfig } from '../../verify/types.js'
import { Verifier } from '../../verify/verifier.js'
import { defineCommand, defineGroup } from '../define.js'

const sign = defineCommand({
  name: 'token sign',
  summary: 'sign a custom JWT with a private key',
  usage: '--key FILE|DIR --sub ID [options]',
  description: 'The key may instead come from PG_AUTHORIZE_PRIVATE_KEY (the JWK JSON). Claim values that parse as JSON\nare JSON (--claim permissions=\'["read"]\'), others strings (--claim tenant_id=abc).',
  options: {
    key: { type: 'string', value: 'FILE|DIR', help: 'private JWK file, or a key directory (its current key)' },
    sub: { type: 'string', value: 'ID', help: 'the subject (sub claim)' },
    claim: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'one claim (repeatable)' },
    claims: { type: 'string', value: 'JSON', help: 'claims as a JSON object' },
    'expires-in': { type: 'string', value: 'D', help: '30s, 15m, 1h (default), 7d' },
    issuer: { type: 'string', value: 'ISS', help: 'the iss claim' },
    audience: { type: 'string', multiple: true, value: 'AUD', help: 'the aud claim (repeatable)' },
    'not-before': { type: 'string', value: 'TIME', help: 'nbf: a duration from now, epoch seconds or an ISO date' },
  },
  async run({ values }, io) {
    if (values.sub === undefined) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'token sign needs --sub ID')
    // Check every argument before touching the key, so mistakes fail fast and the same way every time.
    const claims = buildClaims(values.claim, values.claims)
    if (values['expires-in'] !== undefined) parseDuration(values['expires-in'], 'expires-in')
    if (values['not-before'] !== undefined) parseTime(values['not-before'], 0, 'not-before')
    const privateJwk = await readSigningKey(values.key === undefined ? undefined : path.resolve(io.cwd, values.key), io.env)
    const audience = values.audience === undefined ? undefined : values.audience.length === 1 ? values.audience[0] : values.audience
    const token = await signToken({
      privateJwk,
      sub: values.sub,
      claims,
      expiresIn: values['expires-in'],
      issuer: values.issuer,
      audience,
      notBefore: values['not-before'],
    })
    io.stdout(token)
    return 0
  },
})

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function jwksSource(value: string, cwd: string): Promise<Pick<ProviderConfig, 'jwksUrl' | 'jwks'>> {
  if (/^https?:\/\//i.test(value)) return { jwksUrl: value }
  const file = path.resolve(cwd, value)
  const st = await stat(file).catch(() => undefined)
  if (!st) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--jwks: ${file} does not exist (give a URL, a JWKS file or a key directory)`)
  if (st.isDirectory()) return { jwks: (await publishedJwks(file)) as { keys: JsonWebKey[] } }
  let doc: unknown
  try {
    doc = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    throw new PgAuthorizeError('ERR_JWKS_INVALID', `--jwks: ${file} is not valid JSON`)
  }
  if (doc !== null && typeof doc === 'object' && Array.isArray((doc as { keys?: unknown }).keys)) return { jwks: doc as { keys: JsonWebKey[] } }
  if (doc !== null && typeof doc === 'object' && typeof (doc as { kty?: unknown }).kty === 'string') return { jwks: { keys: [doc as JsonWebKey] } }
  throw new PgAuthorizeError('ERR_JWKS_INVALID', `--jwks: ${file} is neither a JWK Set nor a JWK`)
}

const verify = defineCommand({
  name: 'token verify',
  summary: 'verify a JWT against a JWKS and print its header and claims',
  usage: '--jwks URL|FILE|DIR [options] TOKEN|-',
  description: 'Prints {"header":…,"claims":…}, or `error [CODE]: message` with exit status 1.',
  positionals: 'TOKEN|-',
  options: {
    jwks: { type: 'string', value: 'URL|FILE|DIR', help: 'a JWKS URL, a JWKS or JWK file, or a key directory' },
    issuer: { type: 'string', value: 'ISS', help: 'required iss' },
    audience: { type: 'string', multiple: true, value: 'AUD', help: 'accepted aud (repeatable)' },
    algorithms: { type: 'string', value: 'ALGS', help: `accepted algorithms, comma-separated, of ${ALGORITHMS.join(', ')} (default RS256,ES256,EdDSA)` },
  },
  async run({ values, positionals }, io) {
    if (!values.jwks) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'token verify needs --jwks URL|FILE|DIR')
    if (positionals.length !== 1) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'token verify needs exactly one TOKEN (or - for stdin)')
    let algorithms: Algorithm[] | undefined
    if (values.algorithms !== undefined) {
      const list = values.algorithms.split(',').map((a) => a.trim()).filter(Boolean)
      const bad = list.find((a) => !isAlgorithm(a))
      if (bad !== undefined || list.length === 0) {
        throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `--algorithms: unsupported '${bad ?? ''}'`, { hint: `use ${ALGORITHMS.join(', ')}` })
      }
      algorithms = list as Algorithm[]
    }
    const token = (positionals[0] === '-' ? await readStdin() : positionals[0]!).trim()
    const provider: ProviderConfig = {
      name: 'cli',
      ...(await jwksSource(values.jwks, io.cwd)),
      ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
      ...(values.audience !== undefined ? { audience: values.audience.length === 1 ? values.audience[0]! : values.audience } : {}),
      ...(algorithms ? { algorithms } : {}),
    }
    const verifier = new Verifier({ providers: [provider], cache: false })
    try {
      const { header, claims } = await verifier.verify(token)
      io.stdout(JSON.stringify({ header, claims }, null, 2))
      return 0
    } finally {
      verifier.close()
    }
  },
})

export const token = defineGroup({
  name: 'token',
  summary: 'sign a custom JWT, or verify one against a JWKS',
  subcommands: [sign, verify],
})
