/**
 * The whole local stack with the Data API on (`startDev`: embedded Postgres, keys, JWKS, the guide's demo,
 * the gateway), plus the real, unmodified `@supabase/postgrest-js` client pointed at `/rest/v1`.
 *
 * @module
 */
import { rm } from 'node:fs/promises'
import pg from 'pg'
import { PostgrestClient } from '@supabase/postgrest-js'
import { startDev, type DevStack } from '../../src/dev/dev.js'
import { DEMO_USERS, demoClaims, type DemoUser } from '../../src/dev/demo.js'
import { freePort } from '../../src/database/embedded.js'
import { loadKeyDir } from '../../src/keys/keydir.js'
import type { Jwk } from '../../src/keys/public.js'
import { signToken, type SignOptions } from '../../src/tokens/sign.js'
import { tempDir } from '../helpers/fs.js'
import path from 'node:path'

export const [alice, bob] = DEMO_USERS as [DemoUser, DemoUser]

export interface RestStack {
  dev: DevStack
  restUrl: string
  owner: pg.Client
  privateJwk: Jwk
  token(user?: DemoUser, options?: Partial<SignOptions>): Promise<string>
  /** The real postgrest-js client, as `user` (undefined: no token). */
  client(token?: string, url?: string): PostgrestClient
  close(): Promise<void>
}

export async function startRest(options: { allowAnonymous?: boolean; maxRows?: number | null; schemas?: string[] } = {}): Promise<RestStack> {
  const dir = await tempDir('pga-rest-')
  let dev: DevStack
  try {
    dev = await startDev({
      dir, port: 0, pgPort: 0, jwksPort: 0, postgresPort: await freePort(), console: false,
      allowAnonymous: options.allowAnonymous ?? false,
      rest: { ...(options.maxRows === undefined ? {} : { maxRows: options.maxRows }), ...(options.schemas ? { schemas: options.schemas } : {}) },
    })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const owner = new pg.Client(dev.ownerUrl)
  await owner.connect()
  const privateJwk = (await loadKeyDir(path.join(dir, 'keys'))).current.privateJwk
  const restUrl = dev.restUrl!
  return {
    dev,
    restUrl,
    owner,
    privateJwk,
    token: (user = alice, o = {}) => {
      const { sub, ...claims } = demoClaims(user)
      return signToken({ privateJwk, sub: sub as string, claims, expiresIn: '10m', ...o })
    },
    client: (token, url = restUrl) => new PostgrestClient(url, { headers: token ? { Authorization: `Bearer ${token}`, apikey: 'ignored-anon-key' } : { apikey: 'ignored-anon-key' } }),
    async close() {
      await owner.end().catch(() => {})
      await dev.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
