/**
 * `serve --rest --rest-schema ... --rest-max-rows ...` (and their environment variables) become the
 * gateway's `rest` options; without `--rest` the Data API is off.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import os from 'node:os'
import { loadConfig } from '../../src/config/load.js'
import { gatewayOptions } from '../../src/cli/commands/serve.js'

const URL_ = 'postgresql://owner:pw@127.0.0.1:5432/app'

test('serve --rest: on, with the exposed schemas and the row cap', () => {
  const { config } = loadConfig({ env: { DATABASE_URL: URL_ }, flags: { rest: true, 'rest-schema': 'api,public', 'rest-max-rows': '50' }, cwd: os.tmpdir() })
  assert.deepEqual(gatewayOptions(config).rest, { schemas: ['api', 'public'], maxRows: 50 })
  const env = loadConfig({ env: { DATABASE_URL: URL_, PG_AUTHORIZE_REST: 'true', PG_AUTHORIZE_REST_MAX_ROWS: '0' }, cwd: os.tmpdir() }).config
  assert.deepEqual(gatewayOptions(env).rest, { schemas: ['public'], maxRows: null })
})

test('without --rest the Data API is off', () => {
  const { config } = loadConfig({ env: { DATABASE_URL: URL_ }, cwd: os.tmpdir() })
  assert.equal(gatewayOptions(config).rest, false)
})
