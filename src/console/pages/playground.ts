/**
 * The playground's form: the statement and two identities (A, and an optional B), each a JWT, hand-written
 * claims or no identity, with a role among those set up. `static/playground.js` runs it.
 *
 * @module
 */
import { html } from 'hono/html'
import type { Html, PageContext } from './shell.js'

function roleOptions(roles: readonly string[]): Html[] {
  const list = roles.length ? roles : ['authenticated']
  return list.map((r) => html`<option${r === 'authenticated' ? html` selected` : ''}>${r}</option>`)
}

function identityFieldset(side: 'a' | 'b', ctx: PageContext): Html {
  const label = side === 'a' ? 'Identity A' : 'Identity B'
  const kinds = [
    ...(side === 'b' ? [['off', 'Off']] : []),
    ['token', 'JWT'],
    ['claims', 'Claims'],
    ['none', 'No identity'],
  ]
  const checked = side === 'a' ? 'token' : 'off'
  const example = side === 'a' ? '{\n  "sub": "user-id",\n  "tenant_id": "tenant-id"\n}' : '{\n  "sub": "another-user-id"\n}'
  return html`<fieldset class="identity" data-side="${side}">
  <legend>${label}</legend>
  <div class="kinds" role="radiogroup" aria-label="${label}: kind">
    ${kinds.map(([v, t]) => html`<label class="radio"><input type="radio" name="kind-${side}" value="${v}"${v === checked ? html` checked` : ''}> ${t}</label>
    `)}
  </div>
  <label class="field" data-for="role">Role
    <select name="role-${side}" id="role-${side}">${roleOptions(ctx.roles)}</select></label>
  <label class="field" data-for="token">JWT (verified through the providers)
    <textarea name="token-${side}" id="token-${side}" class="mono" rows="4" spellcheck="false" autocomplete="off" placeholder="eyJhbGciOi…"></textarea></label>
  <label class="field" data-for="claims">Claims (JSON, used as if verified)
    <textarea name="claims-${side}" id="claims-${side}" class="mono" rows="4" spellcheck="false">${example}</textarea></label>
</fieldset>`
}

export function playgroundPage(ctx: PageContext): Html {
  return html`
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
<div id="play-results" class="side-by-side" aria-live="polite"></div>`
}
