// One JSON line per request (and per tcp/tls connection) on its own stream (stdout, stderr or a file),
// written from the data plane's request events rather than from the hot path.

import { openSync } from 'node:fs';
import { type RequestEnd, requestEnd } from '../proxy/request-events.js';
import { type TcpConnectionEnd, tcpConnectionEnd } from '../proxy/tcp-events.js';
import { ACCESS_LOG_FIELD_NAMES, type AccessLogField, lineMaker, tcpLineMaker } from './access-log-fields.js';
import { LineWriter } from './line-writer.js';

export interface AccessLog {
  /** Opens its file again (after logrotate's rename); stdout and stderr stay. */
  reopen(): void;
  /** Flushes and detaches. */
  close(): void;
}

export function startAccessLog(
  target: string,
  fields: readonly AccessLogField[] = ACCESS_LOG_FIELD_NAMES,
): AccessLog {
  if (target === 'off') return { reopen() {}, close() {} };
  let fd: number;
  if (target === 'stdout') fd = 1;
  else if (target === 'stderr') fd = 2;
  else {
    // No mkdir: a missing directory is the operator's to create (kakehi validate names it).
    fd = openSync(target, 'a'); // O_APPEND: small writes from every worker land whole
  }
  const dest = new LineWriter(fd);
  const make = lineMaker(fields);
  // One request per line; no level or pino time: `time` is when it ended
  // (events are delivered as they are published, so that is now).
  const onEnd = (message: unknown) => {
    dest.write(`${JSON.stringify(make(message as RequestEnd))}\n`);
  };
  requestEnd.subscribe(onEnd);
  const makeTcp = tcpLineMaker(fields);
  const onTcpEnd = (message: unknown) => {
    dest.write(`${JSON.stringify(makeTcp(message as TcpConnectionEnd))}\n`);
  };
  tcpConnectionEnd.subscribe(onTcpEnd);
  return {
    reopen() {
      if (fd <= 2) return;
      // A failure (the directory went away) keeps the old descriptor: lines still land somewhere.
      try {
        fd = openSync(target, 'a');
      } catch {
        return;
      }
      dest.reopen(fd, true);
    },
    close() {
      requestEnd.unsubscribe(onEnd);
      tcpConnectionEnd.unsubscribe(onTcpEnd);
      dest.flushSync();
    },
  };
}
