/**
 * The "Roles and set-up" page's skeleton, filled in by `static/roles.js` from `GET /console/api/roles`.
 *
 * @module
 */
import { html } from 'hono/html'
import type { Html } from './shell.js'

export function rolesPage(): Html {
  return html`
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
<section aria-labelledby="h-conn"><h2 id="h-conn">Connection strings</h2><div id="connection"></div></section>`
}
