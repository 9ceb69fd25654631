// The process log: pino JSON on stderr, one line per event. The access log is
// a separate stream (access-log.ts), so either can be shipped on its own.

import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Where a private key could sit in something logged by mistake (a change, a
 * certificate object): pino replaces it. No code logs these on purpose; this
 * is the second line of defence (docs/tls.md).
 */
const REDACT = [
  'certificate.key',
  'change.certificate.key',
  'changes[*].certificate.key',
  '*.certificate.key',
  'selfSigned.key',
  'frontend.basic_auth.users[*].password_hash',
  'change.frontend.basic_auth.users[*].password_hash',
  'cluster.backend_tls.client_key',
  'change.cluster.backend_tls.client_key',
  'changes[*].cluster.backend_tls.client_key',
  '*.cluster.backend_tls.client_key',
  'backend_tls.client_key',
];

/**
 * Every kakehi process logs through this, so every process log line has the same
 * shape: `level` as a name, `time` in ISO 8601 UTC (the access log's format too,
 * so lines of both streams sort and join as text), `name`, `pid`, `msg`.
 */
export function createLogger(level: string, name = 'kakehi'): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '<redacted>' },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}
