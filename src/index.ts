/**
 * pg-authorize: bring your own JWTs, and let Postgres enforce authorization with Row-Level Security.
 * This file only re-exports; each part lives in its own folder.
 *
 * @module
 */
export * from './errors.js'
