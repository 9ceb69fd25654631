// The overview page: generation, uptime, version, the request and 5xx rate
// sparklines (one point per refresh), workers with their memory, listeners.

import { api } from './api.js';
import { bytes, duration, h, replace, sparkline, table } from './dom.js';

const SAMPLES = 60;
const rates = { requests: [], errors: [], last: undefined };

/** Requests and 5xx answers per second since the last call, kept for the sparklines. */
async function sampleRates() {
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
