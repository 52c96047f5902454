/**
 * `GET /rest/v1/`: a Swagger 2.0 description of what the role may see in one schema (PostgREST's
 * `openapi-mode=follow-privileges`): its tables and views with their columns, and its functions.
 *
 * @module
 */
import type { Column, SchemaCache } from './schema-cache.js'

const FORMATS: Record<string, { type: string; format?: string }> = {
  int2: { type: 'integer', format: 'smallint' },
  int4: { type: 'integer', format: 'integer' },
  int8: { type: 'integer', format: 'bigint' },
  float4: { type: 'number', format: 'real' },
  float8: { type: 'number', format: 'double precision' },
  numeric: { type: 'number', format: 'numeric' },
  bool: { type: 'boolean', format: 'boolean' },
  json: { type: 'object', format: 'json' },
  jsonb: { type: 'object', format: 'jsonb' },
}

function property(c: Column): Record<string, unknown> {
  const f = FORMATS[c.typname] ?? { type: 'string', format: c.type }
  return { ...f, ...(c.typname.startsWith('_') ? { type: 'array', items: { type: 'string' } } : {}), ...(c.default !== null ? { default: c.default } : {}) }
}

export function openApi(cache: SchemaCache, schema: string, url: URL): Record<string, unknown> {
  const paths: Record<string, unknown> = { '/': { get: { tags: ['Introspection'], summary: 'OpenAPI description (this document)', produces: ['application/openapi+json', 'application/json'], responses: { '200': { description: 'OK' } } } } }
  const definitions: Record<string, unknown> = {}
  for (const t of cache.tables.values()) {
    if (t.schema !== schema) continue
    const ops: Record<string, unknown> = {}
    const ok = { '200': { description: 'OK' } }
    if (t.select) ops.get = { tags: [t.name], responses: ok }
    if (t.insert) ops.post = { tags: [t.name], responses: { '201': { description: 'Created' } } }
    if (t.update) ops.patch = { tags: [t.name], responses: { '204': { description: 'No Content' } } }
    if (t.delete) ops.delete = { tags: [t.name], responses: { '204': { description: 'No Content' } } }
    paths[`/${t.name}`] = ops
    definitions[t.name] = {
      type: 'object',
      ...(t.comment ? { description: t.comment } : {}),
      required: t.columnList.filter((c) => !c.nullable && c.default === null).map((c) => c.name),
      properties: Object.fromEntries(t.columnList.map((c) => [c.name, { ...property(c), ...(t.pk.includes(c.name) ? { description: 'Note:\nThis is a Primary Key.<pk/>' } : {}) }])),
    }
  }
  for (const [key, fns] of cache.functions) {
    if (!key.startsWith(`${schema}.`)) continue
    const f = fns[0]!
    const op = { tags: ['(rpc) ' + f.name], ...(f.comment ? { summary: f.comment } : {}), responses: { '200': { description: 'OK' } } }
    paths[`/rpc/${f.name}`] = f.volatility === 'volatile' ? { post: op } : { get: op, post: op }
  }
  return {
    swagger: '2.0',
    info: { title: 'pg-authorize Data API', version: '1', description: `Schema ${schema}, as this role sees it` },
    host: url.host,
    basePath: url.pathname.replace(/\/$/, '') || '/',
    schemes: [url.protocol.replace(':', '')],
    consumes: ['application/json', 'application/vnd.pgrst.object+json', 'text/csv'],
    produces: ['application/json', 'application/vnd.pgrst.object+json', 'text/csv'],
    paths,
    definitions,
  }
}
