// Tells systemd about main (Type=notify in packaging/systemd/kakehi.service):
// READY=1 once every worker serves, and the new main pid after
// `ctl upgrade --main`. Node has no unix-datagram socket, so this runs
// systemd-notify, which waits until systemd has read the message (without
// --no-block), so the notice cannot outrace the old main's exit.

import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.js';

const NOTIFY_TIMEOUT_MS = 5_000;

/** Runs `systemd-notify args` when started by systemd with a notify socket; otherwise does nothing. */
export function notifySystemd(args: string[], log: Logger): Promise<void> {
  if (process.env['NOTIFY_SOCKET'] === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    execFile('systemd-notify', args, { timeout: NOTIFY_TIMEOUT_MS }, (err, _out, stderr) => {
      if (err) log.error({ err: err.message, stderr, args }, 'systemd-notify failed');
      else log.debug({ args }, 'systemd notified');
      resolve();
    });
  });
}
