/**
 * Runs the app on Node against a running `pg-authorize dev` (or `serve`).
 *
 *   KEYS_DIR=keys PORT=3000 npx tsx src/server.ts
 *
 * Environment: DATABASE_AUTHENTICATED_URL (default `postgresql://authenticated@127.0.0.1:5433/neondb`),
 * PG_AUTHORIZE_SQL_URL (default `http://127.0.0.1:4444/sql`), KEYS_DIR (default `keys`), PORT (default 3000).
 *
 * @module
 */
import { serve } from '@hono/node-server'
import { createApp } from './app.js'
import { loadKeys } from './keys.js'
import { useGateway } from './queries.js'

const env = process.env
useGateway(env.PG_AUTHORIZE_SQL_URL ?? 'http://127.0.0.1:4444/sql')
const app = createApp({
  databaseAuthenticatedUrl: env.DATABASE_AUTHENTICATED_URL ?? 'postgresql://authenticated@127.0.0.1:5433/neondb',
  ...(await loadKeys(env.KEYS_DIR ?? 'keys')),
})
const port = Number(env.PORT ?? 3000)
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => {
  console.log(`custom-jwt example on http://127.0.0.1:${port}`)
  console.log(`  token:  curl http://127.0.0.1:${port}/token?user=alice`)
  console.log(`  query:  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:${port}/api/users`)
})
