/**
 * drizzle-orm `neon-http` (0.45) through the gateway, unchanged: queries, `$withAuth`, `db.batch`.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { neon } from '@neondatabase/serverless'
import { drizzle } from 'drizzle-orm/neon-http'
import { eq, sql } from 'drizzle-orm'
import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core'
import { startStack, type Stack } from './harness.js'

const notes = pgTable('notes', {
  id: integer('id').primaryKey(),
  owner: text('owner').notNull(),
  body: text('body').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
})

let s: Stack
before(async () => {
  s = await startStack()
  await s.owner.query(`
    create table notes (id int primary key, owner text not null, body text not null, at timestamptz not null default now());
    grant select, insert, update, delete on notes to authenticated;
    alter table notes enable row level security;
    create policy own on notes to authenticated using (owner = (select auth.user_id())) with check (owner = (select auth.user_id()));
  `)
})
after(() => s?.close())

test('drizzle neon-http: insert, select, $withAuth, batch', async () => {
  const db = drizzle(neon(s.authUrl, { authToken: 'user:alice' }))
  await db.insert(notes).values({ id: 1, owner: 'alice', body: 'a1' })
  const mine = await db.select().from(notes)
  assert.equal(mine.length, 1)
  assert.equal(mine[0]!.body, 'a1')
  assert.ok(mine[0]!.at instanceof Date)

  // $withAuth switches the token per query: bob sees nothing of alice's, and writes his own.
  const asBob = db.$withAuth('user:bob')
  assert.deepEqual(await asBob.select().from(notes), [])
  await asBob.insert(notes).values({ id: 2, owner: 'bob', body: 'b1' })
  const who = await asBob.execute(sql`select auth.user_id() as sub`)
  assert.equal(who.rows[0]!.sub, 'bob')
  await assert.rejects(asBob.insert(notes).values({ id: 3, owner: 'alice', body: 'forged' }), (e: Error & { cause?: { code?: string } }) => {
    return (e.cause?.code ?? (e as { code?: string }).code) === '42501'
  })

  // db.batch runs in one transaction with the neon()-level token (alice).
  const [updated, after1] = await db.batch([
    db.update(notes).set({ body: 'a2' }).where(eq(notes.id, 1)).returning({ id: notes.id }),
    db.select({ body: notes.body }).from(notes),
  ])
  assert.deepEqual(updated, [{ id: 1 }])
  assert.deepEqual(after1, [{ body: 'a2' }])
  const all = await s.owner.query('select id, owner, body from notes order by id')
  assert.deepEqual(all.rows, [{ id: 1, owner: 'alice', body: 'a2' }, { id: 2, owner: 'bob', body: 'b1' }])
})
