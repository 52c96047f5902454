/**
 * A gateway with the console on, over a real Postgres with the guide's demo, a key directory served as a
 * JWKS on loopback (not yet registered as a provider: the tests add it), and tokens for the demo users.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setup } from '../../src/database/setup.js'
import { loadDemo, DEMO_USERS, demoClaims } from '../../src/dev/demo.js'
import { ensureKeys } from '../../src/keys/keydir.js'
import { serveJwks, type JwksServer } from '../../src/jwks/serve.js'
import { signToken } from '../../src/tokens/sign.js'
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'

export interface ConsoleHarness {
  db: TestDatabase
  gw: Gateway
  jwks: JwksServer
  /** `http://127.0.0.1:port/console` */
  base: string
  /** Tokens of the demo users Alice (A) and Bob (B). */
  tokens: { alice: string; bob: string }
  kid: string
  /** Logs in through the form and returns the session cookie and the page's CSRF token. */
  login(): Promise<{ cookie: string; csrf: string }>
  close(): Promise<void>
}

export async function startConsoleHarness(gatewayOptions: Partial<GatewayOptions> = {}): Promise<ConsoleHarness> {
  const db = await createTestDatabase()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pga-console-'))
  const stops: Array<() => Promise<unknown>> = [() => db.close(), () => rm(dir, { recursive: true, force: true })]
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  }
  try {
    await setup(db.url)
    await loadDemo(db.url)
    const keys = await ensureKeys(path.join(dir, 'keys'))
    const jwks = await serveJwks({ dir: keys.dir, port: 0 })
    stops.push(() => jwks.close())
    const gw = await startGateway({ databaseUrl: db.url, port: 0, pgPort: 0, console: { adminToken: ADMIN_TOKEN }, ...gatewayOptions })
    stops.push(() => gw.close())
    const sign = (i: number) => {
      const { sub, ...claims } = demoClaims(DEMO_USERS[i]!)
      return signToken({ privateJwk: keys.current.privateJwk, sub: sub as string, claims, expiresIn: '1h' })
    }
    const base = `${gw.url}/console`
    return {
      db,
      gw,
      jwks,
      base,
      tokens: { alice: await sign(0), bob: await sign(1) },
      kid: keys.current.privateJwk.kid as string,
      async login() {
        const res = await fetch(`${base}/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url },
          body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
        })
        if (res.status !== 303) throw new Error(`login failed: HTTP ${res.status}`)
        const cookie = res.headers.get('set-cookie')!.split(';')[0]!
        const page = await (await fetch(`${base}/providers`, { headers: { cookie } })).text()
        const csrf = /name="csrf-token" content="([^"]+)"/.exec(page)![1]!
        return { cookie, csrf }
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
