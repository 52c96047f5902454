/**
 * The README's journey works as written. Every code block of "The guide's journey, step by step" is read
 * from README.md (never copied here) and run, in order, against a real embedded Postgres:
 * the shell blocks through bash, with `npx pg-authorize` running this checkout's CLI; the drizzle schema
 * through drizzle-kit, then applied; the SQL block on the owner connection; the TypeScript snippets as
 * files of their own, with the token the README's own `token sign` printed.
 *
 * The only edits to the README's text are its placeholders: the example owner URL and JWKS URL, the
 * ports (free ones here, so parallel runs never collide) and the database name. A block this test does
 * not know how to run fails it, so a new block cannot go untested.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api'
import pg from 'pg'
import { freePort } from '../../src/database/embedded.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { needs, PSQL } from '../helpers/requires.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const entry = path.join(root, 'src/cli/entry.ts')
const tsx = import.meta.resolve('tsx')

interface Block {
  step: string
  lang: string
  text: string
}

/** The fenced blocks of the journey section, each with the step (`1`, `4 and 5`, ...) it sits under. */
function journeyBlocks(readme: string): Block[] {
  const start = readme.indexOf("## The guide's journey, step by step")
  const end = readme.indexOf('\n## ', start + 1)
  assert.ok(start >= 0 && end > start, "README has the section \"The guide's journey, step by step\"")
  const section = readme.slice(start, end)
  const blocks: Block[] = []
  let step = ''
  const re = /^\*\*(\d+(?: and \d+)?)\.|^```(\w*)\n([\s\S]*?)^```/gm
  for (let m = re.exec(section); m; m = re.exec(section)) {
    if (m[1]) step = m[1]
    else blocks.push({ step, lang: m[2]!, text: m[3]! })
  }
  return blocks
}

let db: TestDatabase
let work: string
const ports = { http: 0, wire: 0, jwks: 0 }
const children: Array<{ stop: () => Promise<void> }> = []

before(async () => {
  db = await createTestDatabase()
  ports.http = await freePort()
  ports.wire = await freePort()
  ports.jwks = await freePort()
  // Inside the repository, so the snippets' imports (pg, drizzle-orm, ...) resolve from node_modules.
  work = path.join(root, '.tmp', `readme-${process.pid}-${Date.now()}`)
  await mkdir(work, { recursive: true })
})
after(async () => {
  for (const c of children.reverse()) await c.stop()
  await db?.close()
  if (work) await rm(work, { recursive: true, force: true })
})

/** The README's placeholders, replaced by this stack's values; nothing else of the text changes. */
function localize(text: string): string {
  return text
    .replaceAll('postgresql://owner:password@db.example.com:5432/app', db.url)
    .replaceAll('https://app.example.com/.well-known/jwks.json', `http://127.0.0.1:${ports.jwks}/.well-known/jwks.json`)
    .replace(/(postgresql:\/\/[^\s'"/]+\/)app\b/g, `$1${db.database}`)
    .replace(/database: 'app'/g, `database: '${db.database}'`)
    .replaceAll('4444', String(ports.http))
    .replaceAll('5433', String(ports.wire))
    .replaceAll('8787', String(ports.jwks))
}

// `npx pg-authorize ...` runs this checkout's CLI from source, as the built bin would.
const prelude = `set -euo pipefail\nnpx() { if [ "$1" = pg-authorize ]; then shift; fi; node --import ${JSON.stringify(tsx)} ${JSON.stringify(entry)} "$@"; }\n`

interface Run {
  code: number
  stdout: string
  stderr: string
}

function bash(script: string, env: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', prelude + script], { cwd: work, env: { ...process.env, ...env }, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, stdout, stderr })
    })
    child.stdin.end(input)
  })
}

/** A long-running block (jwks serve, serve): resolves once its output matches `ready`. */
function background(script: string, ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    // `exec` runs programs, not shell functions: the CLI is named directly, so the signal reaches it.
    const command = script.trim().replace(/\s+#.*$/gm, '').replace(/^npx pg-authorize\b/, `node --import ${JSON.stringify(tsx)} ${JSON.stringify(entry)}`)
    const child = spawn('bash', ['-c', prelude + 'exec ' + command], {
      cwd: work,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const exited = new Promise<void>((r) => child.on('exit', () => r()))
    children.push({
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
      },
    })
    const timer = setTimeout(() => reject(new Error(`not ready within 60 s:\n${out}`)), 60_000)
    const onData = (d: Buffer) => {
      out += d
      if (ready.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before it was ready:\n${out}`))
    })
  })
}

test("the README's journey, step by step, runs as written", async () => {
  const blocks = journeyBlocks(await readFile(path.join(root, 'README.md'), 'utf8'))
  const take = (step: string, lang: string): string => {
    const i = blocks.findIndex((b) => b.step === step && b.lang === lang)
    assert.ok(i >= 0, `README step ${step} has a ${lang} block`)
    return localize(blocks.splice(i, 1)[0]!.text)
  }
  const ok = (r: Run, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stdout}\n${r.stderr}`)

  // 1. Keys.
  ok(await bash(take('1', 'sh')), 'step 1')
  // 2. A token; its claims are what the policies below must see.
  const signed = await bash(take('2', 'sh'))
  ok(signed, 'step 2')
  const token = signed.stdout.trim()
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'))
  assert.ok(claims.iss, 'the token of step 2 has an issuer, as the provider of step 4 requires')
  // 3. The JWKS server.
  await background(take('3', 'sh'), /JWKS: http/)
  // 4 and 5. Setup and the provider.
  const registered = await bash(take('4 and 5', 'sh'))
  ok(registered, 'steps 4 and 5')
  assert.match(registered.stdout, /added provider/)

  // 6. The drizzle schema, turned into SQL by drizzle-kit as `drizzle-kit generate` would, and the SQL block.
  const schemaFile = path.join(work, 'schema.ts')
  await writeFile(schemaFile, take('6', 'ts'))
  const schema = await import(pathToFileURL(schemaFile).href)
  const statements = await generateMigration(generateDrizzleJson({}), generateDrizzleJson(schema))
  const owner = new pg.Client(db.url)
  await owner.connect()
  try {
    for (const s of statements) await owner.query(s)
    await owner.query(take('6', 'sql'))
    // Someone else's rows beside the token's own, so "only the allowed rows" means something.
    await owner.query(`insert into tenants values ($1, 'Mine'), (gen_random_uuid(), 'Other')`, [claims.tenant_id])
    await owner.query(`insert into todos (user_id, task) values ($1, 'my task'), ('someone-else', 'their task')`, [claims.sub])
  } finally {
    await owner.end()
  }
  // The form step 6 shows is the one lint accepts: no per-row auth call anywhere.
  const lint = await bash('npx pg-authorize lint --json', { DATABASE_URL: db.url })
  const findings = JSON.parse(lint.stdout).findings as Array<{ rule: string; object: string }>
  assert.deepEqual(findings.filter((f) => f.rule === 'auth-call-per-row'), [], 'step 6 policies are evaluated once per statement')

  // 7. The gateway, with the README's own command line (its ports through the environment).
  await background(take('7', 'sh'), /pg-authorize gateway ready/, {
    DATABASE_URL: db.url,
    PG_AUTHORIZE_PORT: String(ports.http),
    PG_AUTHORIZE_PG_PORT: String(ports.wire),
  })
  const mine = [{ task: 'my task' }]
  const tasks = (rows: unknown) => (rows as Array<{ task: string }>).map((r) => ({ task: r.task }))

  // psql with the token as the password (interactive in the README: here the query comes on stdin).
  const psqlLine = take('7', 'sh')
  const skipPsql = needs(PSQL)
  if (!skipPsql) {
    const r = await bash(psqlLine, { TOKEN: token, PGCONNECT_TIMEOUT: '10' }, 'select task from todos;\n')
    ok(r, 'the psql line of step 7')
    assert.match(r.stdout, /my task/)
    assert.doesNotMatch(r.stdout, /their task/)
  }

  // The TypeScript snippets: each in a file of its own, with the README's free names (`token`,
  // `getToken`, `todos`) bound, printing every result it awaits.
  for (let i = 0; blocks.some((b) => b.step === '7' && b.lang === 'ts'); i++) {
    const snippet = take('7', 'ts')
    const results = [...snippet.matchAll(/^const (?:\{ (\w+) \}|(\w+)) = await /gm)].map((m) => m[1] ?? m[2]!)
    assert.ok(results.length, `snippet ${i + 1} of step 7 awaits a result:\n${snippet}`)
    const file = path.join(work, `snippet-${i + 1}.ts`)
    await writeFile(
      file,
      [
        `import { todos } from './schema.ts'`,
        `const token = process.env.TOKEN!`,
        `const getToken = async () => token`,
        snippet,
        `console.log(JSON.stringify({ ${results.join(', ')} }))`,
        `process.exit(0)`,
      ].join('\n'),
    )
    const r = await new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, ['--import', tsx, file], {
        cwd: work,
        env: { ...process.env, TOKEN: token, DATABASE_AUTHENTICATED_URL: `postgresql://authenticated@localhost:${ports.wire}/${db.database}` },
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code: code ?? 1, stdout, stderr })
      })
    })
    ok(r, `snippet ${i + 1} of step 7:\n${snippet}`)
    const printed = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
    for (const name of results) assert.deepEqual(tasks(printed[name]), mine, `snippet ${i + 1}: ${name} holds only the token's rows`)
  }
  assert.deepEqual(blocks, [], 'every block of the journey was run')
})
