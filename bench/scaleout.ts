/**
 * Figure g: scale-out. Two gateway instances serve one database; a new provider is added through the
 * database (what `pg-authorize providers add` does: an INSERT that fires NOTIFY). Measured: the time from
 * the INSERT until a token signed by the new provider's key is accepted by *both* gateways, polling each
 * every 5 ms over HTTP. The instances learn of it by LISTEN/NOTIFY (the 30 s poll is only a fallback).
 * Goal: under 1 s.
 *
 * @module
 */
import { startGateway, type Gateway } from '../src/gateway/gateway.js'
import { addProvider } from '../src/database/providers.js'
import { generateSigningKey } from '../src/keys/generate.js'
import { signToken } from '../src/tokens/sign.js'
import { median, noise, owner, sleep, type BenchOptions, type Figure, type Stack } from './lib.js'

async function accepted(gw: Gateway, database: string, token: string): Promise<boolean> {
  const res = await fetch(`${gw.url}/sql`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'neon-connection-string': `postgresql://authenticated@${gw.host}:${gw.port}/${database}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ query: 'select 1', params: [] }),
  })
  await res.arrayBuffer()
  return res.status === 200
}

export async function benchScaleout(o: BenchOptions, stack: Stack): Promise<Figure[]> {
  const a = await startGateway({ databaseUrl: stack.ownerUrl, port: 0, pgPort: false })
  const b = await startGateway({ databaseUrl: stack.ownerUrl, port: 0, pgPort: false })
  try {
    const times: number[] = []
    for (let r = 0; r < o.runs; r++) {
      const key = await generateSigningKey({ alg: 'ES256' })
      const token = await signToken({ privateJwk: key.privateJwk, sub: 'scale-out', expiresIn: '1h' })
      if ((await accepted(a, stack.database, token)) || (await accepted(b, stack.database, token))) {
        throw new Error('a token of a provider not yet added was accepted')
      }
      const t = performance.now()
      await owner(stack.ownerUrl, (c) =>
        addProvider(c, { name: `scale-${r}-${Date.now()}`, jwks: { keys: [key.publicJwk as Record<string, unknown>] } }),
      )
      const seen = await Promise.all(
        [a, b].map(async (gw) => {
          while (performance.now() - t < 10_000) {
            if (await accepted(gw, stack.database, token)) return performance.now() - t
            await sleep(5)
          }
          return Infinity
        }),
      )
      times.push(Math.max(...seen))
      o.log(`  run ${r + 1}: used by both instances after ${times.at(-1)!.toFixed(0)} ms`)
    }
    const ms = median(times)
    return [
      {
        id: 'g',
        name: 'scale-out: provider added through the database, used by both of 2 instances',
        value: ms,
        unit: 'ms',
        measure: `${ms.toFixed(0)} ms`,
        goal: '< 1 s',
        pass: ms < 1000,
        noise: noise(times),
        note: 'includes the INSERT and the polling interval (5 ms)',
      },
    ]
  } finally {
    await a.close()
    await b.close()
  }
}
