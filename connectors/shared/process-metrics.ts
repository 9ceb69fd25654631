// What a connector says of its own process on /metrics: resident memory (its
// bounds are visible) and start time (restarts are). prom-client's default
// collection is not used: some of its names (nodejs_active_handles_total, a
// gauge) fail `promtool check metrics`, and every exporter kakehi ships passes it.

import { Gauge, type Registry } from 'prom-client';

export function registerProcessMetrics(registry: Registry): void {
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of the process since unix epoch in seconds.',
    registers: [registry],
  }).set(Math.round(Date.now() / 1000 - process.uptime()));
}
