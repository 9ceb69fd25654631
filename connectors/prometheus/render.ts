// Turns a `query_metrics` result into Prometheus text through prom-client's
// formatter (so label values are escaped as the exposition format says), with
// cumulative `le` buckets ending in +Inf, and the per-backend series budget.

import { Registry } from 'prom-client';
import type { Family, Labels, MetricsResult, Sample } from '../../src/command/protocol.js';
import { keyOf } from '../../src/model/objects.js';

export type { Family, Labels, MetricsResult, Sample };

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const OTHER_BACKEND = 'other';

interface Hist {
  labels: Labels;
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}
type Value = { metricName?: string; labels: Labels; value: number };

/**
 * Which backends keep their own label. Admission is sticky so that series don't
 * flap between their own name and `other` from one scrape to the next; backends
 * gone from the proxy give their place back.
 */
export class BackendBudget {
  readonly #max: number;
  readonly #admitted = new Set<string>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Returns the backend label to use for each (cluster, backend) key seen now. */
  plan(keys: Iterable<string>): (key: string) => boolean {
    const seen = new Set(keys);
    for (const k of this.#admitted) if (!seen.has(k)) this.#admitted.delete(k);
    // Sorted so that which backends win a cold start doesn't depend on map order.
    for (const k of [...seen].sort()) {
      if (this.#admitted.size >= this.#max) break;
      this.#admitted.add(k);
    }
    return (k) => this.#admitted.has(k);
  }
}

export interface RenderOptions {
  perBackend: boolean;
  budget: BackendBudget;
}

export interface Rendered {
  text: string;
  /** Series folded into backend="other" (or whole families skipped as invalid). */
  droppedSeries: number;
  skippedFamilies: string[];
}

const backendKey = (l: Labels) => keyOf('backend', { cluster: l.cluster ?? '', id: l.backend ?? '' });
const isHist = (s: Sample): s is Hist => 'bounds' in s;

export function validResult(r: unknown): r is MetricsResult {
  if (typeof r !== 'object' || r === null) return false;
  const fams = (r as { families?: unknown }).families;
  return Array.isArray(fams);
}

export async function renderFamilies(result: MetricsResult, opts: RenderOptions): Promise<Rendered> {
  const keep = opts.perBackend
    ? opts.budget.plan(
        result.families.flatMap((f) =>
          f.samples.filter((s) => s.labels?.backend !== undefined).map((s) => backendKey(s.labels)),
        ),
      )
    : () => false;
  let droppedSeries = 0;
  const skippedFamilies: string[] = [];
  const registry = new Registry();
  const families = result.families.flatMap((f) =>
    f.name === BACKEND_UP && validFamily(f) ? backendStates(f, opts.perBackend ? keep : () => false) : [f],
  );
  for (const fam of families) {
    if (!validFamily(fam)) {
      skippedFamilies.push(String((fam as { name?: unknown }).name));
      continue;
    }
    // Merge series whose labels collide after the backend label is dropped or folded.
    const merged = new Map<string, Sample>();
    for (const s of fam.samples) {
      const labels = { ...s.labels };
      if (labels.backend !== undefined && !keep(backendKey(s.labels))) {
        if (opts.perBackend) {
          labels.backend = OTHER_BACKEND;
          droppedSeries++;
        } else delete labels.backend;
      }
      const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
      const prev = merged.get(key);
      if (prev === undefined) merged.set(key, cloneSample(s, labels));
      else addInto(prev, s);
    }
    const values = [...merged.values()].flatMap((s) => (isHist(s) ? histValues(fam.name, s) : [s]));
    // A plain object is enough for Registry: it only calls get() and reads name/type.
    registry.registerMetric({
      name: fam.name,
      help: fam.help,
      type: fam.type,
      get: async () => ({
        name: fam.name,
        help: fam.help || fam.name,
        type: fam.type,
        values,
        aggregator: 'sum',
      }),
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  }
  return { text: await registry.metrics(), droppedSeries, skippedFamilies };
}

const BACKEND_UP = 'kakehi_backend_up';

/**
 * An `_up` gauge must stay 0 or 1 per backend: summed over backends whose
 * label is dropped or folded it would read 2 for a cluster. Backends that keep
 * their label keep their `kakehi_backend_up`; every backend is also counted per
 * cluster in `kakehi_backends_up` and `kakehi_backends`, which fold honestly.
 */
function backendStates(f: Family, keep: (key: string) => boolean): Family[] {
  const own = f.samples.filter((s) => keep(backendKey(s.labels)));
  const up = new Map<string, number>();
  const all = new Map<string, number>();
  for (const s of f.samples) {
    const cluster = s.labels.cluster ?? '';
    all.set(cluster, (all.get(cluster) ?? 0) + 1);
    up.set(cluster, (up.get(cluster) ?? 0) + ((s as { value: number }).value >= 1 ? 1 : 0));
  }
  const perCluster = (counts: Map<string, number>) =>
    [...counts].map(([cluster, value]) => ({ labels: { cluster }, value }));
  return [
    ...(own.length > 0 ? [{ ...f, samples: own }] : []),
    {
      name: 'kakehi_backends_up',
      help: 'Backends of the cluster that are up (kakehi_backend_up is 1).',
      type: 'gauge',
      samples: perCluster(up),
    },
    {
      name: 'kakehi_backends',
      help: 'Backends of the cluster that the proxy reports a state for.',
      type: 'gauge',
      samples: perCluster(all),
    },
  ];
}

function validFamily(f: Family): boolean {
  if (typeof f !== 'object' || f === null || !NAME_RE.test(String(f.name))) return false;
  if (!['counter', 'gauge', 'histogram'].includes(f.type) || !Array.isArray(f.samples)) return false;
  return f.samples.every((s) => {
    if (typeof s !== 'object' || s === null || typeof s.labels !== 'object') return false;
    if (!Object.keys(s.labels).every((k) => LABEL_RE.test(k) && k !== 'le')) return false;
    if (f.type !== 'histogram') return typeof (s as { value?: unknown }).value === 'number';
    const h = s as Hist;
    return (
      Array.isArray(h.bounds) &&
      Array.isArray(h.counts) &&
      h.counts.length === h.bounds.length + 1 &&
      h.bounds.every((b, i) => Number.isFinite(b) && (i === 0 || b > (h.bounds[i - 1] as number)))
    );
  });
}

function cloneSample(s: Sample, labels: Labels): Sample {
  return isHist(s)
    ? { labels, bounds: s.bounds, counts: [...s.counts], sum: s.sum, count: s.count }
    : { labels, value: s.value };
}

function addInto(into: Sample, s: Sample): void {
  if (isHist(into) && isHist(s)) {
    // Bounds are fixed per family by the proxy; mismatched ones would make sums lie.
    if (into.bounds.join() !== s.bounds.join()) return;
    s.counts.forEach((c, i) => {
      into.counts[i] = (into.counts[i] ?? 0) + c;
    });
    into.sum += s.sum;
    into.count += s.count;
  } else if (!isHist(into) && !isHist(s)) into.value += s.value;
}

function histValues(name: string, h: Hist): Value[] {
  const out: Value[] = [];
  let cumulative = 0;
  h.bounds.forEach((b, i) => {
    cumulative += h.counts[i] ?? 0;
    out.push({ metricName: `${name}_bucket`, labels: { ...h.labels, le: String(b) }, value: cumulative });
  });
  cumulative += h.counts[h.bounds.length] ?? 0;
  out.push({ metricName: `${name}_bucket`, labels: { ...h.labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels: h.labels, value: h.sum });
  // _count must equal the +Inf bucket; take it from the buckets, not the proxy's own total.
  out.push({ metricName: `${name}_count`, labels: h.labels, value: cumulative });
  return out;
}
