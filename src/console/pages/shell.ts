/**
 * The frame every console page shares: head, navigation, database name and the log-out form, around the
 * page's static skeleton. Rendered with `hono/html`'s `html` template, which escapes every interpolated
 * value (text and attributes alike); only nested `html` templates are inserted as they are.
 *
 * @module
 */
import { html } from 'hono/html'

/** Where the console is mounted: its links, its cookie's `Path` and its redirects all use it. */
export const BASE = '/console'

/** An escaped HTML fragment (what `html` returns). */
export type Html = ReturnType<typeof html>

/** What a page may show before its script has fetched anything. */
export interface PageContext {
  csrf: string
  /** The restricted roles set up in the served database. */
  roles: readonly string[]
  database: string
}

export interface PageInfo {
  /** The page's path under `BASE`, and the name of its script under `BASE/static/`. */
  path: string
  /** Its title, in the navigation and the `<title>`. */
  title: string
}

/** A console page: the frame around `body`, loading the page's own module (no inline script: the CSP forbids it). */
export function shell(page: PageInfo, pages: readonly PageInfo[], ctx: PageContext, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrf}">
<title>${page.title} · pg-authorize console</title>
<link rel="stylesheet" href="${BASE}/static/console.css">
<script type="module" src="${BASE}/static/${page.path}.js"></script>
</head>
<body data-page="${page.path}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <div class="brand">pg-authorize <span>console</span></div>
  <nav aria-label="Console pages">${pages.map(
    (p) => html`<a href="${BASE}/${p.path}"${p.path === page.path ? html` aria-current="page"` : ''}>${p.title}</a>`,
  )}</nav>
  <div class="who"><span class="db" title="database">${ctx.database}</span>
    <form method="post" action="${BASE}/logout"><input type="hidden" name="csrf" value="${ctx.csrf}"><button type="submit" class="link">Log out</button></form></div>
</header>
<main id="main">${body}
</main>
</body>
</html>`
}
