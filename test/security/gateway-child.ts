/**
 * A gateway in a child process for the resource tests: prints `READY <http url> <wire port>` once listening,
 * and answers each `mem` line on standard input with its `process.memoryUsage()` as JSON (after a GC when
 * Node runs with --expose-gc), so a test can watch the memory of the process that holds the connections.
 *
 * @module
 */
import { createInterface } from 'node:readline'
import { startGateway } from '../../src/gateway/gateway.js'

const gw = await startGateway({ databaseUrl: process.env.OWNER_URL!, port: 0, pgPort: 0 })
process.stdout.write(`READY ${gw.url} ${gw.pgPort}\n`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'mem') {
    ;(globalThis as { gc?: () => void }).gc?.()
    process.stdout.write(`MEM ${JSON.stringify(process.memoryUsage())}\n`)
  }
}
await gw.close()
