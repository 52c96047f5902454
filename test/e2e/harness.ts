/**
 * The whole local stack for the end-to-end tests: `startDev` (embedded Postgres in a temporary folder,
 * keys, JWKS server, setup, provider `local`, the guide's demo, the gateway) on free ports, and the real,
 * unmodified `@neondatabase/serverless` client pointed at its `/sql`. Tokens are real JWTs signed with the
 * stack's own key and verified by the gateway against the JWKS it serves.
 *
 * @module
 */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless'
import pg from 'pg'
import { startDev, type DevStack } from '../../src/dev/dev.js'
import { DEMO_USERS, demoClaims, type DemoUser } from '../../src/dev/demo.js'
import { freePort } from '../../src/database/embedded.js'
import { loadKeyDir } from '../../src/keys/keydir.js'
import type { Jwk } from '../../src/keys/public.js'
import { signToken, type SignOptions } from '../../src/tokens/sign.js'
import { tempDir } from '../helpers/fs.js'

export const [alice, bob] = DEMO_USERS as [DemoUser, DemoUser]

export interface E2E {
  dev: DevStack
  /** What an application puts in DATABASE_AUTHENTICATED_URL (the host is ignored: fetchEndpoint wins). */
  authUrl: string
  /** The private JWK the provider `local` trusts. */
  privateJwk: Jwk
  /** A superuser client on the served database, for seeding and for checking what was written. */
  owner: pg.Client
  /** A fresh token for a demo user (or any claims). */
  token(user?: DemoUser, options?: Partial<SignOptions>): Promise<string>
  /** The real Neon client with `authToken`. */
  sql(authToken?: string | (() => Promise<string> | string), url?: string): NeonQueryFunction<false, false>
  close(): Promise<void>
}


export async function startE2E(): Promise<E2E> {
  const dir = await tempDir('pga-e2e-')
  let dev: DevStack
  try {
    dev = await startDev({ dir, port: 0, pgPort: 0, jwksPort: 0, postgresPort: await freePort() })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const owner = new pg.Client(dev.ownerUrl)
  await owner.connect()
  const privateJwk = (await loadKeyDir(path.join(dir, 'keys'))).current.privateJwk
  neonConfig.fetchEndpoint = dev.sqlEndpoint
  const authUrl = 'postgresql://authenticated@db.localtest.me/neondb'
  return {
    dev,
    authUrl,
    privateJwk,
    owner,
    token: (user = alice, options = {}) => {
      const { sub, ...claims } = demoClaims(user)
      return signToken({ privateJwk, sub: sub as string, claims, expiresIn: '10m', ...options })
    },
    sql: (authToken, url = authUrl) => neon(url, authToken === undefined ? {} : { authToken }),
    async close() {
      await owner.end().catch(() => {})
      await dev.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p
  } catch (err) {
    return err as Error & Record<string, unknown>
  }
  throw new Error('expected a rejection, got a result')
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

