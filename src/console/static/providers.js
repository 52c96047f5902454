// pg-authorize console: the Providers page: list, add, remove and refresh providers.
import { h, set, api, alertBox, errorBox, table, badge, busy } from './console.js'

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
  const field = (name, value) => { form.elements[name].value = value }
  field('jwksUrl', p.discovery || p.inline ? '' : p.jwksUrl ?? '')
  field('name', p.name)
  field('issuer', p.issuer ?? '')
  field('audience', p.audience.join(', '))
  field('authorizedParties', p.authorizedParties.join(', '))
  field('roles', p.roles.join(', '))
  field('roleClaim', p.roleClaim ?? '')
  field('defaultRole', p.defaultRole ?? '')
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

initProviders()
