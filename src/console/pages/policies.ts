/**
 * The Policies page's skeleton, filled in by `static/policies.js` from `GET /console/api/policies`.
 *
 * @module
 */
import { html } from 'hono/html'
import type { Html } from './shell.js'

export function policiesPage(): Html {
  return html`
<h1>Policies</h1>
<p class="lead">Row-level security per table: which commands each role may run under which condition, and what
looks wrong.</p>
<div id="policies" aria-live="polite"><p class="muted">Loading…</p></div>`
}
