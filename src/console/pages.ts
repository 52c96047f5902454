/**
 * The console's pages: each one's path, title and skeleton (under ./pages/), in the frame of
 * ./pages/shell.ts. The data is filled in by the page's own script, `/console/static/<path>.js`, from the
 * JSON API; nothing here embeds data a page could not otherwise fetch, and every interpolated value is
 * escaped by `hono/html`.
 *
 * @module
 */
import { inspectPage } from './pages/inspect.js'
import { playgroundPage } from './pages/playground.js'
import { policiesPage } from './pages/policies.js'
import { providersPage } from './pages/providers.js'
import { rolesPage } from './pages/roles.js'
import { shell, type Html, type PageContext } from './pages/shell.js'

export { BASE, type Html, type PageContext } from './pages/shell.js'
export { LOGIN_CSS, loginPage } from './pages/login.js'

/** Every page, in the navigation's order. Adding one: a skeleton under ./pages/, a script under ./static/, a line here. */
export const PAGES = [
  { path: 'providers', title: 'Providers', body: providersPage },
  { path: 'roles', title: 'Roles and set-up', body: rolesPage },
  { path: 'inspect', title: 'Token inspector', body: inspectPage },
  { path: 'playground', title: 'Playground', body: playgroundPage },
  { path: 'policies', title: 'Policies', body: policiesPage },
] as const satisfies ReadonlyArray<{ path: string; title: string; body: (ctx: PageContext) => Html }>

export type PageName = (typeof PAGES)[number]['path']

/** A console page. */
export function page(name: PageName, ctx: PageContext): Html {
  const p = PAGES.find((x) => x.path === name)!
  return shell(p, PAGES, ctx, p.body(ctx))
}
