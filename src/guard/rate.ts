/**
 * Requests-per-minute with a burst, as GCRA (a token bucket kept as one timestamp, the theoretical arrival
 * time). The state is a number persisted with the key's counters and computed lazily from the clock, so an
 * evicted Durable Object never refills its bucket. Over any window of W ms the accepted requests are at most
 * burst + rpm·W/60000.
 */

export interface RateCheck {
  allowed: boolean;
  /** the TAT to store when allowed */
  tat: number;
  remaining: number;
  /** ms until the bucket is full again */
  resetMs: number;
  /** ms until one request fits (0 when allowed) */
  retryAfterMs: number;
}

export function checkRate(tat: number, now: number, rpm: number, burst: number): RateCheck {
  const interval = 60_000 / rpm;
  const tolerance = burst * interval;
  const next = Math.max(tat, now) + interval;
  const ahead = next - now;
  if (ahead > tolerance + 1e-9) {
    const current = Math.max(tat, now) - now;
    return {
      allowed: false,
      tat,
      remaining: 0,
      resetMs: Math.ceil(current),
      retryAfterMs: Math.max(1, Math.ceil(ahead - tolerance)),
    };
  }
  return {
    allowed: true,
    tat: next,
    remaining: Math.floor((tolerance - ahead) / interval + 1e-9),
    resetMs: Math.ceil(ahead),
    retryAfterMs: 0,
  };
}

/** Bucket state without taking a request (for headers and `GET /v1/key`). */
export function peekRate(tat: number, now: number, rpm: number, burst: number) {
  const interval = 60_000 / rpm;
  const ahead = Math.max(tat, now) - now;
  return {
    limit: burst,
    remaining: Math.floor((burst * interval - ahead) / interval + 1e-9),
    resetMs: Math.ceil(ahead),
  };
}
