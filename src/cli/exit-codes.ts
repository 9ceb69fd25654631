// Exit codes of every kakehi command; scripts rely on them (docs/operations.md).

export const EXIT = {
  OK: 0,
  /** The command ran and failed: a listener could not bind, the proxy crashed. */
  FAILURE: 1,
  /** The command line is wrong. */
  USAGE: 2,
  /** The configuration is invalid or unreadable. */
  CONFIG: 3,
  /** `kakehi ctl`: the proxy is unreachable (no socket, refused, timeout, connection lost). */
  UNREACHABLE: 4,
} as const;
