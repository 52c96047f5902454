/**
 * The JWKS endpoint on Node: {@link createJwksHandler} over a key directory, served with node:http
 * through `@hono/node-server`'s request listener (a maintained Request/Response bridge).
 *
 * The key directory is re-read when `keyset.json` (or `public.jwk.json`) changes: one `stat` per
 * request compares mtime, size and inode (rotation renames a new file in, so the inode changes even
 * within one mtime tick). So `keys rotate` and `keys retire` take effect without a restart.
 *
 * @module
 */
import { createServer, type Server } from 'node:http'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { KEYSET_FILE, PUBLIC_KEY_FILE, publishedJwks, type PublicJwks } from '../keys/keydir.js'
import { createJwksHandler, JWKS_PATH } from './handler.js'
import { listen, urlHost } from '../lib/listen.js'

export interface ServeJwksOptions {
  /** The key directory to publish. */
  dir: string
  /** Default 8787; 0 picks a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** `Cache-Control` max-age in seconds. Default 300. */
  maxAge?: number
}

export interface JwksServer {
  /** The JWKS URL, e.g. `http://127.0.0.1:8787/.well-known/jwks.json`. */
  url: string
  port: number
  server: Server
  close(): Promise<void>
}

/**
 * A key source that re-reads the key directory only when its files changed. Reads a consistent state
 * because every write to the directory is an atomic rename; if a read still fails, the last good key
 * set keeps being served.
 */
export function keyDirSource(dir: string): () => Promise<PublicJwks> {
  let cached: { stamp: string; jwks: PublicJwks } | undefined
  return async () => {
    let stamp = 'none'
    for (const name of [KEYSET_FILE, PUBLIC_KEY_FILE]) {
      const s = await stat(path.join(dir, name)).catch(() => undefined)
      if (s) {
        stamp = `${name}:${s.mtimeMs}:${s.size}:${s.ino}`
        break
      }
    }
    if (cached?.stamp === stamp) return cached.jwks
    try {
      cached = { stamp, jwks: await publishedJwks(dir) }
    } catch (err) {
      if (!cached) throw err
    }
    return cached.jwks
  }
}

/** Starts the JWKS server; resolves once it listens. */
export async function serveJwks(options: ServeJwksOptions): Promise<JwksServer> {
  const source = keyDirSource(options.dir)
  await source() // fail fast on a missing or bad key directory
  const handler = createJwksHandler({ keys: source, maxAge: options.maxAge })
  const server = createServer(getRequestListener(handler, { overrideGlobalObjects: false }))
  const host = options.host ?? '127.0.0.1'
  const { port } = await listen(server, options.port ?? 8787, host)
  const shownHost = urlHost(host)
  return {
    url: `http://${shownHost}:${port}${JWKS_PATH}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
