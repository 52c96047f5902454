/**
 * The peers of the HTTP figure (figure h), each run as its own process so its CPU can be read from
 * /proc/PID/stat:
 *
 * - `PEER=api`: the API a user would write by hand, the way Neon's docs describe the backend pattern for
 *   custom JWTs: jose `jwtVerify` against `createRemoteJWKSet(jwksUrl)`, then a `pg` transaction on a pool
 *   logged in as `authenticated` that sets `request.jwt.claims` transaction-locally with `set_config(...,
 *   true)` and runs the query. It reads the same Neon-shaped request the gateway reads (`POST /sql`,
 *   `Authorization: Bearer`, JSON `{query, params}`) and answers rows as JSON. Unlike the gateway it does not
 *   seal the claims (its policy reads the plain setting, which raw client SQL could forge: the reason the
 *   gateway seals), so it is the cheaper design, which is the fair side to err on.
 * - `PEER=noop`: Node's floor: reads the body and answers a fixed JSON body.
 *
 * Prints `READY <port>` once listening. Config in BENCH_PEER (JSON).
 *
 * @module
 */
import http from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import pg from 'pg'

interface PeerConfig {
  peer: 'api' | 'noop'
  jwksUrl?: string
  pool?: pg.PoolConfig
  /** noop: the body to answer. */
  body?: string
}

const cfg = JSON.parse(process.env.BENCH_PEER!) as PeerConfig

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void
if (cfg.peer === 'noop') {
  const body = cfg.body ?? '{"rows":[]}'
  handler = (req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body))
  }
} else {
  const JWKS = createRemoteJWKSet(new URL(cfg.jwksUrl!))
  const pool = new pg.Pool(cfg.pool)
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const auth = req.headers.authorization ?? ''
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : ''
    const body = await readBody(req)
    let payload: Record<string, unknown>
    try {
      payload = (await jwtVerify(token, JWKS, { algorithms: ['RS256'] })).payload
    } catch {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"invalid token"}')
      return
    }
    const { query, params } = JSON.parse(body) as { query: string; params: unknown[] }
    const client = await pool.connect()
    try {
      await client.query('begin')
      await client.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(payload)])
      const { rows } = await client.query(query, params)
      await client.query('commit')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rows }))
    } catch (err) {
      await client.query('rollback').catch(() => {})
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: (err as Error).message }))
    } finally {
      client.release()
    }
  }
  handler = (req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end()
    })
  }
}

const server = http.createServer(handler)
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${(server.address() as { port: number }).port}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
