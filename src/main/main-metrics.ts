// Main's own metrics (the control plane: generation, apply time, workers,
// certificate expiry) and the counts kept from workers that are gone, so that
// summed counters never go back when a worker drains or dies.

import { mergeFamilies, retainCounts } from '../metrics/aggregate.js';
import { type Family, Registry } from '../metrics/registry.js';
import { keyOf } from '../model/objects.js';
import type { ProxyState } from '../state/proxy-state.js';
import { servedCertificate } from '../tls/certificate-store.js';

export class MainMetrics {
  readonly #registry = new Registry();
  readonly #generation = this.#registry
    .gauge('kakehi_config_generation', 'Generation of the configuration state main serves.')
    .get('', () => ({}));
  readonly #applyTime = this.#registry
    .histogram(
      'kakehi_change_apply_seconds',
      'Time for a change to be live in every worker (validation to the last ack), in seconds.',
    )
    .get('', () => ({}));
  readonly #workers = this.#registry
    .gauge('kakehi_workers', 'Worker processes running (starting, ready or draining).')
    .get('', () => ({}));
  readonly #certificateExpiry = this.#registry.gauge(
    'kakehi_certificate_expiry_timestamp_seconds',
    'When each certificate stops being valid (its not-after), as a Unix time in seconds.',
  );
  /** Counters and histograms of workers that drained and left (upgrade), so totals never go back. */
  #retained: Family[] = [];

  /** A change was live in every worker `seconds` after it was validated. */
  observeApply(seconds: number): void {
    this.#applyTime.observe(seconds);
  }

  /** Main's own families, read now. */
  families(generation: number, workers: number, state: ProxyState): Family[] {
    this.#generation.set(generation);
    this.#workers.set(workers);
    const present = new Set<string>();
    for (const [key, c] of state.certificates) {
      present.add(key);
      const facts = servedCertificate(c)?.facts;
      if (facts === undefined) continue;
      this.#certificateExpiry
        .get(key, () => ({
          listener: keyOf('listener', { address: c.listener }),
          fingerprint: facts.fingerprint,
          name: facts.names[0] ?? '',
        }))
        .set(Date.parse(facts.not_after) / 1000);
    }
    this.#certificateExpiry.retain((k) => present.has(k));
    return this.#registry.families();
  }

  /** Adds the counts of a worker that left (its final ones, or its last known ones if it died). */
  retain(families: Family[]): void {
    this.#retained = retainCounts(this.#retained, families);
  }

  /** Counters and histograms kept from workers that are gone; a copy. */
  retained(): Family[] {
    return mergeFamilies([this.#retained]);
  }
}
