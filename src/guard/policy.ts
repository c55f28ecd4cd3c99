import { affordableOutputTokens, worstCaseNanos } from "../catalog/pricing.ts";
import { allowsModel } from "../catalog/scope.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../keys/record.ts";
import { type Cycle, periodEnd } from "../lib/cycles.ts";
import { INVALID_API_KEY_MESSAGE, refusalLimit } from "../lib/errors.ts";
import { hashesEqual } from "../lib/keys.ts";
import { formatUsd } from "../lib/money.ts";
import { budget, roll } from "./counters.ts";
import { checkRate } from "./rate.ts";
import { type AdmitRun, MAX_RUNS_PER_KEY, runSpendRoom } from "./runs.ts";
import { decideTokens, leastOutput } from "./token-limits.ts";
import type { AdmitInput, AdmitResult, Budget, Counters, HeldTotals, KeyConfig, RateState } from "./types.ts";

/**
 * The KeyGuard's admission rules as pure functions of (configuration, counters, open holds, input, now): the
 * refusal order and the messages (the counters' own arithmetic is in counters.ts). No storage and no clock of
 * their own, so they are tested directly; the Durable Object only persists what they return.
 */

export type Refusal = Extract<AdmitResult, { ok: false }>;

export type Decision =
  | { ok: false; refusal: Refusal }
  | {
      ok: true;
      shape: KeyConfig["requestShape"];
      target: NonNullable<AdmitInput["target"]>;
      counters: Counters;
      hold: number;
      /** the tokens the hold reserves against the token limits */
      holdTokens: number;
      rate: RateState | null;
      budget: Budget;
      /** the per-choice output limit granted when the budget could not cover the request's own */
      clampedOutputTokens?: number;
    };

/**
 * The key's current secret, or the one a rotation replaced while its grace period lasts (pause and revoke end it).
 */
export function secretMatches(cfg: KeyConfig, secretHash: string, now: number): boolean {
  if (hashesEqual(cfg.secretHash, secretHash)) return true;
  const grace = cfg.previousSecret;
  return grace !== null && now < grace.until && hashesEqual(grace.hash, secretHash);
}

/** The right secret, not revoked, not expired. */
export function authentic(cfg: KeyConfig | null, secretHash: string, now: number): cfg is KeyConfig {
  if (!cfg || !secretMatches(cfg, secretHash, now)) return false;
  return !cfg.revoked && (cfg.expiresAt === null || now < cfg.expiresAt);
}

/**
 * Why a key is not authentic. A caller without the key's right secret learns nothing (every bad key reads the
 * same); one with it is told the key was revoked or has expired, so an agent stops retrying and says why.
 */
function unauthentic(cfg: KeyConfig | null, secretHash: string, now: number): Refusal {
  if (!cfg || !secretMatches(cfg, secretHash, now)) {
    return { ok: false, shape: null, code: "invalid_api_key", message: INVALID_API_KEY_MESSAGE, limit: "key" };
  }
  const refusal = { ok: false as const, shape: cfg.requestShape, terminal: true };
  return cfg.revoked
    ? { ...refusal, code: "key_revoked", limit: "revoked", message: "This spend key has been revoked by its owner." }
    : {
        ...refusal,
        code: "key_expired",
        limit: "expiry",
        message: `This spend key expired at ${iso(cfg.expiresAt ?? now)}.`,
      };
}

/**
 * Admission, in this order: the key (401), its status and scopes (403/404/400), then the in-flight cap, the
 * key's bound on live runs, the request limit, the run's request limit, the spend limit with this request's hold,
 * the run's spend limit with the same hold, the token limits with its token hold (token-limits.ts), and the rate
 * (429). The rate is checked last so a refused request never spends a token of the bucket. `run`: the request's
 * run when the key has a `run_limit` (runs.ts). Each step below is one of these checks, in this order.
 */
export function decide(
  cfg: KeyConfig | null,
  counters: Counters,
  held: HeldTotals,
  input: AdmitInput,
  now: number,
  run: AdmitRun | null = null,
): Decision {
  if (!authentic(cfg, input.secretHash, now)) return refused(unauthentic(cfg, input.secretHash, now));
  const status = statusRefusal(cfg, input);
  if (status) return refused(status);
  const target = input.target;
  if (!target) {
    return refused(
      refusal(cfg, "model_not_found", `The model '${input.model}' does not exist or is not in the gateway's catalog.`),
    );
  }
  // A run's spend limit needs a price and a bound as the key's does.
  const runSpend = input.metered ? runSpendRoom(cfg, run) : null;
  const outOfScope = scopeRefusal(cfg, input, target) ?? meterRefusal(cfg, input, target, runSpend !== null);
  if (outOfScope) return refused(outOfScope);

  const a: Ask = { cfg, c: roll(cfg, counters, now), held, input, target, run, runSpend, now };
  const counted = concurrencyRefusal(a) ?? requestRefusal(a);
  if (counted) return refused(counted);
  const spend = spendHold(a);
  const spent = spendRefusal(a, spend) ?? runSpendRefusal(a, spend);
  if (spent) return refused(spent);
  const hold = tokenHold(a, spend);
  if ("code" in hold) return refused(hold);
  const rate = rateStep(a);
  if ("code" in rate) return refused(rate);
  return admitted(a, hold, rate);
}

type Target = NonNullable<AdmitInput["target"]>;
/** What an admitted request holds: its worst-case cost and tokens, and the output limit a clamp granted. */
interface Hold {
  nanos: number;
  tokens: number;
  clampedOutputTokens: number | undefined;
}
/** The run's spend limit and what is left of it (runs.ts › runSpendRoom). */
type RunSpend = ReturnType<typeof runSpendRoom>;
/** What the steps after the scopes read: the key, its counters rolled to now, the open holds, the request. */
interface Ask {
  cfg: KeyConfig;
  c: Counters;
  held: HeldTotals;
  input: AdmitInput;
  target: Target;
  run: AdmitRun | null;
  runSpend: RunSpend;
  now: number;
}

/** The bucket's next state and the rate headers' figures (null without a rate limit). */
interface Rated {
  tat: number;
  rate: RateState | null;
}

const refused = (refusal: Refusal): Decision => ({ ok: false, refusal });

/** A refusal of a key whose secret was right: it answers in the key's request shape. */
function refusal(cfg: KeyConfig, code: Refusal["code"], message: string, extra: Partial<Refusal> = {}): Refusal {
  return { ok: false, shape: cfg.requestShape, code, message, limit: refusalLimit(code), ...extra };
}

/** A paused key, or a route of the other request shape: nothing about the request itself matters yet. */
function statusRefusal(cfg: KeyConfig, input: AdmitInput): Refusal | null {
  if (cfg.status === "paused") return refusal(cfg, "key_paused", "This spend key is paused by its owner.");
  if (cfg.requestShape === input.routeShape) return null;
  const where =
    cfg.requestShape === "openai"
      ? "the OpenAI-shaped routes (/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions, …)"
      : "the Anthropic-shaped routes (/v1/messages)";
  return refusal(cfg, "model_not_allowed", `This spend key has request_shape '${cfg.requestShape}': call ${where}.`, {
    limit: "shape",
  });
}

/** The key's scopes (model, provider), and a model the gateway cannot serve now. */
function scopeRefusal(cfg: KeyConfig, input: AdmitInput, target: Target): Refusal | null {
  // A key scoped to a model may call it by any id of the same priced model (aliases, snapshots: catalog/scope.ts).
  if (!allowsModel(cfg.allowedModels, input.model)) {
    return refusal(cfg, "model_not_allowed", `This spend key may not use the model '${input.model}'.`);
  }
  if (cfg.allowedProviders && !cfg.allowedProviders.includes(target.provider)) {
    return refusal(cfg, "model_not_allowed", `This spend key may not use the provider '${target.provider}'.`, {
      limit: "provider",
    });
  }
  if (input.unavailable) {
    return refusal(cfg, input.unavailable.code, input.unavailable.message, { limit: "unavailable" });
  }
  return null;
}

/** A limited key cannot admit what it cannot bound or price: its limits would not hold. */
function meterRefusal(cfg: KeyConfig, input: AdmitInput, target: Target, runCapped: boolean): Refusal | null {
  const spendCapped = cfg.spendLimit !== null || runCapped;
  // A request the gateway cannot bound (the client can fix it) before one it cannot price (the operator can).
  if (spendCapped && target.unbounded) return refusal(cfg, "invalid_request", target.unbounded, { limit: "unbounded" });
  const tokenLimited = cfg.tokenLimit !== null || cfg.tokensPerMinute !== null;
  if (input.metered && tokenLimited && target.tokensUnbounded) {
    return refusal(cfg, "invalid_request", target.tokensUnbounded, { limit: "unbounded" });
  }
  if (spendCapped && !target.prices) {
    const why = target.unpricedNote ?? `The model '${input.model}' has no price.`;
    const which = cfg.spendLimit ? "a spend limit" : "a run spend limit";
    return refusal(cfg, "model_not_priced", `${why} This spend key has ${which}, so the gateway cannot meter it.`);
  }
  return null;
}

/** The in-flight cap and the key's bound on live runs: both clear within seconds, so both say when to retry. */
function concurrencyRefusal({ cfg, held, input, run }: Ask): Refusal | null {
  if (held.count >= input.maxInflight) {
    const message = `This spend key already has ${held.count} requests in flight.`;
    return refusal(cfg, "too_many_concurrent_requests", message, {
      details: { limit: "concurrency", count: input.maxInflight, current: held.count },
      retryAfterMs: 1_000,
    });
  }
  if (run?.fullForMs === undefined) return null;
  const seconds = Math.ceil(run.fullForMs / 1000);
  const live = run.live ?? MAX_RUNS_PER_KEY;
  return refusal(
    cfg,
    "too_many_runs",
    `This spend key already has ${live} live runs, its most: run '${run.state.id}' cannot start until the ` +
      `longest-idle run ends (in ${seconds}s). Reuse a run id, or send the request without one.`,
    {
      details: { limit: "runs", count: MAX_RUNS_PER_KEY, current: live, run: run.state.id },
      retryAfterMs: run.fullForMs,
    },
  );
}

/** The key's request limit in its cycle, then the run's: what a metered request counts against. */
function requestRefusal({ cfg, c, input, run, now }: Ask): Refusal | null {
  // count_tokens (unmetered) obeys the in-flight cap and the rate, but is neither counted nor charged.
  if (!input.metered) return null;
  if (cfg.requestLimit && c.currentRequests >= cfg.requestLimit.count) {
    const { count, cycle } = cfg.requestLimit;
    const reset = untilReset(cycle, now);
    return refusal(cfg, "request_limit_exceeded", `Request limit reached: ${count} requests per ${cycleWord(cycle)}.`, {
      details: { limit: "requests", count, current: c.currentRequests, cycle, resets_at: reset.resetsAt },
      terminal: true,
      ...reset.retry,
    });
  }
  const runLimit = cfg.runLimit;
  if (!run || runLimit?.requests == null || run.state.requests < runLimit.requests) return null;
  return refusal(
    cfg,
    "run_request_limit_exceeded",
    `Run '${run.state.id}' reached its request limit: ${runLimit.requests} requests per run.`,
    {
      details: { limit: "run_requests", run: run.state.id, count: runLimit.requests, current: run.state.requests },
      terminal: true,
    },
  );
}

/**
 * The request's spend hold, its worst-case cost: on a key that clamps, lowered to the most output the budget
 * affords when the worst case does not fit (if still useful), so the request is admitted with less, not refused.
 */
function spendHold({ cfg, c, held, input, target, runSpend }: Ask): Hold {
  const hold: Hold = { nanos: 0, tokens: 0, clampedOutputTokens: undefined };
  if (!input.metered || !target.prices) return hold;
  hold.nanos = worstCaseNanos(target.worst, target.prices);
  const spendCapped = cfg.spendLimit !== null || runSpend !== null;
  if (!spendCapped || !target.clampable || !cfg.clampOutput) return hold;
  // The smaller of what the key's spend limit and the run's leave.
  const keyRoom = cfg.spendLimit ? cfg.spendLimit.nanos - c.currentSpendNanos - held.nanos : Number.POSITIVE_INFINITY;
  const room = Math.min(keyRoom, runSpend ? runSpend.room : Number.POSITIVE_INFINITY);
  if (hold.nanos > room) {
    const k = affordableOutputTokens(target.worst, target.prices, room);
    if (k >= MIN_CLAMPED_OUTPUT_TOKENS && k < target.worst.outputTokens) {
      hold.clampedOutputTokens = k;
      hold.nanos = worstCaseNanos({ ...target.worst, outputTokens: k }, target.prices);
    }
  }
  return hold;
}

/** The key's spend limit: its spend, every open hold and this request's hold never pass it. */
function spendRefusal({ cfg, c, held, input, target, now }: Ask, hold: Hold): Refusal | null {
  if (!input.metered || !cfg.spendLimit) return null;
  const { nanos, cycle } = cfg.spendLimit;
  const committed = c.currentSpendNanos + held.nanos;
  // Spend at or over the limit (an overage) refuses everything until the cycle resets or the limit rises.
  if (c.currentSpendNanos < nanos && committed + hold.nanos <= nanos) return null;
  // Whether the settled spend alone refuses it — the request at its smallest (the least output a clamp grants)
  // with nothing in flight — or only the holds of the requests in flight do, which settle within seconds.
  const smallest =
    target.prices && target.clampable && cfg.clampOutput
      ? worstCaseNanos({ ...target.worst, outputTokens: leastOutput(target) }, target.prices)
      : hold.nanos;
  const exhausted = c.currentSpendNanos >= nanos || c.currentSpendNanos + smallest > nanos;
  const reset = untilReset(cycle, now);
  const per = `per ${cycleWord(cycle)}`;
  const why = target.holdNote ? `, ${target.holdNote}` : "";
  const message =
    c.currentSpendNanos >= nanos
      ? `Spend limit reached: $${formatUsd(c.currentSpendNanos)} of $${formatUsd(nanos)} ${per} used.`
      : `This request's worst-case cost ($${formatUsd(hold.nanos)}${why}) does not fit the spend limit: ` +
        `$${formatUsd(Math.max(0, nanos - committed))} of $${formatUsd(nanos)} ${per} is left. ` +
        (target.clampable && cfg.clampOutput
          ? `Even ${leastOutput(target)} output tokens do not fit: raise the limit.`
          : "Lower max_tokens or raise the limit.");
  return refusal(cfg, "spend_limit_exceeded", message, {
    details: {
      limit: "spend",
      amount: formatUsd(nanos),
      current: formatUsd(c.currentSpendNanos),
      cycle,
      resets_at: reset.resetsAt,
    },
    terminal: true,
    exhausted,
    ...reset.retry,
  });
}

/** The run's spend limit, with the same hold: a run never spends past its share of the key. */
function runSpendRefusal({ cfg, target, run, runSpend }: Ask, hold: Hold): Refusal | null {
  if (!run || !runSpend || (run.state.spendNanos < runSpend.limit && hold.nanos <= runSpend.room)) return null;
  const left = formatUsd(Math.max(0, runSpend.room));
  const of = `$${formatUsd(runSpend.limit)} per run`;
  const why = target.holdNote ? `, ${target.holdNote}` : "";
  const message =
    run.state.spendNanos >= runSpend.limit
      ? `Run '${run.state.id}' reached its spend limit: $${formatUsd(run.state.spendNanos)} of ${of} used.`
      : `This request's worst-case cost ($${formatUsd(hold.nanos)}${why}) does not fit run '${run.state.id}': ` +
        `$${left} of ${of} is left. ` +
        (target.clampable && cfg.clampOutput
          ? `Even ${leastOutput(target)} output tokens do not fit.`
          : "Lower max_tokens.");
  return refusal(cfg, "run_spend_limit_exceeded", message, {
    details: {
      limit: "run_spend",
      run: run.state.id,
      amount: formatUsd(runSpend.limit),
      current: formatUsd(run.state.spendNanos),
    },
    terminal: true,
  });
}

/**
 * The token limits (token-limits.ts), with the output the spend limit left: a further clamp only lowers it, and
 * the spend hold with it. Answers the hold with its tokens, or the refusal.
 */
function tokenHold({ cfg, c, held, input, target, now }: Ask, spend: Hold): Hold | Refusal {
  if (!input.metered) return spend;
  const output = spend.clampedOutputTokens ?? target.worst.outputTokens;
  const tokens = decideTokens(cfg, c, held, target, output, now);
  if (!tokens.ok) {
    const { code, message, details, terminal, retryAfterMs } = tokens;
    return refusal(cfg, code, message, {
      details,
      ...(terminal ? { terminal } : {}),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  const clamped = tokens.clampedOutputTokens;
  if (clamped === undefined) return { ...spend, tokens: tokens.holdTokens };
  const nanos = target.prices ? worstCaseNanos({ ...target.worst, outputTokens: clamped }, target.prices) : spend.nanos;
  return { nanos, tokens: tokens.holdTokens, clampedOutputTokens: clamped };
}

/** The rate (GCRA), last: a request refused by anything else never spends a token of the bucket. */
function rateStep({ cfg, c, now }: Ask): Rated | Refusal {
  if (!cfg.rateLimit) return { tat: c.tat, rate: null };
  const { rpm, burst } = cfg.rateLimit;
  const check = checkRate(c.tat, now, rpm, burst);
  if (!check.allowed) {
    const seconds = Math.ceil(check.retryAfterMs / 1000);
    return refusal(
      cfg,
      "rate_limit_exceeded",
      `Rate limit reached: ${rpm} requests per minute (burst ${burst}). Retry after ${seconds}s.`,
      {
        details: { limit: "rate", count: rpm, current: burst, resets_at: iso(now + check.retryAfterMs) },
        retryAfterMs: check.retryAfterMs,
      },
    );
  }
  return { tat: check.tat, rate: { limit: burst, remaining: check.remaining, resetMs: check.resetMs } };
}

/** The admission: the counters it moves (a metered request counts; every request moves the rate), and its budget. */
function admitted({ cfg, c, held, input, target, now }: Ask, hold: Hold, { tat, rate }: Rated): Decision {
  const next: Counters = input.metered
    ? {
        ...c,
        tat,
        currentRequests: c.currentRequests + 1,
        totalRequests: c.totalRequests + 1,
        lastUsedAt: now,
        minuteTokens: c.minuteTokens + hold.tokens,
        version: c.version + 1,
      }
    : { ...c, tat, version: c.version + 1 };
  const after = { count: held.count + 1, nanos: held.nanos + hold.nanos, tokens: held.tokens + hold.tokens };
  const clampedOutputTokens = hold.clampedOutputTokens;
  const granted = clampedOutputTokens === undefined ? {} : { clampedOutputTokens };
  const shape = cfg.requestShape;
  const result = { ok: true as const, shape, target, counters: next, hold: hold.nanos, holdTokens: hold.tokens, rate };
  return { ...result, budget: budget(cfg, next, after), ...granted };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** When a terminal limit's cycle resets, for `resets_at` and `retry-after` (a `total` limit never does). */
function untilReset(cycle: Cycle, now: number): { resetsAt: string | null; retry: { retryAfterMs?: number } } {
  const end = periodEnd(cycle, now);
  return end === null ? { resetsAt: null, retry: {} } : { resetsAt: iso(end), retry: { retryAfterMs: end - now } };
}

function cycleWord(cycle: Cycle): string {
  return { daily: "day", weekly: "week", monthly: "month", total: "key lifetime" }[cycle];
}
