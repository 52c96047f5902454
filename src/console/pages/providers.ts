/**
 * The Providers page's skeleton: the list (filled in by `static/providers.js`) and the form that adds a
 * provider. A new provider setting is one more `<label>` in the form here, one more field in the body
 * `static/providers.js` sends, and one more column there if the list should show it.
 *
 * @module
 */
import { html } from 'hono/html'
import { PROVIDER_ALGORITHMS } from '../../database/providers.js'
import type { Html } from './shell.js'

/** The algorithms ticked by default in the form. */
const DEFAULT_ALGS: ReadonlySet<string> = new Set(['RS256', 'ES256', 'EdDSA'])

export function providersPage(): Html {
  return html`
<h1>Providers</h1>
<p class="lead">Identity providers whose JWTs the gateway accepts. Each is a JWKS URL with an optional issuer and
audience, an algorithm allow-list and the roles its tokens may run as.</p>
<section aria-labelledby="h-list">
  <div class="section-head"><h2 id="h-list">Registered providers</h2>
    <button type="button" id="refresh-all">Refresh all JWKS</button></div>
  <div id="providers" aria-live="polite"><p class="muted">Loading…</p></div>
</section>
<section aria-labelledby="h-add">
  <h2 id="h-add">Add a provider</h2>
  <form id="add-provider" class="grid-form">
    <label class="wide">JWKS URL <input name="jwksUrl" id="jwksUrl" type="url" required placeholder="https://example.com/.well-known/jwks.json"></label>
    <label>Name <span class="opt">optional</span><input name="name" id="provider-name" placeholder="from the URL's host"></label>
    <label>Issuer (<code>iss</code>) <span class="opt">optional</span><input name="issuer" id="issuer"></label>
    <label>Audience (<code>aud</code>) <span class="opt">optional, comma-separated</span><input name="audience" id="audience"></label>
    <label>Roles <span class="opt">comma-separated</span><input name="roles" id="roles" value="authenticated"></label>
    <fieldset class="wide algs"><legend>Algorithms</legend>
      ${PROVIDER_ALGORITHMS.map((a) => html`<label class="check"><input type="checkbox" name="algorithms" value="${a}"${DEFAULT_ALGS.has(a) ? html` checked` : ''}> ${a}</label>
      `)}
    </fieldset>
    <div class="wide"><button type="submit" class="primary">Add provider</button></div>
  </form>
  <div id="add-result" aria-live="polite"></div>
</section>`
}
