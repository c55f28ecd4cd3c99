import type { SpendKeyRow } from "../db/schema.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../guard/policy.ts";
import { configOf, type KeyRecord } from "../guard/record.ts";
import type { KeySnapshot } from "../guard/types.ts";
import { type Cycle, periodEnd, visibleCurrent } from "../lib/cycles.ts";
import { formatUsd } from "../lib/money.ts";
import { isoOrNull as iso } from "../lib/time.ts";
import type { SpendKeyWire } from "./schemas.ts";

/**
 * The one public view of a spend key (never its secret): the management API answers it, and `GET /v1/key`
 * answers it with the live figures only the key's own holder needs added.
 */
export type Counts = Pick<
  KeySnapshot,
  "currentSpendNanos" | "totalSpendNanos" | "currentRequests" | "totalRequests" | "lastUsedAt"
>;

/** The counters of a D1 row (the KeyGuard's last flushed snapshot), with cycle resets applied. */
export function countsOf(row: SpendKeyRow, now: number): Counts {
  const spendCycle = (row.spendLimitCycle as Cycle | null) ?? null;
  const requestCycle = (row.requestLimitCycle as Cycle | null) ?? null;
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
    lastUsedAt: row.lastUsedAt,
  };
}

/** The wire form; counters come from the KeyGuard (exact) or, in lists, from the D1 snapshot. */
export function serializeSpendKey(row: KeyRecord, counters: Counts, now = Date.now()): SpendKeyWire {
  // The limits as the KeyGuard enforces them (their defaults included), in the wire's words.
  const { spendLimit, requestLimit, rateLimit, alertThresholds, clampOutput } = configOf(row);
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
    expires_at: iso(row.expiresAt),
    last_used_at: iso(counters.lastUsedAt),
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
    spend_resets_at: spendLimit ? iso(periodEnd(spendLimit.cycle, now)) : null,
    requests_resets_at: requestLimit ? iso(periodEnd(requestLimit.cycle, now)) : null,
    alert_thresholds: alertThresholds,
    clamp_output: clampOutput,
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
