// What the proxy reports rather than holds: the connectors' last reports and
// problems, and the live event timeline.

import { api } from './api.js';
import { h, replace, table } from './dom.js';

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
