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
import { decideTokens } from "./token-limits.ts";
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
 * run when the key has a `run_limit` (runs.ts).
 */
export function decide(
  cfg: KeyConfig | null,
  counters: Counters,
  held: HeldTotals,
  input: AdmitInput,
  now: number,
  run: AdmitRun | null = null,
): Decision {
  if (!authentic(cfg, input.secretHash, now)) return { ok: false, refusal: unauthentic(cfg, input.secretHash, now) };
  const shape = cfg.requestShape;
  const refuse = (code: Refusal["code"], message: string, extra: Partial<Refusal> = {}): Decision => ({
    ok: false,
    refusal: { ok: false, shape, code, message, limit: refusalLimit(code), ...extra },
  });
  if (cfg.status === "paused") return refuse("key_paused", "This spend key is paused by its owner.");
  if (cfg.requestShape !== input.routeShape) {
    const where =
      shape === "openai"
        ? "the OpenAI-shaped routes (/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions, …)"
        : "the Anthropic-shaped routes (/v1/messages)";
    return refuse("model_not_allowed", `This spend key has request_shape '${shape}': call ${where}.`, {
      limit: "shape",
    });
  }
  const target = input.target;
  if (!target) {
    return refuse("model_not_found", `The model '${input.model}' does not exist or is not in the gateway's catalog.`);
  }
  // A key scoped to a model may call it by any id of the same priced model (aliases, snapshots: catalog/scope.ts).
  if (!allowsModel(cfg.allowedModels, input.model)) {
    return refuse("model_not_allowed", `This spend key may not use the model '${input.model}'.`);
  }
  if (cfg.allowedProviders && !cfg.allowedProviders.includes(target.provider)) {
    return refuse("model_not_allowed", `This spend key may not use the provider '${target.provider}'.`, {
      limit: "provider",
    });
  }
  if (input.unavailable) return refuse(input.unavailable.code, input.unavailable.message, { limit: "unavailable" });
  // A run's spend limit needs a price and a bound as the key's does.
  const runSpend = input.metered ? runSpendRoom(cfg, run) : null;
  const spendCapped = cfg.spendLimit !== null || runSpend !== null;
  // A request the gateway cannot bound (the client can fix it) before one it cannot price (the operator can).
  if (spendCapped && target.unbounded) return refuse("invalid_request", target.unbounded, { limit: "unbounded" });
  const tokenLimited = cfg.tokenLimit !== null || cfg.tokensPerMinute !== null;
  if (input.metered && tokenLimited && target.tokensUnbounded) {
    return refuse("invalid_request", target.tokensUnbounded, { limit: "unbounded" });
  }
  if (spendCapped && !target.prices) {
    const why = target.unpricedNote ?? `The model '${input.model}' has no price.`;
    const which = cfg.spendLimit ? "a spend limit" : "a run spend limit";
    return refuse("model_not_priced", `${why} This spend key has ${which}, so the gateway cannot meter it.`);
  }

  const c = roll(cfg, counters, now);
  if (held.count >= input.maxInflight) {
    return refuse("too_many_concurrent_requests", `This spend key already has ${held.count} requests in flight.`, {
      details: { limit: "concurrency", count: input.maxInflight, current: held.count },
      retryAfterMs: 1_000,
    });
  }
  if (run?.fullForMs !== undefined) {
    const seconds = Math.ceil(run.fullForMs / 1000);
    const live = run.live ?? MAX_RUNS_PER_KEY;
    return refuse(
      "too_many_runs",
      `This spend key already has ${live} live runs, its most: run '${run.state.id}' cannot start until the ` +
        `longest-idle run ends (in ${seconds}s). Reuse a run id, or send the request without one.`,
      {
        details: { limit: "runs", count: MAX_RUNS_PER_KEY, current: live, run: run.state.id },
        retryAfterMs: run.fullForMs,
      },
    );
  }
  // count_tokens (unmetered) obeys the in-flight cap and the rate, but is neither counted nor charged.
  if (input.metered && cfg.requestLimit && c.currentRequests >= cfg.requestLimit.count) {
    const { count, cycle } = cfg.requestLimit;
    const reset = untilReset(cycle, now);
    return refuse("request_limit_exceeded", `Request limit reached: ${count} requests per ${cycleWord(cycle)}.`, {
      details: { limit: "requests", count, current: c.currentRequests, cycle, resets_at: reset.resetsAt },
      terminal: true,
      ...reset.retry,
    });
  }
  const runLimit = cfg.runLimit;
  if (input.metered && run && runLimit?.requests != null && run.state.requests >= runLimit.requests) {
    return refuse(
      "run_request_limit_exceeded",
      `Run '${run.state.id}' reached its request limit: ${runLimit.requests} requests per run.`,
      {
        details: { limit: "run_requests", run: run.state.id, count: runLimit.requests, current: run.state.requests },
        terminal: true,
      },
    );
  }
  let hold = input.metered && target.prices ? worstCaseNanos(target.worst, target.prices) : 0;
  let clampedOutputTokens: number | undefined;
  if (input.metered && spendCapped && target.prices && target.clampable && cfg.clampOutput) {
    // A worst case that does not fit, on a key that allows it: the most output the budget affords, if useful — the
    // smaller of what the key's spend limit and the run's leave.
    const keyRoom = cfg.spendLimit ? cfg.spendLimit.nanos - c.currentSpendNanos - held.nanos : Number.POSITIVE_INFINITY;
    const room = Math.min(keyRoom, runSpend ? runSpend.room : Number.POSITIVE_INFINITY);
    if (hold > room) {
      const k = affordableOutputTokens(target.worst, target.prices, room);
      if (k >= MIN_CLAMPED_OUTPUT_TOKENS && k < target.worst.outputTokens) {
        clampedOutputTokens = k;
        hold = worstCaseNanos({ ...target.worst, outputTokens: k }, target.prices);
      }
    }
  }
  if (input.metered && cfg.spendLimit) {
    const { nanos, cycle } = cfg.spendLimit;
    const committed = c.currentSpendNanos + held.nanos;
    // Spend at or over the limit (an overage) refuses everything until the cycle resets or the limit rises.
    if (c.currentSpendNanos >= nanos || committed + hold > nanos) {
      // Whether the settled spend alone refuses it — the request at its smallest (the least output a clamp grants)
      // with nothing in flight — or only the holds of the requests in flight do, which settle within seconds.
      const smallest =
        target.prices && target.clampable && cfg.clampOutput
          ? worstCaseNanos(
              { ...target.worst, outputTokens: Math.min(MIN_CLAMPED_OUTPUT_TOKENS, target.worst.outputTokens) },
              target.prices,
            )
          : hold;
      const exhausted = c.currentSpendNanos >= nanos || c.currentSpendNanos + smallest > nanos;
      const reset = untilReset(cycle, now);
      const per = `per ${cycleWord(cycle)}`;
      const why = target.holdNote ? `, ${target.holdNote}` : "";
      const message =
        c.currentSpendNanos >= nanos
          ? `Spend limit reached: $${formatUsd(c.currentSpendNanos)} of $${formatUsd(nanos)} ${per} used.`
          : `This request's worst-case cost ($${formatUsd(hold)}${why}) does not fit the spend limit: ` +
            `$${formatUsd(Math.max(0, nanos - committed))} of $${formatUsd(nanos)} ${per} is left. ` +
            (target.clampable && cfg.clampOutput
              ? `Even ${MIN_CLAMPED_OUTPUT_TOKENS} output tokens do not fit: raise the limit.`
              : "Lower max_tokens or raise the limit.");
      return refuse("spend_limit_exceeded", message, {
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
  }
  if (run && runSpend && (run.state.spendNanos >= runSpend.limit || hold > runSpend.room)) {
    const left = formatUsd(Math.max(0, runSpend.room));
    const of = `$${formatUsd(runSpend.limit)} per run`;
    const why = target.holdNote ? `, ${target.holdNote}` : "";
    const message =
      run.state.spendNanos >= runSpend.limit
        ? `Run '${run.state.id}' reached its spend limit: $${formatUsd(run.state.spendNanos)} of ${of} used.`
        : `This request's worst-case cost ($${formatUsd(hold)}${why}) does not fit run '${run.state.id}': ` +
          `$${left} of ${of} is left. ` +
          (target.clampable && cfg.clampOutput
            ? `Even ${MIN_CLAMPED_OUTPUT_TOKENS} output tokens do not fit.`
            : "Lower max_tokens.");
    return refuse("run_spend_limit_exceeded", message, {
      details: {
        limit: "run_spend",
        run: run.state.id,
        amount: formatUsd(runSpend.limit),
        current: formatUsd(run.state.spendNanos),
      },
      terminal: true,
    });
  }
  // The token limits, with the output the spend limit left: a further clamp only lowers it (and the spend hold).
  let holdTokens = 0;
  if (input.metered) {
    const output = clampedOutputTokens ?? target.worst.outputTokens;
    const tokens = decideTokens(cfg, c, held, target, output, now);
    if (!tokens.ok) {
      const { code, message, details, terminal, retryAfterMs } = tokens;
      return refuse(code, message, {
        details,
        ...(terminal ? { terminal } : {}),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    holdTokens = tokens.holdTokens;
    if (tokens.clampedOutputTokens !== undefined) {
      clampedOutputTokens = tokens.clampedOutputTokens;
      if (target.prices) hold = worstCaseNanos({ ...target.worst, outputTokens: clampedOutputTokens }, target.prices);
    }
  }
  let tat = c.tat;
  let rate: RateState | null = null;
  if (cfg.rateLimit) {
    const { rpm, burst } = cfg.rateLimit;
    const check = checkRate(c.tat, now, rpm, burst);
    if (!check.allowed) {
      const seconds = Math.ceil(check.retryAfterMs / 1000);
      return refuse(
        "rate_limit_exceeded",
        `Rate limit reached: ${rpm} requests per minute (burst ${burst}). Retry after ${seconds}s.`,
        {
          details: { limit: "rate", count: rpm, current: burst, resets_at: iso(now + check.retryAfterMs) },
          retryAfterMs: check.retryAfterMs,
        },
      );
    }
    tat = check.tat;
    rate = { limit: burst, remaining: check.remaining, resetMs: check.resetMs };
  }
  const next: Counters = input.metered
    ? {
        ...c,
        tat,
        currentRequests: c.currentRequests + 1,
        totalRequests: c.totalRequests + 1,
        lastUsedAt: now,
        minuteTokens: c.minuteTokens + holdTokens,
        version: c.version + 1,
      }
    : { ...c, tat, version: c.version + 1 };
  const after = { count: held.count + 1, nanos: held.nanos + hold, tokens: held.tokens + holdTokens };
  const granted = clampedOutputTokens === undefined ? {} : { clampedOutputTokens };
  const result = { ok: true as const, shape, target, counters: next, hold, holdTokens, rate };
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
