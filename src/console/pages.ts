/**
 * The console's HTML: one shell (header, navigation, log-out form) around each page's static skeleton.
 * The data is filled in by `/console/static/console.js` from the JSON API; nothing here embeds data a
 * page could not otherwise fetch, and every interpolated value is escaped.
 *
 * @module
 */
import { ALGORITHMS } from '../keys/algorithms.js'

export const BASE = '/console'

export const PAGES = [
  { path: 'providers', title: 'Providers' },
  { path: 'roles', title: 'Roles and set-up' },
  { path: 'inspect', title: 'Token inspector' },
  { path: 'playground', title: 'Playground' },
  { path: 'policies', title: 'Policies' },
] as const

export type PageName = (typeof PAGES)[number]['path']

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

export interface PageContext {
  csrf: string
  /** The restricted roles set up in the served database. */
  roles: readonly string[]
  database: string
}

const DEFAULT_ALGS = new Set(['RS256', 'ES256', 'EdDSA'])

function roleOptions(roles: readonly string[]): string {
  const list = roles.length ? roles : ['authenticated']
  return list.map((r) => `<option${r === 'authenticated' ? ' selected' : ''}>${esc(r)}</option>`).join('')
}

function identityFieldset(side: 'a' | 'b', ctx: PageContext): string {
  const label = side === 'a' ? 'Identity A' : 'Identity B'
  const kinds = [
    ...(side === 'b' ? [['off', 'Off']] : []),
    ['token', 'JWT'],
    ['claims', 'Claims'],
    ['none', 'No identity'],
  ]
  const checked = side === 'a' ? 'token' : 'off'
  const example = side === 'a' ? '{\n  "sub": "user-id",\n  "tenant_id": "tenant-id"\n}' : '{\n  "sub": "another-user-id"\n}'
  return `<fieldset class="identity" data-side="${side}">
  <legend>${label}</legend>
  <div class="kinds" role="radiogroup" aria-label="${label}: kind">
    ${kinds.map(([v, t]) => `<label class="radio"><input type="radio" name="kind-${side}" value="${v}"${v === checked ? ' checked' : ''}> ${t}</label>`).join('\n    ')}
  </div>
  <label class="field" data-for="role">Role
    <select name="role-${side}" id="role-${side}">${roleOptions(ctx.roles)}</select></label>
  <label class="field" data-for="token">JWT (verified through the providers)
    <textarea name="token-${side}" id="token-${side}" class="mono" rows="4" spellcheck="false" autocomplete="off" placeholder="eyJhbGciOi…"></textarea></label>
  <label class="field" data-for="claims">Claims (JSON, used as if verified)
    <textarea name="claims-${side}" id="claims-${side}" class="mono" rows="4" spellcheck="false">${esc(example)}</textarea></label>
</fieldset>`
}

const BODIES: Record<PageName, (ctx: PageContext) => string> = {
  providers: () => `
<h1>Providers</h1>
<p class="lead">Identity providers whose JWTs the gateway accepts. Each is a JWKS URL (or an issuer whose OIDC
discovery document names it) with an optional issuer and audience, an algorithm allow-list, the roles its tokens
may run as and, optionally, the claim that names the role.</p>
<section aria-labelledby="h-list">
  <div class="section-head"><h2 id="h-list">Registered providers</h2>
    <button type="button" id="refresh-all">Refresh all JWKS</button></div>
  <div id="providers" aria-live="polite"><p class="muted">Loading…</p></div>
</section>
<section aria-labelledby="h-add">
  <h2 id="h-add">Add or edit a provider</h2>
  <form id="add-provider" class="grid-form">
    <label class="wide">JWKS URL <span class="opt">or leave empty and give the issuer: OIDC discovery</span><input name="jwksUrl" id="jwksUrl" type="url" placeholder="https://example.com/.well-known/jwks.json"></label>
    <label>Name <span class="opt">optional</span><input name="name" id="provider-name" placeholder="from the URL's host"></label>
    <label>Issuer (<code>iss</code>) <span class="opt">optional; exact, trailing slash included</span><input name="issuer" id="issuer"></label>
    <label>Audience (<code>aud</code>) <span class="opt">optional, comma-separated</span><input name="audience" id="audience"></label>
    <label class="check"><input type="checkbox" name="strictAudience" id="strictAudience"> Refuse tokens with an <code>aud</code> when no audience is set</label>
    <label>Authorized parties (<code>azp</code>) <span class="opt">optional, comma-separated</span><input name="authorizedParties" id="authorizedParties"></label>
    <label>Roles <span class="opt">comma-separated</span><input name="roles" id="roles" value="authenticated"></label>
    <label>Role claim <span class="opt">optional, e.g. <code>$.realm_access.roles[*]</code></span><input name="roleClaim" id="roleClaim" class="mono" placeholder="the connection string's role"></label>
    <label>Default role <span class="opt">optional: when the role claim is missing</span><input name="defaultRole" id="defaultRole"></label>
    <label class="check"><input type="checkbox" name="replace" id="replace"> Replace the provider of this name (edit)</label>
    <fieldset class="wide algs"><legend>Algorithms</legend>
      ${ALGORITHMS.map((a) => `<label class="check"><input type="checkbox" name="algorithms" value="${a}"${DEFAULT_ALGS.has(a) ? ' checked' : ''}> ${a}</label>`).join('\n      ')}
    </fieldset>
    <div class="wide"><button type="submit" class="primary">Save provider</button></div>
  </form>
  <div id="add-result" aria-live="polite"></div>
</section>`,

  roles: () => `
<h1>Roles and set-up</h1>
<p class="lead">The restricted roles the gateway logs in as, what they may touch, and the <code>auth</code> schema
your policies call.</p>
<section aria-labelledby="h-auth">
  <div class="section-head"><h2 id="h-auth">The <code>auth</code> schema</h2>
    <button type="button" id="run-setup" class="primary">Run set-up</button></div>
  <div id="auth-status" aria-live="polite"><p class="muted">Loading…</p></div>
  <div id="setup-result" aria-live="polite"></div>
</section>
<section aria-labelledby="h-roles"><h2 id="h-roles">Restricted roles</h2><div id="roles-table"></div></section>
<section aria-labelledby="h-grants"><h2 id="h-grants">Grants per schema</h2><div id="grants"></div></section>
<section aria-labelledby="h-conn"><h2 id="h-conn">Connection strings</h2><div id="connection"></div></section>`,

  inspect: () => `
<h1>Token inspector</h1>
<p class="lead">Paste a JWT to see its header and claims, and whether the gateway would accept it. The token is
sent in a POST body only and is never stored or logged.</p>
<form id="inspect-form">
  <label for="inspect-token">JWT</label>
  <textarea id="inspect-token" name="token" class="mono" rows="5" spellcheck="false" autocomplete="off" placeholder="eyJhbGciOi…"></textarea>
  <div class="actions"><button type="submit" class="primary">Inspect</button></div>
</form>
<div id="inspect-result" aria-live="polite"></div>`,

  playground: (ctx) => `
<h1>Playground</h1>
<p class="lead">Run SQL as an identity and see what it sees. The statement runs logged in as the restricted
role, with the claims sealed exactly as the gateway does, in a transaction that is always rolled back.</p>
<form id="play-form">
  <label for="sql">SQL <span class="opt">one statement</span></label>
  <textarea id="sql" name="sql" class="mono" rows="4" spellcheck="false">select * from users</textarea>
  <div class="identities">
    ${identityFieldset('a', ctx)}
    ${identityFieldset('b', ctx)}
  </div>
  <div class="actions"><button type="submit" class="primary" id="run">Run</button></div>
</form>
<div id="play-results" class="side-by-side" aria-live="polite"></div>`,

  policies: () => `
<h1>Policies</h1>
<p class="lead">Row-level security per table: which commands each role may run under which condition, and what
looks wrong.</p>
<div id="policies" aria-live="polite"><p class="muted">Loading…</p></div>`,
}

/** A console page. */
export function page(name: PageName, ctx: PageContext): string {
  const title = PAGES.find((p) => p.path === name)!.title
  const nav = PAGES.map(
    (p) => `<a href="${BASE}/${p.path}"${p.path === name ? ' aria-current="page"' : ''}>${p.title}</a>`,
  ).join('')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${esc(ctx.csrf)}">
<title>${title} · pg-authorize console</title>
<link rel="stylesheet" href="${BASE}/static/console.css">
<script type="module" src="${BASE}/static/console.js"></script>
</head>
<body data-page="${name}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <div class="brand">pg-authorize <span>console</span></div>
  <nav aria-label="Console pages">${nav}</nav>
  <div class="who"><span class="db" title="database">${esc(ctx.database)}</span>
    <form method="post" action="${BASE}/logout"><input type="hidden" name="csrf" value="${esc(ctx.csrf)}"><button type="submit" class="link">Log out</button></form></div>
</header>
<main id="main">${BODIES[name](ctx)}
</main>
</body>
</html>`
}

/** The login page's own style, inline (allowed by its hash in the CSP): before login, no asset is served. */
export const LOGIN_CSS = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d2433;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #d9dde5;border-radius:10px;padding:2rem 2.25rem;width:min(26rem,90vw);box-shadow:0 2px 10px rgba(20,30,60,.06)}
h1{font-size:1.35rem;margin:0 0 .25rem}p{color:#4a5568;margin:.25rem 0 1.25rem}label{display:block;font-weight:600;margin-bottom:.35rem}
input{width:100%;box-sizing:border-box;font:14px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:.6rem .7rem;border:1px solid #aab2c0;border-radius:6px}
input:focus,button:focus{outline:3px solid #8ab4f8;outline-offset:1px}
button{margin-top:1rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#1f4fd1;color:#fff;font-weight:600;font-size:15px;cursor:pointer}
button:hover{background:#173fa8}.error{background:#fdecec;color:#8a1c1c;border:1px solid #f3b7b7;padding:.55rem .75rem;border-radius:6px}
.brand{color:#1f4fd1;font-weight:700;letter-spacing:.01em}`

/** The login form, answered with 401 to anyone without a session. */
export function loginPage(error?: string, code?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · pg-authorize console</title>
<style>${LOGIN_CSS}</style>
</head>
<body>
<main>
<div class="brand">pg-authorize</div>
<h1>Console</h1>
<p>Enter the admin token printed when the gateway started (or set in its configuration).</p>
${error ? `<p class="error" role="alert"${code ? ` data-code="${esc(code)}"` : ''}>${esc(error)}</p>` : ''}
<form method="post" action="${BASE}/login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>`
}
