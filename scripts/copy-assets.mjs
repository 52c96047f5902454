#!/usr/bin/env node
// Copies the non-TypeScript files the built package needs into dist/ (tsc copies only what it compiles):
// the console's static CSS and JS (the shared console.js and one module per page). The whole folder is
// copied, so a new page's module needs no change here; the console serves only the files it lists.
import { cpSync } from 'node:fs'

cpSync('src/console/static', 'dist/console/static', { recursive: true })
