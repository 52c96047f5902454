/**
 * The Providers page's skeleton: the list (filled in by `static/providers.js`) and the form that adds a
 * provider. A new provider setting is one more `<label>` in the form here, one more field in the body
 * `static/providers.js` sends, and one more column there if the list should show it.
 *
 * @module
 */
import { html } from 'hono/html'
import { ALGORITHMS } from '../../keys/algorithms.js'
import type { Html } from './shell.js'

/** The algorithms ticked by default in the form. */
const DEFAULT_ALGS: ReadonlySet<string> = new Set(['RS256', 'ES256', 'EdDSA'])

export function providersPage(): Html {
  return html`
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
      ${ALGORITHMS.map((a) => html`<label class="check"><input type="checkbox" name="algorithms" value="${a}"${DEFAULT_ALGS.has(a) ? html` checked` : ''}> ${a}</label>
      `)}
    </fieldset>
    <div class="wide"><button type="submit" class="primary">Save provider</button></div>
  </form>
  <div id="add-result" aria-live="polite"></div>
</section>`
}
