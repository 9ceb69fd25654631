// What the connector tells the proxy about itself (report_connector_status, shown
// by `kakehi ctl connectors`): at once when something changes, at most once a
// second, and every 30 s so its age stays fresh. Best effort: the proxy may be away.

import type { CommandClient } from '../../src/client/command-client.js';
import type { ConnectorReportBody } from '../../src/command/protocol.js';
import type { Logger } from '../../src/log/logger.js';

const EVERY_MS = 30_000;
const THROTTLE_MS = 1_000;

export type Report = ConnectorReportBody;

export class StatusReporter {
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #last = 0;

  constructor(
    private readonly proxy: CommandClient,
    private readonly log: Logger,
    private readonly report: () => Report,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.now(), EVERY_MS);
    this.#timer.unref();
  }

  /** Reports within a second, once for any number of calls meanwhile. */
  soon(): void {
    if (this.#soon !== undefined) return;
    this.#soon = setTimeout(
      () => {
        this.#soon = undefined;
        this.now();
      },
      Math.max(0, this.#last + THROTTLE_MS - Date.now()),
    );
    this.#soon.unref();
  }

  now(): void {
    if (!this.proxy.connected) return;
    this.#last = Date.now();
    this.proxy
      .request('report_connector_status', { ...this.report(), pid: process.pid })
      .catch((err: Error) => this.log.debug({ err: err.message }, 'status report not delivered'));
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
  }
}
