#!/usr/bin/env node
// Runs the test suite with Node's own test runner, TypeScript loaded through tsx.
// Node 20's `--test` takes no globs, so the files are listed here.
//   node scripts/test.mjs                 every *.test.ts under test/ and src/
//   node scripts/test.mjs test/database   only those under the given folders or files
// Each test file starts its own throwaway embedded Postgres (test/helpers/postgres.ts), unless
// TEST_DATABASE_URL names a server; then the files share it and run one at a time.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'

function collect(p, out) {
  const st = statSync(p)
  if (st.isFile()) {
    if (p.endsWith('.test.ts')) out.push(p)
    return out
  }
  for (const name of readdirSync(p).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    collect(path.join(p, name), out)
  }
  return out
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('--'))
const files = (roots.length ? roots : ['src', 'test']).flatMap((r) => collect(r, []))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
const concurrency = process.env.TEST_DATABASE_URL ? 1 : Number(process.env.TEST_CONCURRENCY ?? 2)
const args = [
  '--import', 'tsx',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-timeout=300000',
  ...passthrough,
  ...files,
]
const res = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(res.status ?? 1)
