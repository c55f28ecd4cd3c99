import type { SpendKeyRow } from "../db/schema.ts";
import type { Cycle } from "../lib/cycles.ts";
import type { KeyConfig } from "./types.ts";

/** The counter columns of a D1 spend key row: the KeyGuard's flushes write them, management never does. */
type CounterColumn =
  | "currentSpendNanos"
  | "totalSpendNanos"
  | "currentRequests"
  | "totalRequests"
  | "spendPeriodStart"
  | "requestPeriodStart"
  | "lastUsedAt"
  | "snapshotAt";

/**
 * A spend key's management fields. The key's KeyGuard owns them: every change is applied there, one at a time,
 * and bumps `configVersion`; D1 keeps a copy and only accepts one with a newer version than its own.
 */
export type KeyRecord = Omit<SpendKeyRow, CounterColumn>;

/** A key's alert thresholds when it sets none: half, 80 % and 95 % of its spend limit. */
export const DEFAULT_ALERT_THRESHOLDS = [0.5, 0.8, 0.95];

/** The fields a PUT/PATCH may change; what is absent stays as it is. */
export type KeyFields = Partial<
  Pick<
    KeyRecord,
    | "name"
    | "status"
    | "requestShape"
    | "allowedModels"
    | "allowedProviders"
    | "spendLimitNanos"
    | "spendLimitCycle"
    | "requestLimitCount"
    | "requestLimitCycle"
    | "rateLimitRpm"
    | "rateLimitBurst"
    | "expiresAt"
    | "alertThresholds"
    | "clampOutput"
  >
>;

/** One management change, applied inside the KeyGuard as a single read-modify-write. */
export type KeyChange =
  | { kind: "update"; fields: KeyFields }
  | { kind: "rotate"; keyHash: string; keyPreview: string }
  | { kind: "revoke" };

/** Only the record's own columns (a D1 row also carries the counter snapshot). */
export function recordOf(row: SpendKeyRow): KeyRecord {
  const {
    currentSpendNanos,
    totalSpendNanos,
    currentRequests,
    totalRequests,
    spendPeriodStart,
    requestPeriodStart,
    lastUsedAt,
    snapshotAt,
    ...record
  } = row;
  return record;
}

/** What the hot path enforces, derived from the record. */
export function configOf(r: KeyRecord): KeyConfig {
  return {
    spendKeyId: r.id,
    walletId: r.walletId,
    secretHash: r.keyHash,
    status: r.status,
    requestShape: r.requestShape,
    allowedModels: r.allowedModels ?? null,
    allowedProviders: r.allowedProviders ?? null,
    spendLimit:
      r.spendLimitNanos !== null && r.spendLimitCycle !== null
        ? { nanos: r.spendLimitNanos, cycle: r.spendLimitCycle as Cycle }
        : null,
    requestLimit:
      r.requestLimitCount !== null && r.requestLimitCycle !== null
        ? { count: r.requestLimitCount, cycle: r.requestLimitCycle as Cycle }
        : null,
    rateLimit: r.rateLimitRpm !== null ? { rpm: r.rateLimitRpm, burst: r.rateLimitBurst ?? r.rateLimitRpm } : null,
    expiresAt: r.expiresAt,
    revoked: r.revokedAt !== null,
    alertThresholds: r.alertThresholds ?? DEFAULT_ALERT_THRESHOLDS,
    // Records written before the option existed have no field: on, the default.
    clampOutput: r.clampOutput ?? true,
    version: r.configVersion,
  };
}

/** The record after `change`: the next version, stamped with the time of the change. */
export function applyChange(prev: KeyRecord, change: KeyChange, now: number): KeyRecord {
  const stamp = { configVersion: prev.configVersion + 1, updatedAt: now };
  switch (change.kind) {
    case "update":
      return { ...prev, ...change.fields, ...stamp };
    case "rotate":
      return { ...prev, keyHash: change.keyHash, keyPreview: change.keyPreview, ...stamp };
    case "revoke":
      return { ...prev, revokedAt: now, ...stamp };
  }
}
