/** The gateway's configuration: one model (schema.ts), one loader with one precedence (load.ts). */
export * from './schema.js'
export * from './load.js'
