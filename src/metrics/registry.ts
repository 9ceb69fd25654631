// Counters, gauges and fixed-bucket histograms for one process, and the plain
// shape (Family, Sample) they travel in over IPC and the command socket. Series
// are created once per label set and kept by a string key so an update is a
// Map lookup and an add, nothing allocated.

export type Labels = Record<string, string>;
export type ScalarSample = { labels: Labels; value: number };
/** counts[i] is NON-cumulative: bucket (bounds[i-1], bounds[i]]; the last entry is above the last bound. */
export type HistogramSample = {
  labels: Labels;
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
};
export type Sample = ScalarSample | HistogramSample;
export type MetricType = 'counter' | 'gauge' | 'histogram';
export interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

/** Seconds: from a fast cache hit to a slow backend. */
export const DURATION_BOUNDS_S: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class Scalar {
  value = 0;
  constructor(readonly labels: Labels) {}
  add(n: number): void {
    this.value += n;
  }
  set(n: number): void {
    this.value = n;
  }
}

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    // Linear: 13 bounds, and most observations land in the first few.
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class Metric<S extends Scalar | Histogram> {
  private readonly series = new Map<string, S>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly make: (labels: Labels) => S,
  ) {}

  /** The series for `key`; `labels` builds its label set the first time only. */
  get(key: string, labels: () => Labels): S {
    let s = this.series.get(key);
    if (s === undefined) {
      s = this.make(labels());
      this.series.set(key, s);
    }
    return s;
  }

  /** Drops the series whose keys `keep` refuses (e.g. backends no longer configured). */
  retain(keep: (key: string) => boolean): void {
    for (const key of [...this.series.keys()]) if (!keep(key)) this.series.delete(key);
  }

  has(key: string): boolean {
    return this.series.has(key);
  }

  family(): Family {
    const samples: Sample[] = [];
    for (const s of this.series.values()) {
      if (s instanceof Histogram) {
        samples.push({
          labels: { ...s.labels },
          bounds: [...s.bounds],
          counts: [...s.counts],
          sum: s.sum,
          count: s.count,
        });
      } else samples.push({ labels: { ...s.labels }, value: s.value });
    }
    return { name: this.name, help: this.help, type: this.type, samples };
  }
}

export class Registry {
  private readonly metrics: Metric<Scalar | Histogram>[] = [];

  counter(name: string, help: string): Metric<Scalar> {
    return this.add(new Metric(name, help, 'counter', (l) => new Scalar(l)));
  }
  gauge(name: string, help: string): Metric<Scalar> {
    return this.add(new Metric(name, help, 'gauge', (l) => new Scalar(l)));
  }
  histogram(name: string, help: string, bounds: readonly number[] = DURATION_BOUNDS_S): Metric<Histogram> {
    return this.add(new Metric(name, help, 'histogram', (l) => new Histogram(l, bounds)));
  }

  private add<S extends Scalar | Histogram>(m: Metric<S>): Metric<S> {
    this.metrics.push(m as unknown as Metric<Scalar | Histogram>);
    return m;
  }

  families(): Family[] {
    return this.metrics.map((m) => m.family());
  }
}
