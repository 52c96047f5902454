/**
 * The console as a Web-standard `(Request) => Promise<Response | undefined>` handler, for a server that
 * routes by hand (the gateway, until its one router mounts {@link createConsoleApp} itself): it answers
 * under `/console` and returns `undefined` for every other path.
 *
 * @example
 * const handler = createConsoleHandler({ databases, ownerUrl, adminToken, endpoints: () => ({ httpUrl, host, pgPort }) })
 * const res = await handler(request) // undefined when the path is not under /console
 *
 * @module
 */
import { Hono } from 'hono'
import { createConsoleApp, type ConsoleOptions } from './app.js'
import { BASE } from './pages.js'

export type { ConsoleOptions } from './app.js'

export interface ConsoleHandler {
  (req: Request): Promise<Response | undefined>
  /** Stops the console's verifier timers. */
  close(): void
}

export function createConsoleHandler(options: ConsoleOptions): ConsoleHandler {
  const consoleApp = createConsoleApp(options)
  const root = new Hono().route(BASE, consoleApp)
  const handler = (async (req: Request): Promise<Response | undefined> => {
    const { pathname } = new URL(req.url)
    if (pathname !== BASE && !pathname.startsWith(BASE + '/')) return undefined
    return root.fetch(req)
  }) as ConsoleHandler
  handler.close = () => consoleApp.close()
  return handler
}
