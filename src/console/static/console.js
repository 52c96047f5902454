// pg-authorize console: what every page's module shares (each page has its own, static/<page>.js, which
// imports this one). Plain ES modules: no build step, no dependency, no inline script (the CSP forbids
// it). Everything that comes from the server is rendered as text (text nodes), never parsed as HTML:
// build elements with h(), never with innerHTML.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? ''

/** Creates an element: h('td', { class: 'mono' }, 'text', childNode). */
export function h(tag, attrs = {}, ...children) {
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
export function set(el, ...nodes) {
  el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false && n !== ''))
}

/** Calls the console API; throws an Error carrying the server's code, message and hint. */
export async function api(method, path, body) {
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

export function alertBox(kind, title, ...body) {
  return h('div', { class: `alert ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('strong', {}, title), ...body)
}

export function errorBox(err) {
  return alertBox('error', err.code ? `${err.code}` : 'Error', ' ', err.message, err.hint ? h('div', { class: 'hint' }, err.hint) : null)
}

/** A table from header labels and rows of cells (strings or nodes). */
export function table(headers, rows, attrs = {}) {
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

export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'small copy', 'aria-label': `${label} to the clipboard` }, 'Copy')
  b.addEventListener('click', () => copy(text, b))
  return b
}

/** A monospace block with a copy button. */
export function codeBlock(text, label) {
  return h('div', { class: 'code' }, h('pre', { class: 'mono' }, text), copyButton(text, label))
}

export const json = (v) => JSON.stringify(v, null, 2)
export const badge = (text, kind = '') => h('span', { class: `badge ${kind}` }, text)
export const yes = (b) => (b ? badge('yes', 'ok') : badge('no', 'muted'))

export function busy(button, on) {
  button.disabled = on
  button.setAttribute('aria-busy', on ? 'true' : 'false')
}

export function when(seconds) {
  if (typeof seconds !== 'number') return ''
  const d = new Date(seconds * 1000)
  const delta = Math.round(seconds - Date.now() / 1000)
  const rel = Math.abs(delta) < 90 ? `${Math.abs(delta)} s` : Math.abs(delta) < 5400 ? `${Math.round(Math.abs(delta) / 60)} min` : `${Math.round(Math.abs(delta) / 3600)} h`
  return `${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} (${delta >= 0 ? 'in ' + rel : rel + ' ago'})`
}
