// The pure parts of active health checks: the rise/fall state machine that
// turns probe outcomes into up and down, the jitter that keeps probes of many
// backends from firing in lockstep, and the expected-status ranges. No timers,
// no sockets, so every edge is checked in unit tests.

/** A backend's health as its probes tell it; `up` until probes say otherwise. */
export interface ProbeHealth {
  up: boolean;
  /** Outcomes in a row that disagree with `up`: good ones while down, failed ones while up. */
  streak: number;
}

export const INITIAL_HEALTH: ProbeHealth = { up: true, streak: 0 };

/**
 * The health after one probe. An up backend goes down after `fall` failed probes
 * in a row, a down one comes up after `rise` good ones in a row; any outcome
 * agreeing with the current state resets the streak (HAProxy's rise/fall).
 */
export function afterProbe(h: ProbeHealth, ok: boolean, rise: number, fall: number): ProbeHealth {
  if (ok === h.up) return h.streak === 0 ? h : { up: h.up, streak: 0 };
  const streak = h.streak + 1;
  if (streak >= (h.up ? fall : rise)) return { up: !h.up, streak: 0 };
  return { up: h.up, streak };
}

/** Taken out by failing real requests (passive): down at once, and `rise` good probes bring it back. */
export function afterPassiveDown(h: ProbeHealth): ProbeHealth {
  return h.up ? { up: false, streak: 0 } : h;
}

/** Share of the interval a delay may move either way. */
export const JITTER_FRACTION = 0.1;

/**
 * The delay before a backend's next probe: the interval moved by up to a tenth
 * either way, so probes of backends started together drift apart. `random` is
 * uniform in [0, 1) like Math.random.
 */
export function jitteredDelay(intervalMs: number, random: number): number {
  const spread = intervalMs * JITTER_FRACTION;
  return Math.max(1, Math.round(intervalMs - spread + 2 * spread * random));
}

/** The first probe of a backend: anywhere within one interval, so a start or reload does not fire them all at once. */
export function firstDelay(intervalMs: number, random: number): number {
  return Math.max(1, Math.floor(intervalMs * random));
}

/** Parses a checked `expect_status` ("200-399", "200,204") into inclusive ranges. */
export function statusRanges(spec: string): [number, number][] {
  return spec.split(',').map((part) => {
    const [lo, hi] = part.split('-').map((x) => Number(x.trim()));
    return [lo!, hi ?? lo!];
  });
}

export function statusExpected(status: number, ranges: readonly [number, number][]): boolean {
  return ranges.some(([lo, hi]) => status >= lo && status <= hi);
}
