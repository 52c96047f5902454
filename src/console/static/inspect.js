// pg-authorize console: the token inspector: a pasted token's header, claims and verdict.
import { h, set, api, alertBox, errorBox, table, json, busy, when } from './console.js'

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

initInspect()
