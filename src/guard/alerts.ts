import type { KeyChange, KeyRecord } from "../keys/record.ts";
import { serializeSpendKey } from "../keys/view.ts";
import { periodEnd } from "../lib/cycles.ts";
import { formatUsd } from "../lib/money.ts";
import type { EventType, WebhookEvent } from "../webhooks/events.ts";
import { roll, snapshot } from "./counters.ts";
import type { AdmitResult, Counters, HeldTotals, KeyConfig } from "./types.ts";

/**
 * The webhook events a KeyGuard decides, as pure functions of its state. Ids name the key and the occasion
 * (the period, the threshold), so the same occasion is always the same event.
 */
export interface GuardView {
  record: KeyRecord;
  config: KeyConfig;
  counters: Counters;
  held: HeldTotals;
}

/** An event about the key: its public view (never a secret), plus what the event adds. */
export function keyEvent(
  g: GuardView,
  type: EventType,
  id: string,
  now: number,
  extra: Record<string, unknown> = {},
): WebhookEvent {
  const view = serializeSpendKey(g.record, snapshot(g.config, g.counters, g.held, now), now);
  return { id, type, created_at: new Date(now).toISOString(), data: { spend_key: view, ...extra } };
}

export function thresholdEvent(g: GuardView, threshold: number, now: number): WebhookEvent {
  const limit = g.config.spendLimit;
  const end = limit ? periodEnd(limit.cycle, now) : null;
  const id = `evt_${g.record.id}_${g.counters.spendPeriodStart}_t${threshold}`;
  return keyEvent(g, "spend_key.spend_threshold_reached", id, now, {
    threshold,
    limit: limit ? { amount: formatUsd(limit.nanos), cycle: limit.cycle } : null,
    spend: formatUsd(g.counters.currentSpendNanos),
    resets_at: end === null ? null : new Date(end).toISOString(),
  });
}

/**
 * The first refusal of a cycle by the spend or request limit raises `spend_key.limit_reached`: the counters
 * marked for that period and the event, or null when it is not the first (or not such a refusal). A spend refusal
 * raises it only when the settled spend itself leaves no room for the request: one refused because requests in
 * flight fill the budget for a moment (at 70 %, say) keeps the cycle's one event for when the limit is reached.
 */
export function limitReached(
  g: GuardView,
  refusal: AdmitResult,
  now: number,
): { counters: Counters; event: WebhookEvent } | null {
  if (refusal.ok) return null;
  const which =
    refusal.code === "spend_limit_exceeded" ? "spend" : refusal.code === "request_limit_exceeded" ? "requests" : null;
  if (!which) return null;
  if (which === "spend" && refusal.exhausted === false) return null;
  const rolled = roll(g.config, g.counters, now);
  const mark = `${which}:${which === "spend" ? rolled.spendPeriodStart : rolled.requestPeriodStart}`;
  if (rolled.limitAlerted?.includes(mark)) return null;
  const counters = {
    ...rolled,
    limitAlerted: [...(rolled.limitAlerted ?? []).slice(-3), mark],
    version: rolled.version + 1,
  };
  const id = `evt_${g.record.id}_${mark.replace(":", "_")}`;
  const event = keyEvent({ ...g, counters }, "spend_key.limit_reached", id, now, {
    limit: which,
    details: refusal.details ?? null,
  });
  return { counters, event };
}

/** When `spend_key.expired` is due: the key's expiry, unless it has none or the event has fired. */
export function expiryDue(record: KeyRecord, counters: Counters): number | null {
  return counters.expiredAlerted ? null : record.expiresAt;
}

/** `spend_key.expired`, once, when the key's expiry has passed: the counters that mark it raised, and the event. */
export function expiryReached(g: GuardView, now: number): { counters: Counters; event: WebhookEvent } | null {
  const expiresAt = expiryDue(g.record, g.counters);
  if (expiresAt === null || expiresAt > now) return null;
  const counters = { ...g.counters, expiredAlerted: true, version: g.counters.version + 1 };
  const id = `evt_${g.record.id}_expired_${expiresAt}`;
  return { counters, event: keyEvent({ ...g, counters }, "spend_key.expired", id, now) };
}

/**
 * The events of a management change, decided in the guard with the change itself: created; updated (and paused or
 * resumed when the status flipped); rotated; revoked. Ids name the key's version, so a change is one event.
 */
export function managementEvents(g: GuardView, change: KeyChange | "create", previous: KeyRecord | null, now: number) {
  const kind = change === "create" ? "create" : change.kind;
  const types: EventType[] =
    kind === "create"
      ? ["spend_key.created"]
      : kind === "rotate"
        ? ["spend_key.rotated"]
        : kind === "revoke"
          ? ["spend_key.revoked"]
          : ["spend_key.updated"];
  if (kind === "update" && previous && previous.status !== g.record.status) {
    types.push(g.record.status === "paused" ? "spend_key.paused" : "spend_key.resumed");
  }
  const version = g.record.configVersion;
  return types.map((type) => keyEvent(g, type, `evt_${g.record.id}_v${version}_${type.slice(10)}`, now));
}
