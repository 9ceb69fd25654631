// The clusters and backends page: their state and health, forms to add or edit
// them, remove buttons, and the ready / drain / maintenance buttons (applied at
// once, as kakehi ctl backend drain does).

import { api } from './api.js';
import { field, h, replace, table } from './dom.js';
import { editableForm, editButton, removeButton, withoutStatus } from './edit-forms.js';

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
