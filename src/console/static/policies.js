// pg-authorize console: the Policies page: the role × command matrix and the lint findings, table by table.
import { h, set, api, errorBox, table, badge } from './console.js'

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

initPolicies()
