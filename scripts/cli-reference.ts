// Writes docs/cli.md from the command definitions (src/cli/reference.ts). Run: npm run docs:cli
import { writeFileSync } from 'node:fs'
import { cliReference } from '../src/cli/reference.js'

writeFileSync(new URL('../docs/cli.md', import.meta.url), cliReference())
