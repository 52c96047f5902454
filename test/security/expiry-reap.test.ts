/**
 * A wire session that is over must not leave its statement running (issue 23 item 4). The statement loops
 * on `pg_sleep` inside `exception when query_canceled`, so the CancelRequest the gateway sends at expiry
 * (or when the client goes away) is swallowed and the backend never reads its closed socket. The gateway
 * must terminate it through the owner after its grace period (BACKEND_GRACE_MS): polled, bounded.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { BACKEND_GRACE_MS } from '../../src/database/backend-reaper.js'
import { bob, DATABASE, startStack, until, type Stack } from './stack.js'

let s: Stack
before(async () => {
  // Wire sessions end 2 s after they start (the sealed claims' lifetime).
  s = await startStack({ gateway: { databases: { wireSessionTtlSeconds: 2 } } })
})
after(() => s?.close())

const STUBBORN = `do $$ begin
  loop
    begin perform pg_sleep(0.2); exception when query_canceled then null; end;
  end loop;
end $$`

/** Starts the stubborn statement on a new TCP session; returns the client, the query and its backend pid. */
async function stubborn(): Promise<{ client: pg.Client; running: Promise<unknown>; pid: number }> {
  const token = await s.token(s.claimsOf(bob))
  const client = new pg.Client({ host: '127.0.0.1', port: s.gateway.pgPort, user: 'authenticated', database: DATABASE, password: token })
  client.on('error', () => {})
  await client.connect()
  const running = client.query(STUBBORN).then((r) => r, (e: unknown) => e)
  let pid = 0
  await until(async () => {
    const r = await s.owner.query<{ pid: number }>(
      `select pid from pg_stat_activity where usename = 'authenticated' and query like 'do $$ begin%pg_sleep(0.2)%' and state = 'active'`,
    )
    pid = r.rows[0]?.pid ?? 0
    return r.rows.length === 1
  }, 'the stubborn statement to start')
  return { client, running, pid }
}

const alive = async (pid: number) =>
  (await s.owner.query('select 1 from pg_stat_activity where pid = $1', [pid])).rows.length > 0

test('token expiry ends the backend too, even when its statement swallows the cancel', async () => {
  const { client, running, pid } = await stubborn()
  const err = (await running) as { code?: string; message?: string }
  assert.equal(err.code, '28000', `the session ended with the expiry FATAL: ${err.message}`)
  // The cancel was swallowed: right after the FATAL the backend is still there.
  assert.ok(await alive(pid), 'the statement survived the cancel (else this test proves nothing)')
  await until(async () => !(await alive(pid)), `backend ${pid} to be terminated`, BACKEND_GRACE_MS + 5000)
  await client.end().catch(() => {})
})

test('a client that goes away mid-statement does not leave its backend running', async () => {
  const { client, pid } = await stubborn()
  // Drop the connection without a goodbye (a crashed client, a lost network).
  ;(client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
  await until(async () => !(await alive(pid)), `backend ${pid} to be terminated`, BACKEND_GRACE_MS + 5000)
})
