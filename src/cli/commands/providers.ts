/**
 * `pg-authorize providers add | list | remove | refresh`: the JWT providers of a database (JWKS URLs, or
 * OIDC issuers found by discovery). Providers live in the database, so every gateway serving it shares
 * them and picks up changes live.
 *
 * @module
 */
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl, list } from '../options.js'
import { defineCommand, defineGroup } from '../define.js'
import { alignedTable } from '../../testing/format.js'
import { probeKeys } from '../../console/providers.js'
import { addProvider, listProviders, removeProvider, touchProviders, withOwner } from '../../database/providers.js'

const add = defineCommand({
  name: 'providers add',
  summary: 'register a JWT provider (a JWKS URL, or an OIDC issuer by discovery); fetches the JWKS once and warns if it gives no usable key',
  usage: '(--jwks-url URL | --issuer URL) [options]',
  options: {
    ...DATABASE_OPTIONS,
    'jwks-url': { type: 'string', value: 'URL', help: "the provider's JWKS URL (or give --issuer alone: OIDC discovery)" },
    name: { type: 'string', value: 'NAME', help: "the provider's name (default: the URL's host and port)" },
    issuer: {
      type: 'string', value: 'ISS',
      help: 'required iss of its tokens; without --jwks-url, URL/.well-known/openid-configuration must name exactly this issuer and its jwks_uri is used (refused otherwise)',
    },
    audience: { type: 'string', multiple: true, value: 'AUD', help: 'accepted aud (repeatable)' },
    algorithms: { type: 'string', value: 'ALGS', help: 'accepted algorithms, comma-separated (default RS256,ES256,EdDSA)' },
    roles: { type: 'string', value: 'ROLES', help: 'roles its tokens may use, comma-separated (default authenticated)' },
    'role-claim': {
      type: 'string', value: 'PATH',
      help: 'the claim naming the role: $.role, $.app_metadata.role, $["https://x/claims"].role, $.realm_access.roles[*]; an array gives the first value --roles allows; the role in the connection string wins when the claim names it (default: the connection string\'s role)',
    },
    'default-role': { type: 'string', value: 'ROLE', help: 'the role of a token without the role claim (default: such tokens are refused)' },
    azp: { type: 'string', multiple: true, value: 'ID', help: 'required authorized party (repeatable; default: azp not checked)' },
    'strict-audience': { type: 'boolean', help: 'refuse tokens carrying aud when no --audience is set (default: aud then not checked)' },
    replace: { type: 'boolean', help: 'replace a provider of the same name' },
    json: { type: 'boolean', help: 'print the provider and the keys found as JSON' },
  },
  async run({ values }, io) {
    if (!values['jwks-url'] && !values.issuer) {
      throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', '--jwks-url URL or --issuer URL (OIDC discovery) is required')
    }
    const url = databaseUrl(values, io)
    const p = await withOwner(url, (c) =>
      addProvider(
        c,
        {
          ...(values['jwks-url'] ? { jwksUrl: values['jwks-url'] } : {}),
          ...(values.name ? { name: values.name } : {}),
          ...(values.issuer ? { issuer: values.issuer } : {}),
          ...(values.audience?.length ? { audience: values.audience.length === 1 ? values.audience[0]! : values.audience } : {}),
          ...(values.algorithms ? { algorithms: list(values.algorithms)! } : {}),
          ...(values.roles ? { roles: list(values.roles)! } : {}),
          ...(values['role-claim'] ? { roleClaim: values['role-claim'] } : {}),
          ...(values['default-role'] ? { defaultRole: values['default-role'] } : {}),
          ...(values.azp?.length ? { authorizedParties: values.azp } : {}),
          ...(values['strict-audience'] ? { strictAudience: true } : {}),
        },
        { replace: values.replace ?? false },
      ),
    )
    // Stored either way (the issuer may not be up yet), but say so now rather than at the first token.
    const probed = await probeKeys(p)
    io.stdout(values.json ? JSON.stringify({ ...p, ...probed }, null, 2) : `added provider '${p.name}' (${p.discovery ? `discovered from ${p.issuer}: ` : ''}${p.jwksUrl}); roles: ${p.roles.join(', ')}${p.roleClaim ? ` from ${p.roleClaim}${p.defaultRole ? `, default ${p.defaultRole}` : ''}` : ''}; algorithms: ${p.algorithms.join(', ')}`)
    if (probed.keysError) {
      io.stderr(`warning: provider '${p.name}' was added, but its JWKS gives no usable key: ${probed.keysError.message}; tokens it signs are refused until it does`)
    }
    return 0
  },
})

const listCommand = defineCommand({
  name: 'providers list',
  summary: 'list the providers of the database',
  options: { ...DATABASE_OPTIONS, json: { type: 'boolean', help: 'print JSON' } },
  async run({ values }, io) {
    const providers = await withOwner(databaseUrl(values, io), listProviders)
    if (values.json) io.stdout(JSON.stringify(providers, null, 2))
    else if (!providers.length) io.stdout('no providers; add one with: pg-authorize providers add --jwks-url URL')
    else {
      io.stdout(
        alignedTable(
          ['name', 'jwks', 'roles', 'role claim', 'algorithms', 'issuer', 'audience'],
          providers.map((p) => [
            p.name,
            p.jwks ? '(inline keys)' : p.discovery ? `(discovery) ${p.jwksUrl ?? ''}` : p.jwksUrl!,
            p.roles.join(',') + (p.defaultRole ? ` (default ${p.defaultRole})` : ''),
            p.roleClaim ?? '',
            p.algorithms.join(','),
            p.issuer ?? '',
            (p.audience ? [p.audience].flat().join(',') : p.strictAudience ? '(none: strict)' : '') + (p.authorizedParties ? ` azp: ${p.authorizedParties.join(',')}` : ''),
          ]),
        ),
      )
    }
    return 0
  },
})

const remove = defineCommand({
  name: 'providers remove',
  summary: 'remove a provider',
  usage: 'NAME [options]',
  positionals: 'NAME',
  options: { ...DATABASE_OPTIONS },
  async run({ values, positionals }, io) {
    if (positionals.length !== 1) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'usage: pg-authorize providers remove NAME')
    await withOwner(databaseUrl(values, io), (c) => removeProvider(c, positionals[0]!))
    io.stdout(`removed provider '${positionals[0]}'`)
    return 0
  },
})

const refresh = defineCommand({
  name: 'providers refresh',
  summary: 'make every running gateway refetch the JWKS of NAME (default: all) now',
  usage: '[NAME] [options]',
  positionals: '[NAME]',
  description: "Every gateway serving the database refetches the provider's JWKS at once, not when its cached keys\nexpire (their cache headers, or serve's --jwks-max-age, 10 min), and re-reads discovery documents: after\n`keys retire`, so the retired key stops working now.",
  options: { ...DATABASE_OPTIONS },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'usage: pg-authorize providers refresh [NAME]')
    // The row's change notification reaches every gateway; each then refetches (see database/watch.ts).
    const names = await withOwner(databaseUrl(values, io), (c) => touchProviders(c, positionals[0]))
    io.stdout(
      names.length
        ? `asked every gateway serving this database to refetch the JWKS of ${names.map((n) => `'${n}'`).join(', ')}`
        : 'no providers; add one with: pg-authorize providers add --jwks-url URL',
    )
    return 0
  },
})

export const providersCommand = defineGroup({
  name: 'providers',
  summary: 'add, list, remove or refresh the JWT providers (JWKS URLs or OIDC issuers) of a database',
  description: 'Providers live in the database, so every gateway serving it shares them and picks up changes live.',
  subcommands: [add, listCommand, remove, refresh],
})
