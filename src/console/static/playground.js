// pg-authorize console: the playground: one statement as one or two identities, side by side, with the policies that applied.
import { h, set, api, alertBox, errorBox, table, badge, busy } from './console.js'

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

initPlayground()
