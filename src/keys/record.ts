import type { SpendKeyRow } from "../db/schema.ts";
import type { Cycle } from "../lib/cycles.ts";

/** The shape of requests a key takes: OpenAI's (Chat Completions, Responses, …) or Anthropic's Messages. */
export type RequestShape = "openai" | "anthropic";

/** A spend key's configuration as the KeyGuard enforces it, derived from its record (`configOf`). */
export interface KeyConfig {
  spendKeyId: string;
  walletId: string;
  secretHash: string;
  status: "active" | "paused";
  requestShape: RequestShape;
  allowedModels: string[] | null;
  allowedProviders: string[] | null;
  spendLimit: { nanos: number; cycle: Cycle } | null;
  requestLimit: { count: number; cycle: Cycle } | null;
  rateLimit: { rpm: number; burst: number } | null;
  expiresAt: number | null;
  revoked: boolean;
  /** the record's `configVersion` */
  version: number;
  /** fractions of the spend limit that raise a webhook event, once per cycle each */
  alertThresholds: number[];
  /** lower an output limit the spend limit cannot cover to what it can, rather than refuse */
  clampOutput: boolean;
  /** the parent key of a child key (its ledger rows name it); null for a root key */
  parentKeyId?: string | null;
}

/**
 * The smallest output limit fit-to-budget clamping grants (`clamp_output`): below it a request is refused rather
 * than answered too short to be useful.
 */
export const MIN_CLAMPED_OUTPUT_TOKENS = 1_024;

/** The counter columns of a D1 spend key row: the KeyGuard's bookkeeping writes them, management never does. */
export const COUNTER_COLUMNS = [
  "currentSpendNanos",
  "totalSpendNanos",
  "currentRequests",
  "totalRequests",
  "spendPeriodStart",
  "requestPeriodStart",
  "lastUsedAt",
  "snapshotAt",
  "carvedSpendNanos",
] as const satisfies readonly (keyof SpendKeyRow)[];
type CounterColumn = (typeof COUNTER_COLUMNS)[number];

/** The version of a record's stored form, kept in the record: a reader knows what it holds. */
export const RECORD_SCHEMA = 1;

/**
 * A spend key's management fields. The key's KeyGuard owns them: every change is applied there, one at a time,
 * and bumps `configVersion`; D1 keeps a copy (without `schema`) and only accepts one with a newer version.
 */
export type KeyRecord = Omit<SpendKeyRow, CounterColumn> & { schema: typeof RECORD_SCHEMA };

/**
 * A record as the guard stored it. Records stored before `schema` existed lack the two fields added since the first
 * layout (`alertThresholds`, `clampOutput`): they take the defaults those fields had when they were added.
 */
export function storedRecord(stored: Omit<KeyRecord, "schema"> & { schema?: number }): KeyRecord {
  if (stored.schema === RECORD_SCHEMA) return withFamily(stored as KeyRecord);
  return withFamily({
    ...stored,
    alertThresholds: stored.alertThresholds ?? null,
    clampOutput: stored.clampOutput ?? true,
    schema: 1,
  });
}

/** Records stored before child keys existed lack their fields: a root key that may not delegate. */
function withFamily(r: KeyRecord): KeyRecord {
  if (r.parentKeyId !== undefined) return r;
  return { ...r, parentKeyId: null, delegationMaxDepth: null, delegationMaxChildren: null };
}

/** D1's copy of a record: every column of the row but the counters, which only the guard's bookkeeping writes. */
export function rowOf(record: KeyRecord): Omit<SpendKeyRow, CounterColumn> {
  const { schema, ...row } = record;
  return row;
}

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
    | "delegationMaxDepth"
    | "delegationMaxChildren"
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
    carvedSpendNanos,
    ...record
  } = row;
  return { ...record, schema: RECORD_SCHEMA };
}

/** What the hot path enforces, derived from the record. */
export function configOf(r: KeyRecord): KeyConfig {
  return {
    spendKeyId: r.id,
    walletId: r.walletId,
    secretHash: r.keyHash,
    status: r.status,
    requestShape: r.requestShape,
    allowedModels: r.allowedModels,
    allowedProviders: r.allowedProviders,
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
    clampOutput: r.clampOutput,
    parentKeyId: r.parentKeyId ?? null,
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
