/**
 * The app's queries, each run *as the user whose JWT it is given*: drizzle-orm `neon-http` over
 * `@neondatabase/serverless`, pointed at pg-authorize's `/sql` instead of Neon. The policies in the
 * schema decide what each token sees; nothing here filters by user.
 *
 * @module
 */
import { neon, neonConfig } from '@neondatabase/serverless'
import { drizzle } from 'drizzle-orm/neon-http'
import { eq } from 'drizzle-orm'
import * as schema from './db/schema.js'
import { tenants, todos, users } from './db/schema.js'

/** Sends the Neon client's SQL over HTTP to a pg-authorize gateway, e.g. `http://127.0.0.1:4444/sql`. */
export function useGateway(sqlEndpoint: string): void {
  neonConfig.fetchEndpoint = sqlEndpoint
}

export type AuthToken = string | (() => Promise<string> | string)

/** One client for the app; per-request identities come from `$withAuth`. */
export function createDb(databaseAuthenticatedUrl: string, authToken?: AuthToken) {
  return drizzle(neon(databaseAuthenticatedUrl, authToken === undefined ? {} : { authToken }), { schema })
}
export type Db = ReturnType<typeof createDb>

/** The guide's way: a client per request with the token as `authToken`. */
export async function listTenants(databaseAuthenticatedUrl: string, token: AuthToken) {
  const db = drizzle(neon(databaseAuthenticatedUrl, { authToken: token }))
  return db.select().from(tenants)
}

/** One shared client, the token per query with `$withAuth`. */
export async function listUsers(db: Db, token: AuthToken) {
  return db.$withAuth(token).select().from(users)
}

/** Renames the caller; RLS makes sure no one else's row changes. Returns the rows changed. */
export async function renameMe(db: Db, token: AuthToken, name: string) {
  return db.$withAuth(token).update(users).set({ name, updatedAt: new Date() }).returning({ id: users.id, name: users.name })
}

export async function addTodo(db: Db, token: AuthToken, task: string) {
  // user_id defaults to auth.user_id(): the caller's verified `sub`.
  const [row] = await db.$withAuth(token).insert(todos).values({ task }).returning()
  return row!
}

export async function listTodos(db: Db, token: AuthToken) {
  return db.$withAuth(token).select().from(todos).orderBy(todos.id)
}

export async function completeTodo(db: Db, token: AuthToken, id: number) {
  return db.$withAuth(token).update(todos).set({ isComplete: true }).where(eq(todos.id, id)).returning({ id: todos.id })
}
