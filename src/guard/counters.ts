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
  tokenPeriodStart: 0,
  currentTokens: 0,
  totalTokens: 0,
  minuteStart: 0,
  minuteTokens: 0,
  tat: 0,
  version: 0,
});

const MINUTE_MS = 60_000;
/** The start of the UTC minute of `at`: the window `tokens_per_minute` counts in. */
export const minuteOf = (at: number) => at - (at % MINUTE_MS);

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
  if (cfg?.tokenLimit) {
    const start = periodStart(cfg.tokenLimit.cycle, now);
    if (start !== c.tokenPeriodStart) next = { ...next, tokenPeriodStart: start, currentTokens: 0 };
  }
  // The minute is kept with or without a per-minute limit, so a limit set mid-minute sees the minute's tokens.
  const minute = minuteOf(now);
  if (minute !== c.minuteStart) next = { ...next, minuteStart: minute, minuteTokens: 0 };
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
  if (prev?.tokenLimit?.cycle !== next.tokenLimit?.cycle) {
    out.currentTokens = 0;
    out.tokenPeriodStart = next.tokenLimit ? periodStart(next.tokenLimit.cycle, now) : 0;
  }
  return out;
}

/** What a settled request counts toward the token limits, and what its hold reserved. */
export interface TokenCharge {
  /** the tokens it counts (reported, else the estimate its charge used) */
  counted: number;
  /** the tokens its hold reserved */
  held: number;
  /** when it was admitted: its tokens belong to that UTC minute */
  admittedAt: number;
}

/**
 * The counters after charging `costNanos` and counting `tokens` for a settled request. Its minute's count trades
 * the hold for the tokens counted while that minute lasts; a later settle leaves a past minute alone.
 */
export function charge(
  cfg: KeyConfig | null,
  c: Counters,
  costNanos: number,
  now: number,
  tokens: TokenCharge = { counted: 0, held: 0, admittedAt: 0 },
): Counters {
  const rolled = roll(cfg, c, now);
  const sameMinute = minuteOf(tokens.admittedAt) === rolled.minuteStart;
  return {
    ...rolled,
    currentSpendNanos: rolled.currentSpendNanos + costNanos,
    totalSpendNanos: rolled.totalSpendNanos + costNanos,
    currentTokens: rolled.currentTokens + tokens.counted,
    totalTokens: rolled.totalTokens + tokens.counted,
    minuteTokens: sameMinute ? Math.max(0, rolled.minuteTokens - tokens.held + tokens.counted) : rolled.minuteTokens,
    version: rolled.version + 1,
  };
}

/** What the token limits leave: the cycle's after its count and open holds, the minute's after its count. */
export function tokenRoom(cfg: KeyConfig | null, c: Counters, held: HeldTotals) {
  return {
    cycle: cfg?.tokenLimit ? Math.max(0, cfg.tokenLimit.count - c.currentTokens - held.tokens) : null,
    minute: cfg?.tokensPerMinute ? Math.max(0, cfg.tokensPerMinute - c.minuteTokens) : null,
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
  const room = tokenRoom(cfg, c, held);
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
    currentTokens: visibleCurrent(
      cfg?.tokenLimit?.cycle ?? null,
      c.tokenPeriodStart,
      c.currentTokens,
      c.totalTokens,
      now,
    ),
    totalTokens: c.totalTokens,
    spendPeriodStart: c.spendPeriodStart,
    requestPeriodStart: c.requestPeriodStart,
    heldNanos: held.nanos,
    heldTokens: held.tokens,
    remainingSpendNanos: budget(cfg, c, held).remainingNanos,
    remainingTokens: room.cycle,
    remainingTokensThisMinute: room.minute,
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
