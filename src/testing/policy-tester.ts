/**
 * A test library for users' own test runners (node:test, vitest, jest: nothing runner-specific):
 * run SQL as any claims and assert what the RLS policies allow.
 *
 * Every call runs on a connection logged in as the restricted role itself, with the claims sealed and
 * installed exactly as the gateway does, inside a transaction that is always rolled back: tests leave no
 * data and cannot see each other's writes. `isolate(fn)` keeps one transaction open for a whole test, so
 * what one identity writes another can be asserted not to see, and still rolls everything back.
 *
 * @example
 * const db = await policyTester(process.env.DATABASE_URL!)
 * await db.as({ sub: alice }).expectRows('select id from users', [{ id: alice }])
 * await db.as({ sub: alice }).expectDenied(`insert into tenants values ($1, 'x')`, [other], '42501')
 * await db.close()
 *
 * @module
 */
import { AssertionError } from 'node:assert'
import { isDeepStrictEqual, inspect } from 'node:util'
import pg from 'pg'
import { PgAuthorizeError } from '../errors.js'
import { openDatabaseContext, type DatabaseContext } from '../database/context.js'
import type { Claims } from '../database/session.js'
import { checkRole, installIdentity, rollbackQuietly, sqlError } from './identity.js'

export interface PolicyTesterOptions {
  /** The owner connection string (it reads the sealing key and the roles' credentials; queries never run on it). */
  url: string
  /** Default role of `as(...)`. Default `authenticated`. */
  role?: string
  /** Connections per role (calls from concurrent tests each take one). Default 4. */
  maxConnections?: number
}

export interface AsOptions {
  /** The restricted role to log in as. Default: the tester's role. */
  role?: string
}

export interface RowsOptions {
  /** Compare in order. Default false: rows are compared as a multiset, since SQL without ORDER BY has no order. */
  ordered?: boolean
}

type Params = readonly unknown[]
type Row = Record<string, unknown>

/** Runs SQL as one identity. Each call is its own rolled-back transaction (or savepoint, inside `isolate`). */
export interface Actor {
  /** The rows the statement returns. */
  query<R extends Row = Row>(sql: string, params?: Params): Promise<R[]>
  /** The full result (rowCount of an UPDATE or DELETE, fields). */
  result<R extends Row = Row>(sql: string, params?: Params): Promise<pg.QueryResult<R>>
  /** Asserts the statement returns exactly `expected` (order ignored unless `ordered`). */
  expectRows(sql: string, expected: readonly Row[], options?: RowsOptions): Promise<void>
  expectRows(sql: string, params: Params, expected: readonly Row[], options?: RowsOptions): Promise<void>
  /** Asserts the statement returns no rows (and does not fail). */
  expectNoRows(sql: string, params?: Params): Promise<void>
  /** Asserts the statement's row count (rows returned, or touched by INSERT/UPDATE/DELETE) is `count`. */
  expectRowCount(sql: string, params: Params, count: number): Promise<void>
  /** Asserts the statement fails with `sqlstate` (default 42501, insufficient privilege / RLS violation). */
  expectDenied(sql: string, params?: Params, sqlstate?: string): Promise<void>
}

export interface PolicyTester {
  /** Runs as `claims` (`null`: the role with no identity). */
  as(claims: Claims | null, options?: AsOptions): Actor
  /** Runs as the `anonymous` role with no identity: a request without a token. */
  anonymous(): Actor
  /**
   * Runs `fn` in one transaction of `role` (default: the tester's role) that is rolled back at the end.
   * Inside, `t.as(claims)` switches identity; each call runs in a savepoint, so an expected error does
   * not abort the test's transaction. (A transaction has one login role, so `t.anonymous()` needs
   * `isolate(fn, { role: 'anonymous' })`.)
   */
  isolate<T>(fn: (t: IsolatedTester) => Promise<T>, options?: AsOptions): Promise<T>
  /** The restricted roles of the database. */
  readonly roles: readonly string[]
  close(): Promise<void>
}

export interface IsolatedTester {
  as(claims: Claims | null): Actor
}

/** How a statement is run: the transaction or savepoint around it is the caller's business. */
type Runner = <R extends Row>(claims: Claims | null, sql: string, params: Params) => Promise<pg.QueryResult<R>>

function show(value: unknown): string {
  return inspect(value, { depth: 6, breakLength: 100, sorted: true })
}

/** Pairs each expected row with an equal actual row; what is left over on either side is the difference. */
function sameRows(actual: readonly Row[], expected: readonly Row[], ordered: boolean): boolean {
  if (actual.length !== expected.length) return false
  if (ordered) return actual.every((row, i) => isDeepStrictEqual(row, expected[i]))
  const unused = [...actual]
  for (const want of expected) {
    const i = unused.findIndex((row) => isDeepStrictEqual(row, want))
    if (i < 0) return false
    unused.splice(i, 1)
  }
  return true
}

function describeIdentity(role: string, claims: Claims | null): string {
  return claims === null ? `${role} with no identity` : `${role} with claims ${JSON.stringify(claims)}`
}

function actor(run: Runner, role: string, claims: Claims | null): Actor {
  const who = describeIdentity(role, claims)
  const self: Actor = {
    async query<R extends Row>(sql: string, params: Params = []) {
      return (await run<R>(claims, sql, params)).rows
    },
    result: (sql, params = []) => run(claims, sql, params),
    async expectRows(sql: string, a: Params | readonly Row[], b?: readonly Row[] | RowsOptions, c?: RowsOptions) {
      const [params, expected, options] = Array.isArray(b) ? [a as Params, b as readonly Row[], c] : [[], a as readonly Row[], b as RowsOptions | undefined]
      const rows = await self.query(sql, params)
      if (!sameRows(rows, expected, options?.ordered ?? false)) {
        throw new AssertionError({
          message: `as ${who}:\n  ${sql}\nexpected ${expected.length} row(s)${options?.ordered ? ' in order' : ''}:\n${show(expected)}\nbut got ${rows.length}:\n${show(rows)}`,
          actual: rows,
          expected,
          operator: 'expectRows',
        })
      }
    },
    async expectNoRows(sql, params = []) {
      const rows = await self.query(sql, params)
      if (rows.length !== 0) {
        throw new AssertionError({
          message: `as ${who}:\n  ${sql}\nexpected no rows, but got ${rows.length}:\n${show(rows)}`,
          actual: rows,
          expected: [],
          operator: 'expectNoRows',
        })
      }
    },
    async expectRowCount(sql, params, count) {
      const r = await run(claims, sql, params)
      const n = r.rowCount ?? r.rows.length
      if (n !== count) {
        throw new AssertionError({
          message: `as ${who}:\n  ${sql}\nexpected a row count of ${count}, but it was ${n}`,
          actual: n,
          expected: count,
          operator: 'expectRowCount',
        })
      }
    },
    async expectDenied(sql, params = [], sqlstate = '42501') {
      let r: pg.QueryResult
      try {
        r = await run(claims, sql, params)
      } catch (err) {
        const e = sqlError(err)
        if (e?.sqlstate === sqlstate) return
        throw new AssertionError({
          message: `as ${who}:\n  ${sql}\nexpected it to be denied with SQLSTATE ${sqlstate}, but it failed with ${e ? `${e.sqlstate}: ${e.message}` : String(err)}`,
          actual: e?.sqlstate ?? String(err),
          expected: sqlstate,
          operator: 'expectDenied',
        })
      }
      throw new AssertionError({
        message: `as ${who}:\n  ${sql}\nexpected it to be denied with SQLSTATE ${sqlstate}, but it succeeded (${r.command} ${r.rowCount ?? r.rows.length})` +
          (/^\s*(update|delete)\b/i.test(sql) ? '\n(RLS never denies an UPDATE or DELETE of rows the policies hide: it touches 0 rows; use expectRowCount(sql, params, 0))' : ''),
        actual: 'success',
        expected: sqlstate,
        operator: 'expectDenied',
      })
    },
  }
  return self
}

/**
 * Opens a tester on the database named by the owner URL. pg-authorize must be set up in it
 * (`pg-authorize setup`). Close it when done (e.g. in `after`/`afterAll`).
 */
export async function policyTester(urlOrOptions: string | PolicyTesterOptions): Promise<PolicyTester> {
  const options = typeof urlOrOptions === 'string' ? { url: urlOrOptions } : urlOrOptions
  const defaultRole = options.role ?? 'authenticated'
  const ctx: DatabaseContext = await openDatabaseContext(options.url)
  checkRole(ctx, defaultRole)
  const pools = new Map<string, pg.Pool>()
  let closed = false

  const pool = (role: string): pg.Pool => {
    if (closed) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'this policy tester is closed')
    checkRole(ctx, role)
    let p = pools.get(role)
    if (!p) {
      p = new pg.Pool({ ...ctx.roleConnectionConfig(role), max: options.maxConnections ?? 4, idleTimeoutMillis: 10_000 })
      p.on('error', () => {}) // an idle connection dropped by the server: the pool replaces it
      pools.set(role, p)
    }
    return p
  }

  // One call = one transaction, always rolled back. The role is checked when the actor is made.
  const runOnce = (role: string): Runner => {
    pool(role)
    return async (claims, sql, params) => {
      const client = await pool(role).connect()
      let broken = false
      try {
        await client.query('BEGIN')
        await installIdentity(client, ctx, role, claims)
        return await client.query(sql, params as unknown[])
      } catch (err) {
        broken = sqlError(err) === undefined
        throw err
      } finally {
        await rollbackQuietly(client)
        client.release(broken)
      }
    }
  }

  return {
    roles: ctx.roles,
    as: (claims, o = {}) => actor(runOnce(o.role ?? defaultRole), o.role ?? defaultRole, claims),
    anonymous: () => actor(runOnce('anonymous'), 'anonymous', null),
    async isolate(fn, o = {}) {
      const role = o.role ?? defaultRole
      const client = await pool(role).connect()
      let n = 0
      const run: Runner = async (claims, sql, params) => {
        const sp = `pga_test_${++n}`
        await client.query(`SAVEPOINT ${sp}`)
        await installIdentity(client, ctx, role, claims)
        try {
          const r = await client.query(sql, params as unknown[])
          await client.query(`RELEASE SAVEPOINT ${sp}`)
          return r
        } catch (err) {
          await client.query(`ROLLBACK TO SAVEPOINT ${sp}`).catch(() => {})
          throw err
        }
      }
      try {
        await client.query('BEGIN')
        return await fn({ as: (claims) => actor(run, role, claims) })
      } finally {
        await rollbackQuietly(client)
        client.release()
      }
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})))
      await ctx.close().catch(() => {})
    },
  }
}
