// The process log: pino JSON on stderr, one line per event. The access log is
// a separate stream (access-log.ts), so either can be shipped on its own.

import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'kakehi'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
