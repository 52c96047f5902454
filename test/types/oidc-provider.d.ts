/** The part of oidc-provider (a devDependency, shipped without types) that test/e2e/oidc-provider.test.ts uses. */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  interface Configuration {
    clients?: Record<string, unknown>[]
    jwks?: { keys: Record<string, unknown>[] }
    features?: Record<string, unknown>
    ttl?: Record<string, number>
    extraTokenClaims?: (ctx: unknown, token: { clientId?: string }) => Record<string, unknown> | Promise<Record<string, unknown>>
  }
  export default class Provider {
    constructor(issuer: string, configuration?: Configuration)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
  }
}
