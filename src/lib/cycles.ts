/**
 * Limit cycles are UTC calendar periods: daily from 00:00, weekly from Monday 00:00, monthly from the 1st,
 * `total` never resets. A period is identified by its start (ms since epoch); counters reset lazily when the
 * period id of "now" differs from the stored one.
 */

export const CYCLES = ["daily", "weekly", "monthly", "total"] as const;
export type Cycle = (typeof CYCLES)[number];

const DAY_MS = 86_400_000;

/** Start of the period containing `now` (ms). `total` → 0. */
export function periodStart(cycle: Cycle, now: number): number {
  const d = new Date(now);
  switch (cycle) {
    case "daily":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case "weekly": {
      const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      const sinceMonday = (d.getUTCDay() + 6) % 7; // getUTCDay: Sunday = 0
      return day - sinceMonday * DAY_MS;
    }
    case "monthly":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case "total":
      return 0;
  }
}

/** When the period containing `now` ends (ms), or null for `total`. */
export function periodEnd(cycle: Cycle, now: number): number | null {
  const start = periodStart(cycle, now);
  const d = new Date(start);
  switch (cycle) {
    case "daily":
      return start + DAY_MS;
    case "weekly":
      return start + 7 * DAY_MS;
    case "monthly":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    case "total":
      return null;
  }
}

/**
 * The `current_*` figure a reader sees: the stored period's count when it is still the period of `now`,
 * zero once it has ended, and the lifetime total when the key has no such limit.
 */
export function visibleCurrent(
  cycle: Cycle | null,
  storedPeriodStart: number,
  storedCurrent: number,
  total: number,
  now: number,
): number {
  if (cycle === null) return total;
  return periodStart(cycle, now) === storedPeriodStart ? storedCurrent : 0;
}
