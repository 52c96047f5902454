/**
 * Pre-authentication memory (issue 23 item 3), against a gateway in a child process whose memory the test
 * reads: a WebSocket frame larger than the startup phase needs is refused from its header, before ws buffers
 * it; `POST /sql` without a well-formed token is refused before its body is read.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { childGateway, startStack } from './stack.js'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

/** Opens a raw WebSocket to /v2 and resolves with the socket once the upgrade is answered. */
function upgrade(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(
        'GET /v2?address=db:5432 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      )
    })
    sock.once('error', reject)
    sock.once('data', (d) => (d.toString('latin1').startsWith('HTTP/1.1 101') ? resolve(sock) : reject(new Error(d.toString()))))
  })
}

test('a 5 MB WebSocket frame before authentication is refused from its header; memory stays bounded', async () => {
  const s = await startStack()
  cleanups.push(() => s.close())
  const gw = await childGateway(s, cleanups)
  const before = await gw.mem()
  const FRAME = 5 * 1024 * 1024
  const SENT = 4 * 1024 * 1024 // most of the frame, then stall: what a memory attack does
  const payload = Buffer.alloc(SENT, 0x41)
  const sockets: net.Socket[] = []
  const closes: Promise<Buffer>[] = []
  for (let i = 0; i < 10; i++) {
    const sock = await upgrade(gw.port)
    sockets.push(sock)
    let got = Buffer.alloc(0)
    closes.push(new Promise((resolve) => {
      sock.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        // A close frame from the server: 0x88, then its status code.
        if (got.length >= 4 && got[0] === 0x88) resolve(got)
      })
      sock.on('close', () => resolve(got))
    }))
    sock.on('error', () => {})
    // Binary frame, FIN, masked, 64-bit length.
    const header = Buffer.alloc(14)
    header[0] = 0x82
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(FRAME), 2)
    randomBytes(4).copy(header, 10)
    sock.write(header)
    sock.write(payload)
  }
  const answers = await Promise.race([
    Promise.all(closes),
    new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref()),
  ])
  assert.ok(answers, 'the gateway did not refuse the oversized frames')
  for (const a of answers) {
    assert.equal(a[0], 0x88, 'a close frame')
    assert.equal(a.readUInt16BE(2), 1009, 'status 1009 (message too big)')
  }
  const held = await gw.mem()
  const grownMb = (held.heapUsed + held.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20
  console.log(`# 10 x 5 MB pre-auth frames: heap + array buffers +${grownMb.toFixed(1)} MB`)
  assert.ok(grownMb < 16, `the gateway holds ${grownMb.toFixed(1)} MB more`)
  assert.equal(s.restrictedLogins(), 0)
  for (const sock of sockets) sock.destroy()
})

test('POST /sql without a well-formed token is refused before its body is read', async () => {
  const s = await startStack()
  cleanups.push(() => s.close())
  const gw = await childGateway(s, cleanups)
  // Declares 5 MB (under the 10 MiB cap), sends 1 kB, then waits: the answer must come without the rest.
  const ask = (auth: string | null) => new Promise<string>((resolve) => {
    const sock = net.connect(gw.port, '127.0.0.1', () => {
      sock.write(
        'POST /sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5242880\r\n' +
          'Neon-Connection-String: postgresql://authenticated@h/secdb\r\n' +
          (auth === null ? '' : `Authorization: ${auth}\r\n`) + '\r\n' + '{"query":"' + 'x'.repeat(1000),
      )
    })
    let text = ''
    sock.on('data', (d) => {
      text += d.toString()
      if (/\r\n\r\n[\s\S]*\}/.test(text)) {
        sock.destroy()
        resolve(text)
      }
    })
    sock.on('error', () => resolve(text))
    sock.on('close', () => resolve(text))
    setTimeout(() => {
      sock.destroy()
      resolve(text)
    }, 10_000).unref()
  })
  for (const [auth, code] of [[null, '28000'], ['Bearer not-a-jwt', '28000'], ['Bearer a.b', '28000']] as const) {
    const answer = await ask(auth)
    assert.match(answer, /^HTTP\/1.1 400/, `no answer before the body for ${auth}: ${answer.slice(0, 200)}`)
    assert.match(answer, new RegExp(`"code":"${code}"`))
  }
  assert.equal(s.restrictedLogins(), 0)
})
