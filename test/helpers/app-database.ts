/**
 * A database as an application using pg-authorize has it: a throwaway database of the test's own
 * (postgres.ts), `setup`, an ES256 signing key registered as the provider `app`, and the test's own schema,
 * run by the owner. `token(sub)` signs a token that provider accepts.
 */
import { setup } from '../../src/database/setup.js'
import { addProvider, withOwner } from '../../src/database/providers.js'
import { generateSigningKey, type SigningKey } from '../../src/keys/generate.js'
import { signToken } from '../../src/tokens/sign.js'
import { createTestDatabase, type TestDatabase } from './postgres.js'

export interface AppDatabase {
  db: TestDatabase
  key: SigningKey
  /** A token of the provider `app` for `sub`, valid for `expiresIn` (default one hour). */
  token(sub: string, expiresIn?: string): Promise<string>
}

export async function createAppDatabase(schema: string): Promise<AppDatabase> {
  const db = await createTestDatabase()
  try {
    await setup(db.url)
    const key = await generateSigningKey({ alg: 'ES256' })
    await withOwner(db.url, async (c) => {
      await addProvider(c, { name: 'app', jwks: { keys: [key.publicJwk as Record<string, unknown>] } })
      await c.query(schema)
    })
    return { db, key, token: (sub, expiresIn = '1h') => signToken({ privateJwk: key.privateJwk, sub, expiresIn }) }
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
}
