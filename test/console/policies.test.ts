// The console's Policies page shows the findings of the lint engine itself, table by table.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { policiesView } from '../../src/console/policies.js'
import { lintPolicies } from '../../src/testing/lint.js'
import { setup } from '../../src/database/setup.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { ownerQuery } from '../testing/helpers.js'

let db: TestDatabase
before(async () => {
  db = await createTestDatabase()
  await setup(db.url)
  await ownerQuery(db.url, await readFile(new URL('../testing/flawed-schema.sql', import.meta.url), 'utf8'))
  await ownerQuery(db.url, 'create view public.notes_view as select * from public.notes')
})
after(() => db?.close())

test('every lint finding shows on the Policies page: under its table, or in the page-wide list', async () => {
  const [view, report] = await Promise.all([policiesView(db.url), lintPolicies(db.url)])
  const shown = [
    ...view.tables.flatMap((t) => t.findings.map((f) => ({ ...f, at: `${t.schema}.${t.table}` }))),
    ...view.findings.map((f) => ({ ...f, at: '' })),
  ]
  const key = (f: { rule: string; object: string }) => `${f.rule} ${f.object}`
  assert.deepEqual(shown.map(key).sort(), report.findings.map(key).sort())
  const notes = view.tables.find((t) => t.table === 'notes')!
  assert.deepEqual(notes.findings.map((f) => f.rule).sort(), report.findings.filter((f) => f.table === 'public.notes').map((f) => f.rule).sort())
  assert.ok(notes.findings.find((f) => f.rule === 'rls_policy_always_true' && f.level === 'error' && /^ALTER POLICY/.test(f.fix)))
  assert.deepEqual(view.findings.map((f) => f.rule).sort(), [
    'anon_security_definer_function_executable', 'authenticated_security_definer_function_executable',
    'function_search_path_mutable', 'large_objects_executable', 'security_definer_view',
  ])
  assert.equal(view.tables.find((t) => t.table === 'secrets')!.matrix.authenticated!.SELECT, 'no RLS')
})
