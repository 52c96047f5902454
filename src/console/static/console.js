// pg-authorize console: the behaviour of every page. A plain ES module: no build step, no dependency,
// no inline script (the CSP forbids it). Everything that comes from the server is rendered as text
// (textContent), never parsed as HTML.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? ''
const page = document.body.dataset.page

/** Creates an element: h('td', { class: 'mono' }, 'text', childNode). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : String(c))
  }
  return el
}

/** Replaces an element's content, skipping empty parts. */
function set(el, ...nodes) {
  el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false && n !== ''))
}

/** Calls the console API; throws an Error carrying the server's code, message and hint. */
async function api(method, path, body) {
  const res = await fetch(`/console/api${path}`, {
    method,
    credentials: 'same-origin',
    headers: { 'x-csrf-token': csrf, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (res.status === 401) {
    location.assign('/console/')
    throw new Error('logged out')
  }
  const data = await res.json().catch(() => ({}))
  if (!res.ok) {
    const e = new Error(data.error?.message ?? `HTTP ${res.status}`)
    e.code = data.error?.code ?? `HTTP ${res.status}`
    e.hint = data.error?.hint
    throw e
  }
  return data
}

function alertBox(kind, title, ...body) {
  return h('div', { class: `alert ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('strong', {}, title), ...body)
}

function errorBox(err) {
  return alertBox('error', err.code ? `${err.code}` : 'Error', ' ', err.message, err.hint ? h('div', { class: 'hint' }, err.hint) : null)
}

/** A table from header labels and rows of cells (strings or nodes). */
function table(headers, rows, attrs = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      attrs,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))))),
    ),
  )
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text)
  } catch {
    // Older browsers or an insecure context: select and copy.
    const ta = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' })
    ta.value = text
    document.body.append(ta)
    ta.select()
    document.execCommand('copy')
    ta.remove()
  }
  const old = button.textContent
  button.textContent = 'Copied'
  setTimeout(() => (button.textContent = old), 1200)
}

function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'small copy', 'aria-label': `${label} to the clipboard` }, 'Copy')
  b.addEventListener('click', () => copy(text, b))
  return b
}

/** A monospace block with a copy button. */
function codeBlock(text, label) {
  return h('div', { class: 'code' }, h('pre', { class: 'mono' }, text), copyButton(text, label))
}

const json = (v) => JSON.stringify(v, null, 2)
const badge = (text, kind = '') => h('span', { class: `badge ${kind}` }, text)
const yes = (b) => (b ? badge('yes', 'ok') : badge('no', 'muted'))

function busy(button, on) {
  button.disabled = on
  button.setAttribute('aria-busy', on ? 'true' : 'false')
}

function when(seconds) {
  if (typeof seconds !== 'number') return ''
  const d = new Date(seconds * 1000)
  const delta = Math.round(seconds - Date.now() / 1000)
  const rel = Math.abs(delta) < 90 ? `${Math.abs(delta)} s` : Math.abs(delta) < 5400 ? `${Math.round(Math.abs(delta) / 60)} min` : `${Math.round(Math.abs(delta) / 3600)} h`
  return `${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} (${delta >= 0 ? 'in ' + rel : rel + ' ago'})`
}

// ---------------------------------------------------------------- Providers

function keysCell(p) {
  const cell = h('td', { class: 'keys' })
  if (p.keys.length) {
    cell.append(h('ul', { class: 'chips' }, p.keys.map((k) => h('li', { class: 'mono' }, `${k.kid ?? '(no kid)'} · ${k.alg ?? 'any alg'} · ${k.kty}${k.crv ? ' ' + k.crv : ''}`))))
  }
  if (p.keysError) cell.append(h('div', { class: 'bad' }, h('span', { class: 'mono' }, p.keysError.code), ' ', p.keysError.message))
  return cell
}

function keysTable(keys) {
  return table(['kid', 'alg', 'kty', 'crv', 'use'], keys.map((k) => [
    h('td', { class: 'mono kid' }, k.kid ?? '(none)'), h('td', { class: 'mono' }, k.alg ?? 'any'), k.kty, k.crv ?? '', k.use ?? '',
  ]), { class: 'keys-table' })
}

function renderProviders(list) {
  const box = document.getElementById('providers')
  if (!list.length) {
    set(box, h('p', { class: 'empty' }, 'No provider yet: every token is refused until one is registered. Add one below.'))
    return
  }
  set(box, table(['Name', 'JWKS', 'Issuer / audience', 'Algorithms', 'Roles', 'Keys', ''], list.map((p) => [
    h('td', { class: 'name' }, h('strong', {}, p.name)),
    h('td', { class: 'mono' }, h('div', { class: 'url' }, p.inline ? '(inline keys)' : p.jwksUrl), p.discovery ? h('div', { class: 'muted' }, 'discovered from the issuer') : null),
    h('td', {}, p.issuer ? h('div', {}, 'iss ', h('span', { class: 'mono' }, p.issuer)) : h('span', { class: 'muted' }, 'any issuer'),
      p.audience.length ? h('div', {}, 'aud ', h('span', { class: 'mono' }, p.audience.join(', '))) : h('div', { class: 'muted' }, p.strictAudience ? 'no audience (strict)' : 'any audience'),
      p.authorizedParties.length ? h('div', {}, 'azp ', h('span', { class: 'mono' }, p.authorizedParties.join(', '))) : null),
    h('td', { class: 'mono' }, p.algorithms.join(', ')),
    h('td', {}, p.roles.map((r) => badge(r)),
      p.roleClaim ? h('div', { class: 'mono' }, `from ${p.roleClaim}`) : null,
      p.defaultRole ? h('div', {}, 'default ', h('span', { class: 'mono' }, p.defaultRole)) : null),
    keysCell(p),
    h('td', { class: 'row-actions' },
      h('button', { type: 'button', class: 'small', onclick: () => editOne(p) }, 'Edit'),
      h('button', { type: 'button', class: 'small', onclick: (e) => refreshOne(p.name, e.currentTarget) }, 'Refresh'),
      h('button', { type: 'button', class: 'small danger', onclick: (e) => removeOne(p.name, e.currentTarget) }, 'Remove')),
  ]), { id: 'providers-table' }))
}

async function loadProviders() {
  const box = document.getElementById('providers')
  try {
    renderProviders((await api('GET', '/providers')).providers)
  } catch (err) {
    set(box, errorBox(err))
  }
}

async function refreshOne(name, button) {
  busy(button, true)
  try {
    await api('POST', `/providers/${encodeURIComponent(name)}/refresh`)
    await loadProviders()
  } catch (err) {
    document.getElementById('providers').prepend(errorBox(err))
  } finally {
    busy(button, false)
  }
}

async function removeOne(name, button) {
  if (!confirm(`Remove the provider "${name}"? Its tokens will be refused at once.`)) return
  busy(button, true)
  try {
    await api('DELETE', `/providers/${encodeURIComponent(name)}`)
    // An "Added provider" note left from before would now describe something that is gone.
    set(document.getElementById('add-result'))
    await loadProviders()
  } catch (err) {
    document.getElementById('providers').prepend(errorBox(err))
    busy(button, false)
  }
}

/** Fills the form with a provider's settings, to save them back with "replace". */
function editOne(p) {
  const form = document.getElementById('add-provider')
  const set = (name, value) => { form.elements[name].value = value }
  set('jwksUrl', p.discovery || p.inline ? '' : p.jwksUrl ?? '')
  set('name', p.name)
  set('issuer', p.issuer ?? '')
  set('audience', p.audience.join(', '))
  set('authorizedParties', p.authorizedParties.join(', '))
  set('roles', p.roles.join(', '))
  set('roleClaim', p.roleClaim ?? '')
  set('defaultRole', p.defaultRole ?? '')
  form.elements.strictAudience.checked = p.strictAudience
  form.elements.replace.checked = true
  for (const box of form.querySelectorAll('input[name=algorithms]')) box.checked = p.algorithms.includes(box.value)
  form.scrollIntoView()
}

function initProviders() {
  loadProviders()
  const form = document.getElementById('add-provider')
  const out = document.getElementById('add-result')
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const f = new FormData(form)
    const body = {
      jwksUrl: f.get('jwksUrl'),
      name: f.get('name'),
      issuer: f.get('issuer'),
      audience: f.get('audience'),
      roles: f.get('roles'),
      algorithms: f.getAll('algorithms'),
      roleClaim: f.get('roleClaim'),
      defaultRole: f.get('defaultRole'),
      authorizedParties: f.get('authorizedParties'),
      strictAudience: f.get('strictAudience') === 'on',
      replace: f.get('replace') === 'on',
    }
    const button = form.querySelector('button[type=submit]')
    busy(button, true)
    set(out, h('p', { class: 'muted' }, body.jwksUrl ? 'Adding and fetching the JWKS…' : 'Discovering the issuer and fetching its JWKS…'))
    try {
      const { provider: p } = await api('POST', '/providers', body)
      set(out,
        p.keys.length
          ? alertBox('ok', `Added provider "${p.name}".`, ` ${p.keys.length} key${p.keys.length === 1 ? '' : 's'} found:`)
          : alertBox('warn', `Added provider "${p.name}", but no key was found.`),
        p.keys.length ? keysTable(p.keys) : null,
        p.keysError ? h('p', { class: 'bad', 'data-testid': 'keys-error' }, h('span', { class: 'mono' }, p.keysError.code), ' ', p.keysError.message) : null,
      )
      form.reset()
      await loadProviders()
    } catch (err) {
      set(out, errorBox(err))
    } finally {
      busy(button, false)
    }
  })
  document.getElementById('refresh-all').addEventListener('click', async (e) => {
    const button = e.currentTarget
    busy(button, true)
    try {
      renderProviders((await api('POST', '/providers/refresh')).providers)
    } catch (err) {
      set(document.getElementById('providers'), errorBox(err))
    } finally {
      busy(button, false)
    }
  })
}

// ---------------------------------------------------------------- Roles and set-up

function renderRoles(d) {
  set(document.getElementById('auth-status'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Database'), h('dd', { class: 'mono' }, d.database),
      h('dt', {}, 'auth schema'), h('dd', { id: 'auth-installed' }, d.auth.installed
        ? [badge('installed', 'ok'), ` version ${d.auth.version}`, d.auth.version < d.auth.latest ? h('span', { class: 'bad' }, ` (version ${d.auth.latest} is available: run set-up)`) : ' (latest)']
        : [badge('not installed', 'bad'), ' run set-up to install it'])),
  )
  set(document.getElementById('roles-table'), table(['Role', 'Exists', 'Can log in', 'Bypasses RLS', 'Superuser'], d.roles.map((r) => [
    h('td', { class: 'mono' }, r.name), yes(r.exists), yes(r.canLogin),
    r.bypassRls ? badge('yes', 'bad') : badge('no', 'ok'), r.superuser ? badge('yes', 'bad') : badge('no', 'ok'),
  ])))
  const roles = d.roles.filter((r) => r.exists).map((r) => r.name)
  set(document.getElementById('grants'), ...d.schemas.map((s) => h('div', { class: 'schema' },
    h('h3', {}, h('span', { class: 'mono' }, s.schema), s.schema === 'pgauthorize' ? h('span', { class: 'muted' }, ' (private: the sealing key and role credentials)') : null),
    h('p', { class: 'usage' }, 'Schema USAGE: ', roles.map((r) => [h('span', { class: 'mono' }, r), ' ', yes(s.usage[r]), ' '])),
    table(['Table', 'RLS', ...roles], s.tables.map((t) => [
      h('td', { class: 'mono' }, t.name, t.kind !== 'table' ? h('span', { class: 'muted' }, ` ${t.kind}`) : null),
      // RLS off matters only where a restricted role has a privilege.
      t.kind === 'view' ? h('span', { class: 'muted' }, 'n/a') : t.rls ? badge(t.forceRls ? 'on, forced' : 'on', 'ok')
        : badge('off', roles.some((r) => (t.privileges[r] ?? []).length) ? 'bad' : 'muted'),
      ...roles.map((r) => h('td', { class: 'privs' }, (t.privileges[r] ?? []).length ? t.privileges[r].join(', ') : h('span', { class: 'muted' }, 'none'))),
    ]), { class: 'grants-table', dataset: { schema: s.schema } }),
  )))
  const c = d.connection
  set(document.getElementById('connection'),
    h('div', { class: 'conn' },
      h('h3', {}, 'Owner ', h('span', { class: 'muted' }, '(migrations, full rights; the password is never shown)')),
      codeBlock(c.owner, 'Owner connection string'),
      h('h3', {}, h('span', { class: 'mono' }, 'authenticated'), ' ', h('span', { class: 'muted' }, '(your app; the JWT is the password, RLS applies)')),
      codeBlock(c.authenticated, 'authenticated connection string'),
      h('h3', {}, 'SQL over HTTP endpoint'),
      codeBlock(c.sqlEndpoint, 'SQL endpoint')),
    h('div', { class: 'snippets' },
      h('h3', {}, h('span', { class: 'mono' }, '@neondatabase/serverless')), codeBlock(c.snippets.neon, 'Neon snippet'),
      h('h3', {}, 'drizzle-orm'), codeBlock(c.snippets.drizzle, 'drizzle snippet'),
      h('h3', {}, h('span', { class: 'mono' }, 'pg'), ' (node-postgres, wire protocol)'), codeBlock(c.snippets.pg, 'pg snippet'),
      h('h3', {}, h('span', { class: 'mono' }, 'psql')), codeBlock(c.snippets.psql, 'psql command')),
  )
}

async function loadRoles() {
  try {
    renderRoles(await api('GET', '/roles'))
  } catch (err) {
    set(document.getElementById('auth-status'), errorBox(err))
  }
}

function initRoles() {
  loadRoles()
  document.getElementById('run-setup').addEventListener('click', async (e) => {
    const button = e.currentTarget
    const out = document.getElementById('setup-result')
    busy(button, true)
    set(out, h('p', { class: 'muted' }, 'Running set-up…'))
    try {
      const { setup: s } = await api('POST', '/setup')
      set(out, alertBox('ok', 'Set-up done.', ` auth schema version ${s.version}.`,
        h('ul', {},
          h('li', {}, s.applied.length ? `Migrations applied: ${s.applied.join(', ')}` : 'Migrations: already up to date'),
          h('li', {}, s.rolesCreated.length ? `Roles created: ${s.rolesCreated.join(', ')}` : `Roles: ${s.roles.join(', ')} (already there)`),
          h('li', {}, 'Grants on the tables and sequences of public: (re)applied'))))
      out.firstChild.id = 'setup-done'
      await loadRoles()
    } catch (err) {
      set(out, errorBox(err))
    } finally {
      busy(button, false)
    }
  })
}

// ---------------------------------------------------------------- Token inspector

function claimTimes(claims) {
  const rows = ['iat', 'nbf', 'exp'].filter((k) => typeof claims?.[k] === 'number').map((k) => [h('td', { class: 'mono' }, k), when(claims[k])])
  return rows.length ? table(['Claim', 'Time'], rows, { class: 'times' }) : null
}

function initInspect() {
  const form = document.getElementById('inspect-form')
  const out = document.getElementById('inspect-result')
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const button = form.querySelector('button[type=submit]')
    busy(button, true)
    try {
      const r = await api('POST', '/inspect', { token: document.getElementById('inspect-token').value })
      const verdict = r.verified
        ? alertBox('ok', 'Verified.', ' Signed by provider ', h('strong', { class: 'mono' }, r.provider.name), ' with key ',
          h('strong', { class: 'mono' }, r.key.kid ?? '(no kid)'), ` (${r.key.alg}).`,
          h('div', { class: 'hint' }, `May run as: ${r.provider.roles.join(', ')}.`, r.expiresAt ? ` Expires ${when(r.expiresAt)}.` : ''))
        : alertBox('error', 'Not verified.', ' ', h('span', { class: 'mono code' }, r.error.code), ' ', h('span', { class: 'reason' }, r.error.message))
      verdict.dataset.testid = 'verdict'
      set(out, verdict,
        h('div', { class: 'two-col' },
          h('section', {}, h('h2', {}, 'Header'), r.header ? h('pre', { class: 'mono json' }, json(r.header)) : h('p', { class: 'muted' }, 'not decodable')),
          h('section', {}, h('h2', {}, 'Claims'), r.claims ? [h('pre', { class: 'mono json', id: 'claims-json' }, json(r.claims)), claimTimes(r.claims)] : h('p', { class: 'muted' }, 'not decodable'))))
    } catch (err) {
      set(out, errorBox(err))
    } finally {
      busy(button, false)
    }
  })
}

// ---------------------------------------------------------------- Playground

function syncIdentity(fs) {
  const kind = fs.querySelector('input[type=radio]:checked')?.value
  for (const el of fs.querySelectorAll('label.field')) {
    const f = el.dataset.for
    el.hidden = kind === 'off' || (f === 'token' && kind !== 'token') || (f === 'claims' && kind !== 'claims')
  }
  fs.classList.toggle('off', kind === 'off')
}

function identityOf(side) {
  const form = document.getElementById('play-form')
  const f = new FormData(form)
  const kind = f.get(`kind-${side}`)
  if (kind === 'off') return undefined
  return { kind, role: f.get(`role-${side}`), token: f.get(`token-${side}`), claims: f.get(`claims-${side}`) }
}

function cellText(v) {
  if (v === null) return h('span', { class: 'null' }, 'NULL')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function policiesOf(tables) {
  if (!tables.length) return h('p', { class: 'muted' }, 'No table read (or the statement cannot be explained).')
  return tables.map((t) => h('div', { class: 'touched' },
    h('h4', {}, h('span', { class: 'mono' }, `${t.schema}.${t.table}`), ' ', t.rls ? badge('RLS on', 'ok') : badge('RLS off: every row', 'bad')),
    t.rls && !t.policies.length ? h('p', { class: 'muted' }, 'No policy for this role: no row passes.') : null,
    t.policies.length ? h('ul', { class: 'policies' }, t.policies.map((p) => h('li', { class: p.applies ? 'applies' : 'other' },
      h('span', { class: 'mono pname' }, p.name), ' ', badge(p.command), p.permissive ? '' : badge('restrictive', 'warn'),
      p.applies ? '' : h('span', { class: 'muted' }, ' (other command)'),
      p.using ? h('div', { class: 'expr' }, h('span', { class: 'muted' }, 'using '), h('code', {}, p.using)) : null,
      p.withCheck ? h('div', { class: 'expr' }, h('span', { class: 'muted' }, 'with check '), h('code', {}, p.withCheck)) : null))) : null))
}

function resultCard(side, r) {
  const id = r.identity
  const who = id.kind === 'token' ? `JWT${id.provider ? ` from ${id.provider}` : ''}` : id.kind === 'claims' ? 'hand-written claims' : 'no identity'
  const head = h('header', {},
    h('h3', {}, `Identity ${side.toUpperCase()}`),
    h('div', { class: 'who' }, badge(id.role), ' ', who, id.subject ? [' · sub ', h('span', { class: 'mono' }, id.subject)] : ''))
  let body
  if (r.ok) {
    const n = r.rowCount ?? r.rows.length
    body = [
      h('p', { class: 'summary', 'data-testid': 'summary' }, `${r.command ?? 'OK'} · ${n} row${n === 1 ? '' : 's'}${r.truncated ? ` (first ${r.rows.length} shown)` : ''} · rolled back`),
      r.fields.length ? table(r.fields, r.rows.map((row) => row.map(cellText)), { class: 'rows' }) : null,
    ]
  } else {
    body = alertBox('error', `${r.error.sqlstate}`, r.error.code !== r.error.sqlstate ? [' ', h('span', { class: 'mono' }, r.error.code)] : '', ' ', h('span', { class: 'reason' }, r.error.message),
      r.error.detail ? h('div', { class: 'hint' }, r.error.detail) : null, r.error.hint ? h('div', { class: 'hint' }, `Hint: ${r.error.hint}`) : null)
    body.dataset.testid = 'sql-error'
  }
  return h('article', { class: 'result', dataset: { side } }, head, body,
    h('details', { open: true }, h('summary', {}, 'Policies on the tables touched'), policiesOf(r.tables)))
}

function initPlayground() {
  const form = document.getElementById('play-form')
  for (const fs of form.querySelectorAll('fieldset.identity')) {
    syncIdentity(fs)
    fs.addEventListener('change', () => syncIdentity(fs))
  }
  const out = document.getElementById('play-results')
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const sides = ['a', 'b'].filter((s) => identityOf(s))
    const button = document.getElementById('run')
    busy(button, true)
    try {
      const { results } = await api('POST', '/playground', { sql: document.getElementById('sql').value, identities: sides.map(identityOf) })
      set(out, ...results.map((r, i) => resultCard(sides[i], r)))
    } catch (err) {
      set(out, errorBox(err))
    } finally {
      busy(button, false)
    }
  })
}

// ---------------------------------------------------------------- Policies

function matrixCell(v) {
  if (v === 'no grant') return h('td', { class: 'muted' }, 'no grant')
  if (v === 'no RLS') return h('td', { class: 'bad' }, 'every row (RLS off)')
  if (!v.length) return h('td', { class: 'denied' }, 'denied')
  return h('td', { class: 'mono allowed' }, v.join(', '))
}

// The findings of `pg-authorize lint` (the same engine), each with its rule and its fix.
function findingList(findings) {
  return h('ul', { class: 'findings' }, findings.map((f) => h('li', { class: f.level },
    badge(f.level, f.level === 'error' ? 'bad' : f.level === 'warning' ? 'warn' : ''), ' ', h('span', { class: 'mono' }, f.rule), ' ', f.message,
    h('div', { class: 'expr' }, h('span', { class: 'muted' }, 'fix '), h('code', {}, f.fix)))))
}

async function initPolicies() {
  const box = document.getElementById('policies')
  try {
    const d = await api('GET', '/policies')
    if (!d.tables.length) {
      set(box, h('p', { class: 'empty' }, 'No table yet.'))
      return
    }
    const other = d.findings.length ? h('section', { class: 'policy-table' }, h('h2', {}, 'Functions and roles'), findingList(d.findings)) : null
    set(box, other, ...d.tables.map((t) => h('section', { class: 'policy-table' },
      h('h2', {}, h('span', { class: 'mono' }, `${t.schema}.${t.table}`), ' ', t.rls ? badge(t.forceRls ? 'RLS on, forced' : 'RLS on', 'ok') : badge('RLS off', 'bad')),
      t.findings.length ? findingList(t.findings) : h('p', { class: 'muted' }, 'No finding.'),
      d.roles.length ? table(['Role', 'SELECT', 'INSERT', 'UPDATE', 'DELETE'], d.roles.map((r) => [h('td', { class: 'mono' }, r), ...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((c) => matrixCell(t.matrix[r][c]))]), { class: 'matrix' }) : null,
      t.policies.length ? h('details', {}, h('summary', {}, `${t.policies.length} polic${t.policies.length === 1 ? 'y' : 'ies'}`),
        h('ul', { class: 'policies' }, t.policies.map((p) => h('li', {}, h('span', { class: 'mono pname' }, p.name), ' ', badge(p.command), ' to ', p.roles.join(', '),
          p.using ? h('div', { class: 'expr' }, h('span', { class: 'muted' }, 'using '), h('code', {}, p.using)) : null,
          p.withCheck ? h('div', { class: 'expr' }, h('span', { class: 'muted' }, 'with check '), h('code', {}, p.withCheck)) : null)))) : null)))
  } catch (err) {
    set(box, errorBox(err))
  }
}

const init = { providers: initProviders, roles: initRoles, inspect: initInspect, playground: initPlayground, policies: initPolicies }
init[page]?.()
