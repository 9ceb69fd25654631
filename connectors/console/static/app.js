// The console's page: login, the section navigation (by URL hash), a refresh of
// the open section every few seconds and at every change the proxy announces
// over the live event stream.

import { connectorsPage, eventsPage } from './activity.js';
import { ApiError, api, setCsrf } from './api.js';
import { certificatesPage } from './certificates.js';
import { clustersPage } from './clusters.js';
import { h, replace } from './dom.js';
import { frontendsPage } from './frontends.js';
import { overviewPage } from './overview.js';
import { changesPage, pending } from './pending.js';

const REFRESH_MS = 3_000;
const MAX_EVENTS = 200;

const SECTIONS = {
  overview: ['Overview', overviewPage],
  clusters: ['Clusters', clustersPage],
  frontends: ['Frontends', frontendsPage],
  certificates: ['Certificates', certificatesPage],
  connectors: ['Connectors', connectorsPage],
  events: ['Events', eventsPage],
  changes: ['Changes', changesPage],
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const whoami = document.getElementById('whoami');
const toastEl = document.getElementById('toast');

const ctx = {
  role: undefined,
  cache: {},
  events: [],
  toast(message) {
    toastEl.textContent = message;
  },
  applied() {
    void refresh();
  },
};

let page;
let timer;
let stream;

function navigation() {
  const current = location.hash.slice(1) || 'overview';
  replace(
    nav,
    Object.entries(SECTIONS).map(([id, [label]]) =>
      h(
        'a',
        { href: `#${id}`, id: `nav-${id}`, 'aria-current': id === current ? 'page' : undefined },
        id === 'changes' && pending.changes.length > 0 ? `${label} (${pending.changes.length})` : label,
      ),
    ),
  );
}

async function refresh() {
  if (!page) return;
  try {
    await page.refresh();
    main.classList.remove('stale');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin('Your session ended; log in again.');
    main.classList.add('stale');
    ctx.toast(`Cannot refresh: ${err.message}`);
  }
}

function open() {
  const id = location.hash.slice(1) || 'overview';
  const section = SECTIONS[id] ?? SECTIONS.overview;
  page?.dispose?.();
  // A message belongs to the page it was said on.
  ctx.toast('');
  page = section[1](ctx);
  replace(main, page.node);
  navigation();
  void refresh();
}

function startStream() {
  stream?.close();
  stream = new EventSource('/api/events');
  stream.onmessage = (m) => {
    const item = JSON.parse(m.data);
    ctx.events.push(item);
    if (ctx.events.length > MAX_EVENTS) ctx.events.shift();
    if (item.event.type === 'change_applied' || location.hash === '#events') void refresh();
  };
}

function enter(session) {
  setCsrf(session.csrf);
  ctx.role = session.role;
  nav.hidden = false;
  replace(
    whoami,
    `${session.role === 'editor' ? 'editor' : 'read-only'} session `,
    h('button', { type: 'button', id: 'logout', onclick: logout }, 'Log out'),
  );
  startStream();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
  open();
}

async function logout() {
  await api.logout().catch(() => {});
  location.hash = '';
  location.reload();
}

function showLogin(message) {
  clearInterval(timer);
  stream?.close();
  page = undefined;
  nav.hidden = true;
  replace(whoami);
  const error = h('p', { id: 'login-error', class: 'issue', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    {
      id: 'login',
      class: 'login',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          enter(await api.login(form.elements.token.value));
        } catch (err) {
          error.textContent =
            err.status === 429
              ? 'Too many attempts; wait a little and try again.'
              : 'That token is not valid.';
        }
      },
    },
    h('h1', {}, 'Log in'),
    h('p', {}, 'Use the editor or read-only token printed when the console first started.'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'token' }, 'Token'),
      h('input', {
        id: 'token',
        name: 'token',
        type: 'password',
        required: true,
        autocomplete: 'current-password',
      }),
    ),
    h('button', { type: 'submit', class: 'primary' }, 'Log in'),
    error,
  );
  replace(main, form);
  form.elements.token.focus();
}

window.addEventListener('hashchange', () => {
  if (ctx.role !== undefined && page !== undefined) open();
});
pending.onChange(navigation);

api.session().then(enter, () => showLogin());
