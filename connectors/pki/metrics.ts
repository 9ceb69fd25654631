// The connector's own metrics (prom-client), served at /metrics. Label values are
// bounded: states and ops are fixed sets, pairs are bounded by --max-pairs.

import { Counter, Gauge, Registry } from 'prom-client';
import { registerProcessMetrics } from '../shared/process-metrics.js';
import type { PairState } from './settle.js';

export const PAIR_STATES: PairState[] = ['settling', 'ok', 'incomplete', 'unreadable', 'invalid', 'ignored'];

export class PkiMetrics {
  readonly registry = new Registry();
  readonly pairs: Gauge;
  readonly invalid: Counter;
  readonly notAfter: Gauge;
  readonly connected: Gauge;
  readonly syncs: Counter;
  readonly changes: Counter;
  readonly lastSync: Gauge;
  readonly certificates: Gauge;
  readonly scans: Counter;
  readonly missedChanges: Counter;
  readonly expiryWarnings: Counter;

  constructor() {
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.pairs = new Gauge({
      name: 'kakehi_pki_pairs',
      help: 'Certificate/key pairs found in the watched directories, by state.',
      labelNames: ['state'],
      registers,
    });
    for (const state of PAIR_STATES) this.pairs.set({ state }, 0);
    this.invalid = new Counter({
      name: 'kakehi_pki_invalid_pairs_total',
      help: 'Times a pair was found invalid (by the connector: key mismatch, dates, chain) or refused by the proxy.',
      labelNames: ['by'],
      registers,
    });
    this.invalid.inc({ by: 'connector' }, 0);
    this.invalid.inc({ by: 'proxy' }, 0);
    this.notAfter = new Gauge({
      name: 'kakehi_pki_certificate_not_after_timestamp_seconds',
      help: 'Not-after of the certificate each pair serves (Unix seconds).',
      labelNames: ['pair', 'name'],
      registers,
    });
    this.connected = new Gauge({
      name: 'kakehi_pki_proxy_connected',
      help: 'Whether the connector is connected to the proxy command socket.',
      registers,
    });
    this.syncs = new Counter({
      name: 'kakehi_pki_syncs_total',
      help: 'Reconciliations with the proxy, by result.',
      labelNames: ['result'],
      registers,
    });
    this.syncs.inc({ result: 'ok' }, 0);
    this.syncs.inc({ result: 'error' }, 0);
    this.changes = new Counter({
      name: 'kakehi_pki_changes_total',
      help: 'Certificate changes applied by the proxy, by operation.',
      labelNames: ['op'],
      registers,
    });
    this.changes.inc({ op: 'put_certificate' }, 0);
    this.changes.inc({ op: 'delete_certificate' }, 0);
    this.lastSync = new Gauge({
      name: 'kakehi_pki_last_sync_success_timestamp_seconds',
      help: 'When the proxy last matched the directories (Unix seconds).',
      registers,
    });
    this.certificates = new Gauge({
      name: 'kakehi_pki_certificates',
      help: 'Certificates (listener and fingerprint) the directories want served.',
      registers,
    });
    this.scans = new Counter({
      name: 'kakehi_pki_scans_total',
      help: 'Directory scans (after watch events and periodic rescans).',
      registers,
    });
    this.missedChanges = new Counter({
      name: 'kakehi_pki_unannounced_changes_total',
      help: 'Pairs whose files the periodic stat check found changed though no watch event announced it.',
      registers,
    });
    this.expiryWarnings = new Counter({
      name: 'kakehi_pki_expiry_warnings_total',
      help: 'Expiry warnings logged, by threshold in days (0 = expired).',
      labelNames: ['threshold_days'],
      registers,
    });
  }
}
