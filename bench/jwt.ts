/**
 * Figure a: JWT verifications per second, per algorithm (RS256, ES256, EdDSA), one at a time on one thread.
 *
 * - cold: the Verifier with its token cache off, over distinct tokens (every call decodes, selects the key
 *   and checks the signature and claims), against raw `node:crypto` `verify()` of the very same signing
 *   inputs and signatures (pre-split, pre-decoded: the floor no verifier can beat), alternating in short
 *   pairs; the ratio is the median of the pairs' ratios;
 * - cached: the Verifier with its verified-token cache on, every call a hit.
 *
 * The Verifier is the compiled one in dist/ (as installed), not the TypeScript source through tsx, whose
 * transform adds a name-keeping wrapper call to every function (about 1% here).
 *
 * @module
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Verifier as VerifierClass } from '../src/verify/verifier.js'
import type { generateSigningKey as GenerateSigningKey } from '../src/keys/generate.js'
import type { signToken as SignToken } from '../src/tokens/sign.js'
import type { Algorithm } from '../src/keys/algorithms.js'
import { fmt, median, noise, ROOT, type BenchOptions, type Figure } from './lib.js'

/** The compiled modules (dist/, built by run.ts): what the gateway runs once installed, not tsx's transform. */
async function load(): Promise<{ Verifier: typeof VerifierClass; generateSigningKey: typeof GenerateSigningKey; signToken: typeof SignToken }> {
  const dist = (p: string) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href)
  const [v, g, s] = await Promise.all([dist('verify/verifier.js'), dist('keys/generate.js'), dist('tokens/sign.js')])
  return { Verifier: v.Verifier, generateSigningKey: g.generateSigningKey, signToken: s.signToken }
}

/** Calls `fn` as often as it can for `ms`; returns calls per second. */
async function rate(ms: number, fn: (i: number) => unknown): Promise<number> {
  const start = performance.now()
  let n = 0
  let now = start
  while (now - start < ms) {
    // Batches keep the clock reads off the measurement.
    for (let k = 0; k < 64; k++) await fn(n++)
    now = performance.now()
  }
  return (n / (now - start)) * 1000
}

function rawVerifier(alg: Algorithm, key: KeyObject): (data: Buffer, sig: Buffer) => boolean {
  if (alg === 'EdDSA') return (data, sig) => cryptoVerify(null, data, key, sig)
  if (alg === 'ES256') return (data, sig) => cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
  return (data, sig) => cryptoVerify('sha256', data, key, sig)
}

export async function benchJwt(o: BenchOptions): Promise<Figure[]> {
  const { Verifier, generateSigningKey, signToken } = await load()
  const ms = o.quick ? 300 : 1500
  const count = o.quick ? 200 : 1000
  const figures: Figure[] = []
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const key = await generateSigningKey({ alg })
    const tokens: string[] = []
    for (let i = 0; i < count; i++) {
      tokens.push(await signToken({ privateJwk: key.privateJwk, sub: `user-${i}`, claims: { tenant_id: `t${i % 10}`, role: 'authenticated' }, expiresIn: '1h' }))
    }
    const provider = { name: 'bench', jwks: { keys: [key.publicJwk as JsonWebKey] } }
    const cold = new Verifier({ providers: [provider], cache: false })
    const cached = new Verifier({ providers: [provider], cache: { maxEntries: count * 2 } })
    const pub = createPublicKey({ key: key.publicJwk as never, format: 'jwk' })
    const raw = rawVerifier(alg, pub)
    const split = tokens.map((t) => {
      const dot = t.lastIndexOf('.')
      return { data: Buffer.from(t.slice(0, dot)), sig: Buffer.from(t.slice(dot + 1), 'base64url') }
    })
    // Every signature must really verify both ways, or the rates mean nothing.
    for (let i = 0; i < 5; i++) {
      if (!raw(split[i]!.data, split[i]!.sig)) throw new Error(`raw ${alg} verify failed`)
      await cold.verify(tokens[i]!)
    }
    for (const t of tokens) await cached.verify(t) // fill the cache
    const coldRates: number[] = []
    const rawRates: number[] = []
    const ratios: number[] = []
    const hitRates: number[] = []
    // Cold and raw alternate in short pairs, and each pair gives one ratio: two rates taken a fraction of
    // a second apart see the same machine, so the ratio survives noise that moves both (shared VMs).
    const pairs = 5
    for (let r = 0; r < o.runs; r++) {
      for (let k = 0; k < pairs; k++) {
        const c = await rate(ms / pairs, (i) => cold.verify(tokens[i % count]!))
        const w = await rate(ms / pairs, (i) => {
          const s = split[i % count]!
          return raw(s.data, s.sig)
        })
        coldRates.push(c)
        rawRates.push(w)
        ratios.push(c / w)
      }
      hitRates.push(await rate(ms, (i) => cached.verify(tokens[i % count]!)))
    }
    const hits = cached.stats().cache_hit ?? 0
    if (hits < count) throw new Error('the cached verifier did not hit its cache')
    cold.close()
    cached.close()
    const ratio = median(ratios)
    figures.push({
      id: 'a',
      name: `JWT ${alg} cold (cache off, distinct tokens)`,
      value: median(coldRates),
      unit: 'verifications/s',
      baseline: { label: `raw node:crypto verify`, value: median(rawRates), unit: '/s' },
      measure: `${ratio.toFixed(2)}x raw`,
      goal: '≥ 0.8x raw',
      pass: ratio >= 0.8,
      noise: noise(ratios, 'pairs'),
    })
    const hitRate = median(hitRates)
    figures.push({
      id: 'a',
      name: `JWT ${alg} verified-token cache hits`,
      value: hitRate,
      unit: 'hits/s',
      measure: `${fmt(hitRate / 1000)}k hits/s`,
      goal: '≥ 500k hits/s',
      pass: hitRate >= 500_000,
      noise: noise(hitRates),
    })
    o.log(`  ${alg}: cold ${fmt(median(coldRates))}/s, raw ${fmt(median(rawRates))}/s (${ratio.toFixed(2)}x), cache ${fmt(hitRate)} hits/s`)
  }
  return figures
}
