/**
 * The token inspector's skeleton; `static/inspect.js` posts the token and shows the verdict.
 *
 * @module
 */
import { html } from 'hono/html'
import type { Html } from './shell.js'

export function inspectPage(): Html {
  return html`
<h1>Token inspector</h1>
<p class="lead">Paste a JWT to see its header and claims, and whether the gateway would accept it. The token is
sent in a POST body only and is never stored or logged.</p>
<form id="inspect-form">
  <label for="inspect-token">JWT</label>
  <textarea id="inspect-token" name="token" class="mono" rows="5" spellcheck="false" autocomplete="off" placeholder="eyJhbGciOi…"></textarea>
  <div class="actions"><button type="submit" class="primary">Inspect</button></div>
</form>
<div id="inspect-result" aria-live="polite"></div>`
}
