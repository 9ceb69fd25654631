// The console's pages: what the proxy shows (overview, clusters and backends,
// frontends and listeners, certificates, connectors, events) and the forms that
// add edits to the pending transaction. Each page builds its forms once and
// refreshes only its data, so typing is never lost to a refresh.

import { api } from './api.js';
import { bytes, duration, field, formValues, h, replace, sparkline, table } from './dom.js';
import { pending } from './pending.js';

const SAMPLES = 60;
const rates = { at: [], requests: [], errors: [], last: undefined };

/** Requests and 5xx answers per second since the last call, kept for the sparklines. */
export async function sampleRates() {
  const m = await api.query('query_metrics', { names: 'kakehi_http_requests_total' });
  let total = 0;
  let errors = 0;
  for (const f of m.families)
    for (const s of f.samples) {
      total += s.value ?? 0;
      if (String(s.labels.code ?? '').startsWith('5')) errors += s.value ?? 0;
    }
  const now = Date.now();
  const last = rates.last;
  rates.last = { now, total, errors };
  if (last === undefined || now <= last.now) return;
  const secs = (now - last.now) / 1000;
  rates.requests.push(Math.max(0, (total - last.total) / secs));
  rates.errors.push(Math.max(0, (errors - last.errors) / secs));
  for (const k of ['requests', 'errors']) if (rates[k].length > SAMPLES) rates[k].shift();
}

function editableForm(ctx, title, id, fields, toChange, note) {
  if (ctx.role !== 'editor') return null;
  const form = h(
    'form',
    {
      id,
      class: 'edit',
      onsubmit: (e) => {
        e.preventDefault();
        const change = toChange(formValues(form));
        if (change === undefined) return;
        pending.add(change);
        ctx.toast(`Added to the pending transaction: review it under Changes (${pending.changes.length}).`);
        form.reset();
      },
    },
    h('h2', {}, title),
    note ? h('p', { class: 'note' }, note) : null,
    h('div', { class: 'fields' }, fields),
    h('button', { type: 'submit' }, 'Add to transaction'),
  );
  return form;
}

/** Fills a form with an object's values, to edit it (a put by the same key replaces it). */
function fillForm(form, values) {
  for (const el of form.elements) {
    if (!el.name || !(el.name in values)) continue;
    if (el.type === 'checkbox') el.checked = values[el.name] === true;
    else el.value = values[el.name] ?? '';
  }
  form.querySelector('input,select')?.focus();
}

function withoutStatus(o, extra = []) {
  const copy = { ...o };
  for (const k of ['source', 'key', 'port', ...extra]) delete copy[k];
  return copy;
}

const removeButton = (ctx, label, change) =>
  ctx.role === 'editor'
    ? h(
        'button',
        {
          type: 'button',
          class: 'link',
          'aria-label': `remove ${label}`,
          onclick: () => {
            pending.add(change);
            ctx.toast(`Removal of ${label} added to the pending transaction.`);
          },
        },
        'remove',
      )
    : null;

const editButton = (ctx, label, form, values) =>
  ctx.role === 'editor' && form
    ? h(
        'button',
        {
          type: 'button',
          class: 'link',
          'aria-label': `edit ${label}`,
          onclick: () => fillForm(form, values),
        },
        'edit',
      )
    : null;

export function overviewPage() {
  const data = h('div', {});
  return {
    node: h('section', {}, h('h1', {}, 'Overview'), data),
    refresh: async () => {
      const [s, l] = await Promise.all([api.query('status'), api.query('list_listeners')]);
      await sampleRates().catch(() => {});
      const reqNow = rates.requests.at(-1) ?? 0;
      const errNow = rates.errors.at(-1) ?? 0;
      replace(
        data,
        h(
          'div',
          { class: 'cards' },
          h(
            'div',
            { class: 'card' },
            h('span', { class: 'label' }, 'generation'),
            h('strong', { id: 'generation' }, String(s.generation)),
          ),
          h(
            'div',
            { class: 'card' },
            h('span', { class: 'label' }, 'uptime'),
            h('strong', {}, duration(s.uptime_s)),
          ),
          h('div', { class: 'card' }, h('span', { class: 'label' }, 'version'), h('strong', {}, s.version)),
          h(
            'div',
            { class: 'card' },
            h('span', { class: 'label' }, 'requests/s'),
            h('strong', {}, reqNow.toFixed(1)),
            sparkline(rates.requests, 'requests per second, last two minutes'),
          ),
          h(
            'div',
            { class: 'card' },
            h('span', { class: 'label' }, '5xx/s'),
            h('strong', {}, errNow.toFixed(1)),
            sparkline(rates.errors, 'server errors per second, last two minutes'),
          ),
        ),
        h(
          'p',
          {},
          `${s.listeners} listeners, ${s.clusters} clusters, ${s.backends} backends, ${s.frontends} frontends, ${s.certificates} certificates`,
        ),
        table(
          'Workers',
          ['id', 'pid', 'state', 'generation', 'memory (RSS)', 'uptime'],
          s.workers.map((w) => ({
            cells: [w.id, w.pid, w.state, w.generation, bytes(w.rss_bytes), duration(w.uptime_s)],
          })),
        ),
        table(
          'Listeners',
          ['address', 'protocol', 'bound port', 'source'],
          l.listeners.map((x) => ({
            cells: [x.address, x.protocol, x.port, x.source],
          })),
        ),
      );
    },
  };
}

export function clustersPage(ctx) {
  const data = h('div', {});
  const clusterForm = editableForm(
    ctx,
    'Add or edit a cluster',
    'cluster-form',
    [
      field('Cluster id', 'id', { required: true }),
      field('Load balancing', 'load_balancing', {
        options: ['round_robin', 'random', 'least_connections', 'power_of_two'],
      }),
    ],
    (v) => ({
      op: 'put_cluster',
      cluster: { ...(ctx.cache.clusters?.get(v.id) ?? {}), id: v.id, load_balancing: v.load_balancing },
    }),
  );
  const backendForm = editableForm(
    ctx,
    'Add or edit a backend',
    'backend-form',
    [
      field('Cluster', 'cluster', { required: true }),
      field('Backend id', 'id', { required: true }),
      field('Address (host:port)', 'address', { required: true, placeholder: '10.0.0.1:8080' }),
      field('Weight', 'weight', { type: 'number', placeholder: '100' }),
    ],
    (v) => {
      const base = ctx.cache.backends?.get(`${v.cluster}/${v.id}`) ?? {};
      const backend = { ...base, cluster: v.cluster, id: v.id, address: v.address };
      if (v.weight !== '') backend.weight = Number(v.weight);
      return { op: 'put_backend', backend };
    },
  );
  async function setState(b, state) {
    try {
      const r = await api.backendState(b.cluster, b.id, state);
      ctx.toast(`${b.cluster}/${b.id} is ${state} (generation ${r.generation})`);
      ctx.applied();
    } catch (err) {
      ctx.toast(`${err.code}: ${err.message}`);
    }
  }
  return {
    node: h(
      'section',
      {},
      h('h1', {}, 'Clusters and backends'),
      data,
      h('div', { class: 'forms' }, clusterForm, backendForm),
    ),
    refresh: async () => {
      const [q, lc, lb] = await Promise.all([
        api.query('query_backends'),
        api.query('list_clusters'),
        api.query('list_backends'),
      ]);
      ctx.cache.clusters = new Map(lc.clusters.map((c) => [c.id, withoutStatus(c)]));
      ctx.cache.backends = new Map(lb.backends.map((b) => [`${b.cluster}/${b.id}`, withoutStatus(b)]));
      replace(
        data,
        table(
          'Clusters',
          [
            'id',
            'balancing',
            'backends',
            'active',
            'drain',
            'maintenance',
            'down',
            'in flight',
            'source',
            '',
          ],
          q.clusters.map((c) => ({
            className: c.down > 0 ? 'warn' : undefined,
            cells: [
              c.id,
              c.load_balancing,
              c.backends,
              c.active,
              c.drain,
              c.maintenance,
              c.down,
              c.in_flight,
              c.source,
              h(
                'span',
                { class: 'row-actions' },
                editButton(ctx, `cluster ${c.id}`, clusterForm, {
                  id: c.id,
                  load_balancing: c.load_balancing,
                }),
                removeButton(ctx, `cluster ${c.id}`, { op: 'delete_cluster', id: c.id }),
              ),
            ],
          })),
        ),
        table(
          'Backends',
          [
            'cluster',
            'id',
            'address',
            'state',
            'health',
            'in flight',
            'failures',
            'last error',
            'source',
            '',
          ],
          q.backends.map((b) => ({
            className: b.health === 'up' ? undefined : 'warn',
            cells: [
              b.cluster,
              b.id,
              b.address,
              b.state,
              b.health,
              b.in_flight,
              b.failures,
              b.last_error,
              b.source,
              h(
                'span',
                { class: 'row-actions' },
                editButton(ctx, `backend ${b.cluster}/${b.id}`, backendForm, {
                  cluster: b.cluster,
                  id: b.id,
                  address: b.address,
                  weight: String(b.weight ?? ''),
                }),
                ctx.role === 'editor'
                  ? ['active', 'drain', 'maintenance']
                      .filter((s) => s !== b.state)
                      .map((s) =>
                        h(
                          'button',
                          {
                            type: 'button',
                            class: 'link',
                            'aria-label': `set ${b.cluster}/${b.id} ${s}`,
                            onclick: () => setState(b, s),
                          },
                          s === 'active' ? 'ready' : s,
                        ),
                      )
                  : null,
                removeButton(ctx, `backend ${b.cluster}/${b.id}`, {
                  op: 'delete_backend',
                  cluster: b.cluster,
                  id: b.id,
                }),
              ),
            ],
          })),
        ),
      );
    },
  };
}

function routeTester() {
  const out = h('div', { id: 'route-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'edit',
      id: 'route-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const v = formValues(form);
        try {
          const r = await api.query('query_route', {
            host: v.host,
            path: v.path || '/',
            method: v.method || 'GET',
          });
          replace(
            out,
            r.matches.length === 0
              ? h('p', {}, 'No frontend matches: the proxy answers 404.')
              : table(
                  'Where it goes',
                  ['listener', 'action', 'cluster', 'frontend'],
                  r.matches.map((m) => ({
                    cells: [
                      m.listener,
                      m.action + (m.status ? ` (${m.status})` : ''),
                      m.cluster,
                      m.frontend ? `${m.frontend.hostname}${m.frontend.path}` : '-',
                    ],
                  })),
                ),
          );
        } catch (err) {
          replace(out, h('p', { class: 'issue' }, `${err.code}: ${err.message}`));
        }
      },
    },
    h('h2', {}, 'Test a URL'),
    h(
      'div',
      { class: 'fields' },
      field('Host', 'host', { required: true, placeholder: 'www.example.com' }),
      field('Path', 'path', { placeholder: '/' }),
      field('Method', 'method', { placeholder: 'GET' }),
    ),
    h('button', { type: 'submit' }, 'Find the route'),
    out,
  );
  return form;
}

export function frontendsPage(ctx) {
  const data = h('div', {});
  const frontendForm = editableForm(
    ctx,
    'Add or edit a frontend',
    'frontend-form',
    [
      field('Hostname', 'hostname', { required: true, placeholder: 'www.example.com' }),
      field('Path', 'path', { placeholder: '/' }),
      field('Path type', 'path_type', { options: ['prefix', 'exact', 'regex'] }),
      field('Listener (empty: every listener)', 'listener'),
      field('Cluster', 'cluster', { required: true }),
    ],
    (v) => {
      const frontend = {
        hostname: v.hostname,
        path: v.path || '/',
        path_type: v.path_type,
        cluster: v.cluster,
      };
      if (v.listener) frontend.listener = v.listener;
      return { op: 'put_frontend', frontend };
    },
  );
  const listenerForm = editableForm(
    ctx,
    'Add a listener',
    'listener-form',
    [
      field('Address (host:port)', 'address', { required: true, placeholder: '0.0.0.0:80' }),
      field('Protocol', 'protocol', { options: ['http', 'https'] }),
    ],
    (v) => ({ op: 'put_listener', listener: { address: v.address, protocol: v.protocol } }),
  );
  return {
    node: h(
      'section',
      {},
      h('h1', {}, 'Frontends and listeners'),
      data,
      routeTester(),
      h('div', { class: 'forms' }, frontendForm, listenerForm),
    ),
    refresh: async () => {
      const [f, l] = await Promise.all([api.query('list_frontends'), api.query('list_listeners')]);
      replace(
        data,
        table(
          'Frontends',
          ['hostname', 'path', 'type', 'method', 'listener', 'goes to', 'source', ''],
          f.frontends.map((x) => {
            const ref = { hostname: x.hostname, path: x.path, path_type: x.path_type };
            if (x.listener) ref.listener = x.listener;
            if (x.method) ref.method = x.method;
            return {
              cells: [
                x.hostname,
                x.path,
                x.path_type,
                x.method ?? 'any',
                x.listener ?? 'every',
                x.cluster ?? (x.deny ? 'deny (403)' : x.redirect ? `redirect ${x.redirect.to}` : '-'),
                x.source,
                h(
                  'span',
                  { class: 'row-actions' },
                  editButton(ctx, `frontend ${x.hostname}${x.path}`, frontendForm, {
                    hostname: x.hostname,
                    path: x.path,
                    path_type: x.path_type,
                    listener: x.listener ?? '',
                    cluster: x.cluster ?? '',
                  }),
                  removeButton(ctx, `frontend ${x.hostname}${x.path}`, {
                    op: 'delete_frontend',
                    frontend: ref,
                  }),
                ),
              ],
            };
          }),
        ),
        table(
          'Listeners',
          ['address', 'protocol', 'bound port', 'source', ''],
          l.listeners.map((x) => ({
            cells: [
              x.address,
              x.protocol,
              x.port,
              x.source,
              removeButton(ctx, `listener ${x.address}`, { op: 'delete_listener', address: x.address }),
            ],
          })),
        ),
      );
    },
  };
}

const EXPIRING_DAYS = 21;

export function certificatesPage(ctx) {
  const data = h('div', {});
  let form = null;
  if (ctx.role === 'editor') {
    const certText = h('textarea', {
      id: 'cert-pem',
      name: 'certificate',
      rows: 6,
      spellcheck: 'false',
      required: true,
    });
    const keyText = h('textarea', {
      id: 'key-pem',
      name: 'key',
      rows: 4,
      spellcheck: 'false',
      required: true,
      autocomplete: 'off',
    });
    const fileInto = (id, target, label) =>
      h('input', {
        id,
        type: 'file',
        'aria-label': label,
        accept: '.pem,.crt,.key',
        onchange: async (e) => {
          const f = e.target.files?.[0];
          if (f) target.value = await f.text();
        },
      });
    form = h(
      'form',
      {
        id: 'certificate-form',
        class: 'edit',
        onsubmit: (e) => {
          e.preventDefault();
          const v = formValues(form);
          pending.add({
            op: 'put_certificate',
            certificate: { listener: v.listener, certificate: v.certificate, key: v.key, default: v.default },
          });
          form.reset();
          ctx.toast(
            'Certificate added to the pending transaction; its key is sent once and never shown again.',
          );
        },
      },
      h('h2', {}, 'Upload a certificate'),
      h(
        'div',
        { class: 'fields' },
        field('HTTPS listener (host:port)', 'listener', { required: true }),
        h(
          'div',
          { class: 'field wide' },
          h('label', { for: 'cert-pem' }, 'Certificate (PEM, chain after the leaf)'),
          certText,
          fileInto('cert-file', certText, 'read the certificate from a file'),
        ),
        h(
          'div',
          { class: 'field wide' },
          h('label', { for: 'key-pem' }, 'Private key (PEM)'),
          keyText,
          fileInto('key-file', keyText, 'read the key from a file'),
        ),
        h(
          'div',
          { class: 'field' },
          h(
            'label',
            { for: 'cert-default' },
            h('input', { id: 'cert-default', name: 'default', type: 'checkbox' }),
            ' default certificate of the listener',
          ),
        ),
      ),
      h('button', { type: 'submit' }, 'Add to transaction'),
    );
  }
  return {
    node: h('section', {}, h('h1', {}, 'Certificates'), data, form),
    refresh: async () => {
      const r = await api.query('list_certificates');
      const now = Date.now();
      replace(
        data,
        table(
          'Certificates',
          ['names', 'listener', 'issuer', 'valid until', 'days left', 'source', 'default', ''],
          r.certificates.filter(Boolean).map((c) => {
            const days = Math.floor((Date.parse(c.not_after) - now) / 86_400_000);
            return {
              className: days < EXPIRING_DAYS ? 'expiring' : undefined,
              cells: [
                c.names.join(', '),
                c.listener,
                c.issuer,
                c.not_after,
                days < 0 ? 'expired' : String(days),
                c.source,
                c.default ? 'yes' : '',
                removeButton(ctx, `certificate ${c.names[0] ?? c.fingerprint}`, {
                  op: 'delete_certificate',
                  listener: c.listener,
                  fingerprint: c.fingerprint,
                }),
              ],
            };
          }),
        ),
      );
    },
  };
}

export function connectorsPage() {
  const data = h('div', {});
  return {
    node: h('section', {}, h('h1', {}, 'Connectors'), data),
    refresh: async () => {
      const r = await api.query('list_connectors');
      replace(
        data,
        table(
          'What each connector last reported',
          ['connector', 'healthy', 'summary', 'problems', 'pid', 'reported'],
          r.connectors.map((c) => ({
            className: c.healthy ? undefined : 'warn',
            cells: [
              c.connector,
              c.healthy ? 'yes' : 'no',
              c.summary,
              c.problems.length === 0
                ? '-'
                : h(
                    'ul',
                    {},
                    c.problems.map((p) => h('li', {}, `${p.item}: ${p.reason}`)),
                  ),
              c.pid,
              `${c.age_s} s ago`,
            ],
          })),
        ),
      );
    },
  };
}

function describeEvent(e) {
  switch (e.type) {
    case 'change_applied':
      return `generation ${e.generation} by ${e.source}: ${e.applied.map((a) => `${a.effect} ${a.key}`).join(', ')}`;
    case 'backend_down':
    case 'backend_up':
      return `${e.cluster}/${e.backend} (${e.address})${e.by ? ` by ${e.by}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
    default:
      return JSON.stringify(e);
  }
}

export function eventsPage(ctx) {
  const list = h('ol', { class: 'timeline', id: 'timeline', 'aria-live': 'polite' });
  const render = () =>
    replace(
      list,
      ctx.events.length === 0
        ? h('li', { class: 'empty' }, 'No events yet.')
        : [...ctx.events]
            .reverse()
            .map((item) =>
              h(
                'li',
                { class: `event ev-${item.event.type}` },
                h('time', { datetime: item.at }, item.at.slice(11, 19)),
                ' ',
                h('strong', {}, item.event.type),
                ' ',
                describeEvent(item.event),
              ),
            ),
    );
  render();
  return { node: h('section', {}, h('h1', {}, 'Events'), list), refresh: async () => render() };
}
