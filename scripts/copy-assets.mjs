#!/usr/bin/env node
// Copies the non-TypeScript files the built package needs into dist/ (tsc copies only what it compiles):
// the console's static JS and CSS.
import { cpSync } from 'node:fs'

cpSync('src/console/static', 'dist/console/static', { recursive: true })
