import { periodStart, visibleCurrent } from "../lib/cycles.ts";
import { peekRate } from "./rate.ts";
import type { Budget, Counters, HeldTotals, KeyConfig, KeySnapshot, RateState } from "./types.ts";

/**
 * A key's counters as pure functions of (configuration, counters, open holds, now): cycles roll lazily, a
 * charge adds to both the period and the total, and a snapshot is what management and `GET /v1/key` show.
 */

export const freshCounters = (): Counters => ({
  spendPeriodStart: 0,
  currentSpendNanos: 0,
  totalSpendNanos: 0,
  requestPeriodStart: 0,
  currentRequests: 0,
  totalRequests: 0,
  lastUsedAt: null,
  tat: 0,
  version: 0,
});

/** Lazy cycle reset: the counters of "now"'s period (a new object when a period rolled over). */
export function roll(cfg: KeyConfig | null, c: Counters, now: number): Counters {
  let next = c;
  if (cfg?.spendLimit) {
    const start = periodStart(cfg.spendLimit.cycle, now);
    if (start !== c.spendPeriodStart) next = { ...next, spendPeriodStart: start, currentSpendNanos: 0, alerted: [] };
  }
  if (cfg?.requestLimit) {
    const start = periodStart(cfg.requestLimit.cycle, now);
    if (start !== c.requestPeriodStart) next = { ...next, requestPeriodStart: start, currentRequests: 0 };
  }
  return next;
}

/** A new configuration: an amount change keeps the period's usage; a cycle change counts from the new period. */
export function reconfigure(prev: KeyConfig | null, next: KeyConfig, c: Counters, now: number): Counters {
  const out = { ...roll(prev, c, now), version: c.version + 1 };
  if (prev?.spendLimit?.cycle !== next.spendLimit?.cycle) {
    out.currentSpendNanos = 0;
    out.alerted = [];
    out.spendPeriodStart = next.spendLimit ? periodStart(next.spendLimit.cycle, now) : 0;
  }
  if (prev?.requestLimit?.cycle !== next.requestLimit?.cycle) {
    out.currentRequests = 0;
    out.requestPeriodStart = next.requestLimit ? periodStart(next.requestLimit.cycle, now) : 0;
  }
  return out;
}

/** The counters after charging `costNanos` to a settled request. */
export function charge(cfg: KeyConfig | null, c: Counters, costNanos: number, now: number): Counters {
  const rolled = roll(cfg, c, now);
  return {
    ...rolled,
    currentSpendNanos: rolled.currentSpendNanos + costNanos,
    totalSpendNanos: rolled.totalSpendNanos + costNanos,
    version: rolled.version + 1,
  };
}

export function budget(cfg: KeyConfig | null, c: Counters, held: HeldTotals): Budget {
  const limit = cfg?.spendLimit?.nanos ?? null;
  return {
    limitNanos: limit,
    remainingNanos: limit === null ? null : Math.max(0, limit - c.currentSpendNanos - held.nanos),
  };
}

export function rateState(cfg: KeyConfig | null, c: Counters, now: number): RateState | null {
  const r = cfg?.rateLimit;
  return r ? peekRate(c.tat, now, r.rpm, r.burst) : null;
}

/** Exact live counters (with cycle resets applied) as management and `GET /v1/key` show them. */
export function snapshot(cfg: KeyConfig | null, counters: Counters, held: HeldTotals, now: number): KeySnapshot {
  const c = roll(cfg, counters, now);
  return {
    currentSpendNanos: visibleCurrent(
      cfg?.spendLimit?.cycle ?? null,
      c.spendPeriodStart,
      c.currentSpendNanos,
      c.totalSpendNanos,
      now,
    ),
    totalSpendNanos: c.totalSpendNanos,
    currentRequests: visibleCurrent(
      cfg?.requestLimit?.cycle ?? null,
      c.requestPeriodStart,
      c.currentRequests,
      c.totalRequests,
      now,
    ),
    totalRequests: c.totalRequests,
    spendPeriodStart: c.spendPeriodStart,
    requestPeriodStart: c.requestPeriodStart,
    heldNanos: held.nanos,
    remainingSpendNanos: budget(cfg, c, held).remainingNanos,
    openHolds: held.count,
    lastUsedAt: c.lastUsedAt,
    rate: rateState(cfg, c, now),
    carvedNanos: c.carvedNanos ?? 0,
  };
}

/**
 * The alert thresholds this period's spend has reached and that have not fired yet; `counters` returned with
 * them marked, so each fires once a cycle (the KeyGuard persists both in one transaction).
 */
export function reachedThresholds(cfg: KeyConfig | null, c: Counters): { counters: Counters; reached: number[] } {
  const limit = cfg?.spendLimit?.nanos;
  if (!limit || !cfg) return { counters: c, reached: [] };
  const fired = c.alerted ?? [];
  const reached = cfg.alertThresholds.filter((t) => !fired.includes(t) && c.currentSpendNanos >= t * limit);
  return reached.length ? { counters: { ...c, alerted: [...fired, ...reached] }, reached } : { counters: c, reached };
}
