/**
 * The guide's schema: tenants and their users, each row visible only to the JWT whose claims own it,
 * written with drizzle-orm's Neon RLS helpers. `npx drizzle-kit generate` turns it into ../../drizzle/.
 *
 * - `tenants`: readable and writable when the token's `tenant_id` claim is the row's id.
 * - `users`: readable and writable by the user themself (`sub`). `auth.user_id()` is text (as with Neon's
 *   pg_session_jwt) and `users.id` a uuid, so the comparison casts, exactly as the guide's demo does.
 * - `todos`: the same rule written with `authUid`, which compares `auth.user_id()` with a text column
 *   as is; the column defaults to the caller's `sub`, so inserts need not name it.
 *
 * @module
 */
import { sql } from 'drizzle-orm'
import { authenticatedRole, authUid, crudPolicy } from 'drizzle-orm/neon'
import { bigint, boolean, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

export const tenants = pgTable(
  'tenants',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
  },
  (table) => [
    crudPolicy({
      role: authenticatedRole,
      read: sql`(select auth.session()->>'tenant_id' = ${table.id}::text)`,
      modify: sql`(select auth.session()->>'tenant_id' = ${table.id}::text)`,
    }),
  ],
)

export const users = pgTable(
  'users',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id),
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    email: text('email').notNull(),
    settings: jsonb('settings'),
    createdAt: timestamp('created_at').defaultNow().notNull(),
    updatedAt: timestamp('updated_at').defaultNow().notNull(),
  },
  (table) => [
    crudPolicy({
      role: authenticatedRole,
      read: sql`(select auth.user_id() = ${table.id}::text)`,
      modify: sql`(select auth.user_id() = ${table.id}::text)`,
    }),
  ],
)

export const todos = pgTable(
  'todos',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    userId: text('user_id')
      .notNull()
      .default(sql`(auth.user_id())`),
    task: text('task').notNull(),
    isComplete: boolean('is_complete').notNull().default(false),
    insertedAt: timestamp('inserted_at', { withTimezone: true }).defaultNow().notNull(),
  },
  (table) => [crudPolicy({ role: authenticatedRole, read: authUid(table.userId), modify: authUid(table.userId) })],
)
