// The frontends and listeners page: where each host and path goes, a box to test
// a URL (query_route), and forms to add frontends and listeners.

import { api } from './api.js';
import { field, formValues, h, replace, table } from './dom.js';
import { editableForm, editButton, removeButton } from './edit-forms.js';

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
