#!/usr/bin/env node
// The installed command. The TypeScript sources are compiled to dist/ by `npm install` (the `prepare`
// script), so the CLI starts without a TypeScript loader.
import '../dist/cli/entry.js'
