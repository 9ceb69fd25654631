// Merges the families of several processes into one answer (counters,
// gauges and histogram buckets are summed per label set) and filters an
// answer by cluster, backend and family name for query_metrics.

import type { Family, HistogramSample, Sample } from './registry.js';

function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
}

function isHistogram(s: Sample): s is HistogramSample {
  return 'counts' in s;
}

/**
 * A gauge named `…_up` is a state (1 up, 0 down), not an amount: summed over
 * two workers it would read 2. Merged, it is up only when every process that
 * reports it says so, so one worker seeing a backend down shows.
 */
function isStateGauge(f: Family): boolean {
  return f.type === 'gauge' && f.name.endsWith('_up');
}

/**
 * Sums same-named families and same-labelled samples (`…_up` states take the
 * lowest instead); order follows first appearance.
 */
export function mergeFamilies(sets: Family[][]): Family[] {
  const out = new Map<string, { family: Family; byLabels: Map<string, Sample> }>();
  for (const families of sets) {
    for (const f of families) {
      let e = out.get(f.name);
      if (e === undefined) {
        e = { family: { name: f.name, help: f.help, type: f.type, samples: [] }, byLabels: new Map() };
        out.set(f.name, e);
      }
      for (const s of f.samples) {
        const key = labelKey(s.labels);
        const have = e.byLabels.get(key);
        if (have === undefined) {
          const copy: Sample = isHistogram(s)
            ? {
                labels: { ...s.labels },
                bounds: [...s.bounds],
                counts: [...s.counts],
                sum: s.sum,
                count: s.count,
              }
            : { labels: { ...s.labels }, value: s.value };
          e.byLabels.set(key, copy);
          e.family.samples.push(copy);
        } else if (isHistogram(have) && isHistogram(s)) {
          for (let i = 0; i < have.counts.length; i++) have.counts[i]! += s.counts[i] ?? 0;
          have.sum += s.sum;
          have.count += s.count;
        } else if (!isHistogram(have) && !isHistogram(s)) {
          have.value = isStateGauge(f) ? Math.min(have.value, s.value) : have.value + s.value;
        }
      }
    }
  }
  return [...out.values()].map((e) => e.family);
}

/**
 * Adds the counters and histograms of a process that is going away (a worker
 * replaced on upgrade) to `retained`, so that aggregate totals never go back.
 * Its gauges are left out: they describe a process that no longer runs.
 */
export function retainCounts(retained: Family[], gone: Family[]): Family[] {
  return mergeFamilies([retained, gone.filter((f) => f.type !== 'gauge')]);
}

export interface MetricsFilter {
  cluster?: string | undefined;
  backend?: string | undefined;
  names?: readonly string[] | undefined;
}

/**
 * Keeps the named families, and within them the samples whose `cluster` /
 * `backend` label matches; a family without that label is kept whole only
 * when no such filter is given (it says nothing about that cluster).
 */
export function filterFamilies(families: Family[], f: MetricsFilter): Family[] {
  const out: Family[] = [];
  for (const fam of families) {
    if (f.names !== undefined && !f.names.includes(fam.name)) continue;
    const samples = fam.samples.filter(
      (s) =>
        (f.cluster === undefined || s.labels['cluster'] === f.cluster) &&
        (f.backend === undefined || s.labels['backend'] === f.backend),
    );
    if (samples.length === 0 && (f.cluster !== undefined || f.backend !== undefined)) continue;
    out.push({ ...fam, samples });
  }
  return out;
}
