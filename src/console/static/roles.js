// pg-authorize console: the "Roles and set-up" page: the auth schema, the restricted roles, their grants, the connection strings.
import { h, set, api, alertBox, errorBox, table, codeBlock, badge, yes, busy } from './console.js'

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

initRoles()
