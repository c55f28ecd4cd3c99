import type { SpendKeyRow } from "../db/schema.ts";
import { type Cycle, periodEnd, visibleCurrent } from "../lib/cycles.ts";
import { formatUsd } from "../lib/money.ts";
import { isoOrNull as iso } from "../lib/time.ts";
import { configOf, type KeyRecord, MIN_CLAMPED_OUTPUT_TOKENS, type RequestShape } from "./record.ts";

/** A rate limit's state as the key's holder sees it (headers, `GET /v1/key`). */
export interface RateState {
  limit: number;
  remaining: number;
  /** ms until the bucket is full again */
  resetMs: number;
}

/** What management and `GET /v1/key` read: exact live counters with resets applied. */
export interface KeySnapshot {
  currentSpendNanos: number;
  totalSpendNanos: number;
  currentRequests: number;
  totalRequests: number;
  currentTokens: number;
  totalTokens: number;
  spendPeriodStart: number;
  requestPeriodStart: number;
  heldNanos: number;
  /** the tokens open holds reserve */
  heldTokens: number;
  /** what the spend limit leaves after spend and open holds (null: no spend limit) */
  remainingSpendNanos: number | null;
  /** what the token limit leaves after the cycle's tokens and open holds (null: no token limit) */
  remainingTokens: number | null;
  /** what `tokens_per_minute` leaves in the current UTC minute (null: no such limit) */
  remainingTokensThisMinute: number | null;
  openHolds: number;
  lastUsedAt: number | null;
  rate: RateState | null;
  /** what the key's children take of its current spend cycle: live carves and the spend of ended children */
  carvedNanos: number;
}

/** The wire form of a spend key: what the management API, `GET /v1/key`, webhooks and the dashboard show. */
export interface SpendKeyView {
  spend_key_id: string;
  key_preview: string;
  name: string;
  status: "active" | "paused";
  request_shape: RequestShape;
  wallet_id: string;
  allowed_models: string[] | null;
  allowed_providers: string[] | null;
  spend_limit: { amount: string; cycle: Cycle } | null;
  current_spend: string;
  total_spend: string;
  request_limit: { count: number; cycle: Cycle } | null;
  current_requests: number;
  total_requests: number;
  rate_limit: { rpm: number; burst: number } | null;
  token_limit: { count: number; cycle: Cycle } | null;
  tokens_per_minute: number | null;
  current_tokens: number;
  total_tokens: number;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
  updated_at: string;
  spend_resets_at: string | null;
  requests_resets_at: string | null;
  tokens_resets_at: string | null;
  alert_thresholds: number[];
  clamp_output: boolean;
  /** the key that minted this one (POST /v1/key/children); null for a key the wallet created */
  parent_key_id: string | null;
  /** what the key may delegate; null: it may not mint child keys */
  delegation: { max_depth: number; max_children: number } | null;
  /** what its children take of its spend cycle: live carves plus the spend of children ended this cycle */
  carved_spend: string;
  previous_secret_expires_at: string | null;
  /** each run's own budget inside the key (`x-spendgate-run`), for the run's lifetime */
  run_limit: { spend: string | null; requests: number | null } | null;
}

/** One run's live figures inside its key (the KeyGuard's; all zeros for a run it does not hold). */
export interface RunSnapshot {
  id: string;
  spendNanos: number;
  requests: number;
  heldNanos: number;
}

/**
 * The one public view of a spend key (never its secret): the management API answers it, and `GET /v1/key`
 * answers it with the live figures only the key's own holder needs added.
 */
export type Counts = Pick<
  KeySnapshot,
  | "currentSpendNanos"
  | "totalSpendNanos"
  | "currentRequests"
  | "totalRequests"
  | "currentTokens"
  | "totalTokens"
  | "lastUsedAt"
  | "carvedNanos"
>;

/** The counters of a D1 row (the KeyGuard's last flushed snapshot), with cycle resets applied. */
export function countsOf(row: SpendKeyRow, now: number): Counts {
  const spendCycle = (row.spendLimitCycle as Cycle | null) ?? null;
  const requestCycle = (row.requestLimitCycle as Cycle | null) ?? null;
  const tokenCycle = (row.tokenLimitCycle as Cycle | null) ?? null;
  return {
    currentSpendNanos: visibleCurrent(
      spendCycle,
      row.spendPeriodStart ?? 0,
      row.currentSpendNanos,
      row.totalSpendNanos,
      now,
    ),
    totalSpendNanos: row.totalSpendNanos,
    currentRequests: visibleCurrent(
      requestCycle,
      row.requestPeriodStart ?? 0,
      row.currentRequests,
      row.totalRequests,
      now,
    ),
    totalRequests: row.totalRequests,
    currentTokens: visibleCurrent(tokenCycle, row.tokenPeriodStart ?? 0, row.currentTokens, row.totalTokens, now),
    totalTokens: row.totalTokens,
    lastUsedAt: row.lastUsedAt,
    // The guard's last snapshot: returned spend of a cycle that has ended may show until its next change.
    carvedNanos: row.carvedSpendNanos ?? 0,
  };
}

/** The wire form; counters come from the KeyGuard (exact) or, in lists, from the D1 snapshot. */
export function serializeSpendKey(row: KeyRecord, counters: Counts, now = Date.now()): SpendKeyView {
  // The limits as the KeyGuard enforces them (their defaults included), in the wire's words.
  const { spendLimit, requestLimit, rateLimit, tokenLimit, tokensPerMinute, alertThresholds, clampOutput, runLimit } =
    configOf(row);
  return {
    spend_key_id: row.id,
    key_preview: row.keyPreview,
    name: row.name,
    status: row.status,
    request_shape: row.requestShape,
    wallet_id: row.walletId,
    allowed_models: row.allowedModels ?? null,
    allowed_providers: row.allowedProviders ?? null,
    spend_limit: spendLimit && { amount: formatUsd(spendLimit.nanos), cycle: spendLimit.cycle },
    current_spend: formatUsd(counters.currentSpendNanos),
    total_spend: formatUsd(counters.totalSpendNanos),
    request_limit: requestLimit,
    current_requests: counters.currentRequests,
    total_requests: counters.totalRequests,
    rate_limit: rateLimit,
    token_limit: tokenLimit,
    tokens_per_minute: tokensPerMinute,
    current_tokens: counters.currentTokens,
    total_tokens: counters.totalTokens,
    expires_at: iso(row.expiresAt),
    last_used_at: iso(counters.lastUsedAt),
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
    spend_resets_at: spendLimit ? iso(periodEnd(spendLimit.cycle, now)) : null,
    requests_resets_at: requestLimit ? iso(periodEnd(requestLimit.cycle, now)) : null,
    tokens_resets_at: tokenLimit ? iso(periodEnd(tokenLimit.cycle, now)) : null,
    alert_thresholds: alertThresholds,
    clamp_output: clampOutput,
    parent_key_id: row.parentKeyId ?? null,
    delegation:
      row.delegationMaxDepth != null && row.delegationMaxChildren != null
        ? { max_depth: row.delegationMaxDepth, max_children: row.delegationMaxChildren }
        : null,
    carved_spend: formatUsd(counters.carvedNanos),
    previous_secret_expires_at:
      row.previousKeyExpiresAt !== null && row.previousKeyExpiresAt > now ? iso(row.previousKeyExpiresAt) : null,
    run_limit: runLimit
      ? { spend: runLimit.nanos === null ? null : formatUsd(runLimit.nanos), requests: runLimit.requests }
      : null,
  };
}

/** `GET /v1/key?run=<id>`'s `run`: what the run has spent and holds, and what its budget leaves. */
export function runView(record: KeyRecord, run: RunSnapshot) {
  const { runLimit } = configOf(record);
  const spendCap = runLimit?.nanos ?? null;
  const requestCap = runLimit?.requests ?? null;
  return {
    id: run.id,
    spend: formatUsd(run.spendNanos),
    requests: run.requests,
    held_spend: formatUsd(run.heldNanos),
    remaining: {
      spend: spendCap === null ? null : formatUsd(Math.max(0, spendCap - run.spendNanos - run.heldNanos)),
      requests: requestCap === null ? null : Math.max(0, requestCap - run.requests),
    },
  };
}

/** `GET /v1/key`: the key's view plus what is left right now (after open holds) and what is in flight. */
export function liveKeyView(record: KeyRecord, s: KeySnapshot, now = Date.now()) {
  const view = serializeSpendKey(record, s, now);
  return {
    ...view,
    held_spend: formatUsd(s.heldNanos),
    in_flight: s.openHolds,
    remaining: {
      spend: s.remainingSpendNanos === null ? null : formatUsd(s.remainingSpendNanos),
      requests: record.requestLimitCount === null ? null : Math.max(0, record.requestLimitCount - s.currentRequests),
      rate: s.rate ? s.rate.remaining : null,
      tokens: s.remainingTokens,
      tokens_this_minute: s.remainingTokensThisMinute,
    },
    rate_resets_at: s.rate ? iso(now + s.rate.resetMs) : null,
    // What the next request can cost at most: its hold must fit here. With clamp_output, a request whose worst
    // case does not fit still goes through with a lower output limit, down to MIN_CLAMPED_OUTPUT_TOKENS.
    next_request: {
      max_cost: s.remainingSpendNanos === null ? null : formatUsd(s.remainingSpendNanos),
      clamps_output: view.clamp_output,
      min_output_tokens: MIN_CLAMPED_OUTPUT_TOKENS,
    },
  };
}
