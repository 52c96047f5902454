/**
 * pg-authorize providers add (--jwks-url URL | --issuer URL) [--name NAME] [--issuer ISS] [--audience AUD]
 *                            [--role-claim PATH] [--default-role ROLE] [--azp ID] [--strict-audience]
 *                            [--algorithms RS256,ES256] [--roles authenticated,anonymous] [--replace] [--json]
 * pg-authorize providers list [--json]
 * pg-authorize providers remove NAME
 * pg-authorize providers refresh [NAME]
 * (each with --database-url OWNER_URL or DATABASE_URL)
 *
 * Providers live in the database, so every gateway serving it shares them and picks up changes live.
 */
import type { Command } from '../command.js'
import { PgAuthorizeError } from '../../errors.js'
import { DATABASE_OPTIONS, databaseUrl, list, parse } from '../options.js'
import { alignedTable } from '../../testing/format.js'
import { probeKeys } from '../../console/providers.js'
import { addProvider, listProviders, removeProvider, touchProviders, withOwner } from '../../database/providers.js'

const HELP = `Usage:
  pg-authorize providers add --jwks-url URL [--name NAME] [--issuer ISS] [--audience AUD]
                             [--algorithms RS256,ES256,EdDSA] [--roles authenticated] [--replace] [--json]
                             (fetches the JWKS once and warns if it gives no usable key)
  pg-authorize providers add --issuer URL ...   without --jwks-url: OIDC discovery; URL/.well-known/openid-configuration
                                                must name exactly this issuer; its jwks_uri is used (refused otherwise)
      --role-claim PATH     the claim naming the role: $.role, $.app_metadata.role, $["https://x/claims"].role,
                            $.realm_access.roles[*]; an array gives the first value --roles allows; the role in the
                            connection string wins when the claim names it (default: the connection string's role)
      --default-role ROLE   the role of a token without the role claim (default: such tokens are refused)
      --azp ID              required authorized party (repeatable; default: azp not checked)
      --strict-audience     refuse tokens carrying aud when no --audience is set (default: aud then not checked)
  pg-authorize providers list [--json]
  pg-authorize providers remove NAME
  pg-authorize providers refresh [NAME]   every running gateway refetches the JWKS of NAME (default: all)
                                          now, not when its cached keys expire (their cache headers, or
                                          --jwks-max-age, 10 min), and re-reads discovery documents
Each takes --database-url OWNER_URL (default: $PG_AUTHORIZE_DATABASE_URL, $DATABASE_URL, then databaseUrl in the configuration file)
and --config FILE (default ./pg-authorize.config.json if present).`

export const providersCommand: Command = {
  name: 'providers',
  summary: 'add, list or remove the JWT providers (JWKS URLs or OIDC issuers) of a database',
  help: HELP,
  subcommands: ['add', 'list', 'remove', 'refresh'],
  async run(argv, io) {
    const [sub, ...rest] = argv
    if (!sub || sub === '--help' || sub === '-h') {
      io.stdout(HELP)
      return sub ? 0 : 2
    }
    if (sub === 'add') {
      const { values } = parse(rest, {
        ...DATABASE_OPTIONS,
        'jwks-url': { type: 'string' },
        name: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string', multiple: true },
        algorithms: { type: 'string' },
        roles: { type: 'string' },
        'role-claim': { type: 'string' },
        'default-role': { type: 'string' },
        azp: { type: 'string', multiple: true },
        'strict-audience': { type: 'boolean' },
        replace: { type: 'boolean' },
        json: { type: 'boolean' },
      })
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
    }
    if (sub === 'list') {
      const { values } = parse(rest, { ...DATABASE_OPTIONS, json: { type: 'boolean' } })
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
    }
    if (sub === 'remove') {
      const { values, positionals } = parse(rest, { ...DATABASE_OPTIONS }, true)
      if (positionals.length !== 1) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'usage: pg-authorize providers remove NAME')
      await withOwner(databaseUrl(values, io), (c) => removeProvider(c, positionals[0]!))
      io.stdout(`removed provider '${positionals[0]}'`)
      return 0
    }
    if (sub === 'refresh') {
      const { values, positionals } = parse(rest, { ...DATABASE_OPTIONS }, true)
      if (positionals.length > 1) throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', 'usage: pg-authorize providers refresh [NAME]')
      // The row's change notification reaches every gateway; each then refetches (see database/watch.ts).
      const names = await withOwner(databaseUrl(values, io), (c) => touchProviders(c, positionals[0]))
      io.stdout(
        names.length
          ? `asked every gateway serving this database to refetch the JWKS of ${names.map((n) => `'${n}'`).join(', ')}`
          : 'no providers; add one with: pg-authorize providers add --jwks-url URL',
      )
      return 0
    }
    throw new PgAuthorizeError('ERR_INVALID_ARGUMENT', `unknown subcommand 'providers ${sub}' (add, list, remove, refresh)`)
  },
}
