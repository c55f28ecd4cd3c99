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
  /** tokens per cycle (what counts: catalog/token-count.ts) */
  tokenLimit: { count: number; cycle: Cycle } | null;
  /** tokens per UTC minute, counted for the minute a request is admitted in */
  tokensPerMinute: number | null;
  expiresAt: number | null;
  /** the secret a rotation replaced, still accepted until `until` (ms) */
  previousSecret: { hash: string; until: number } | null;
  revoked: boolean;
  /** the record's `configVersion` */
  version: number;
  /** fractions of the spend limit that raise a webhook event, once per cycle each */
  alertThresholds: number[];
  /** lower an output limit the spend limit cannot cover to what it can, rather than refuse */
  clampOutput: boolean;
  /** the parent key of a child key (its ledger rows name it); null for a root key */
  parentKeyId?: string | null;
  /** each run's own budget inside the key, for the run's lifetime (guard/runs.ts); null: runs are not tracked */
  runLimit?: RunLimit | null;
}

/** `run_limit`: at most this much spend and this many requests per run; either may be absent (null). */
export interface RunLimit {
  nanos: number | null;
  requests: number | null;
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
  "currentTokens",
  "totalTokens",
  "tokenPeriodStart",
] as const satisfies readonly (keyof SpendKeyRow)[];
type CounterColumn = (typeof COUNTER_COLUMNS)[number];

/** The version of a record's stored form, kept in the record: a reader knows what it holds. */
export const RECORD_SCHEMA = 2;

/**
 * A spend key's management fields. The key's KeyGuard owns them: every change is applied there, one at a time,
 * and bumps `configVersion`; D1 keeps a copy (without `schema`) and only accepts one with a newer version.
 */
export type KeyRecord = Omit<SpendKeyRow, CounterColumn> & { schema: typeof RECORD_SCHEMA };

/**
 * Fields added to the record after its first layout, with the values a record stored before them takes: the
 * defaults those fields had when they were added (no token limits, no rotation grace).
 */
const LATER_FIELDS = {
  alertThresholds: null,
  clampOutput: true,
  tokenLimitCount: null,
  tokenLimitCycle: null,
  tokensPerMinute: null,
  runSpendLimitNanos: null,
  runRequestLimit: null,
  previousKeyHash: null,
  previousKeyExpiresAt: null,
  // before child keys: a root key that may not delegate
  parentKeyId: null,
  delegationMaxDepth: null,
  delegationMaxChildren: null,
} satisfies Partial<KeyRecord>;

/**
 * A new key's record: active, OpenAI-shaped, with no scope, limit or grace until `fields` set them (the management
 * API's create and a parent's mint both make one).
 */
export function newRecord(
  key: Pick<KeyRecord, "id" | "walletId" | "name" | "keyHash" | "keyPreview">,
  fields: KeyFields,
  now: number,
  parentKeyId: string | null = null,
): KeyRecord {
  return {
    schema: RECORD_SCHEMA,
    ...key,
    status: "active",
    requestShape: "openai",
    allowedModels: null,
    allowedProviders: null,
    spendLimitNanos: null,
    spendLimitCycle: null,
    requestLimitCount: null,
    requestLimitCycle: null,
    rateLimitRpm: null,
    rateLimitBurst: null,
    expiresAt: null,
    createdAt: now,
    updatedAt: now,
    configVersion: 1,
    revokedAt: null,
    ...LATER_FIELDS,
    parentKeyId,
    ...fields,
  };
}

/** A record as the guard stored it: one stored before a field existed takes that field's default. */
export function storedRecord(stored: Partial<KeyRecord>): KeyRecord {
  return { ...LATER_FIELDS, ...stored, schema: RECORD_SCHEMA } as KeyRecord;
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
    | "tokenLimitCount"
    | "tokenLimitCycle"
    | "tokensPerMinute"
    | "runSpendLimitNanos"
    | "runRequestLimit"
  >
>;

/** One management change, applied inside the KeyGuard as a single read-modify-write. */
export type KeyChange =
  | { kind: "update"; fields: KeyFields }
  /** `graceMs`: how long the replaced secret keeps working (0: it fails at once) */
  | { kind: "rotate"; keyHash: string; keyPreview: string; graceMs: number }
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
    currentTokens,
    totalTokens,
    tokenPeriodStart,
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
    tokenLimit:
      r.tokenLimitCount !== null && r.tokenLimitCycle !== null
        ? { count: r.tokenLimitCount, cycle: r.tokenLimitCycle as Cycle }
        : null,
    tokensPerMinute: r.tokensPerMinute,
    expiresAt: r.expiresAt,
    previousSecret:
      r.previousKeyHash !== null && r.previousKeyExpiresAt !== null
        ? { hash: r.previousKeyHash, until: r.previousKeyExpiresAt }
        : null,
    revoked: r.revokedAt !== null,
    alertThresholds: r.alertThresholds ?? DEFAULT_ALERT_THRESHOLDS,
    clampOutput: r.clampOutput,
    parentKeyId: r.parentKeyId ?? null,
    runLimit:
      r.runSpendLimitNanos === null && r.runRequestLimit === null
        ? null
        : { nanos: r.runSpendLimitNanos, requests: r.runRequestLimit },
    version: r.configVersion,
  };
}

const noGrace = { previousKeyHash: null, previousKeyExpiresAt: null };

/** The longest grace period a rotation may give the secret it replaces. */
export const MAX_ROTATION_GRACE_MS = 86_400_000;

/** The record after `change`: the next version, stamped with the time of the change. */
export function applyChange(prev: KeyRecord, change: KeyChange, now: number): KeyRecord {
  const stamp = { configVersion: prev.configVersion + 1, updatedAt: now };
  switch (change.kind) {
    case "update":
      // Pausing ends a rotation's grace period: after a resume only the current secret works.
      return { ...prev, ...change.fields, ...(change.fields.status === "paused" ? noGrace : {}), ...stamp };
    case "rotate":
      // The replaced secret keeps working for the grace period; a secret replaced before it (a rotation during
      // the grace) stops at once. A paused key gives no grace: as a pause ends one, a resume finds none.
      return {
        ...prev,
        keyHash: change.keyHash,
        keyPreview: change.keyPreview,
        ...(change.graceMs > 0 && prev.status !== "paused"
          ? { previousKeyHash: prev.keyHash, previousKeyExpiresAt: now + change.graceMs }
          : noGrace),
        ...stamp,
      };
    case "revoke":
      return { ...prev, revokedAt: now, ...noGrace, ...stamp };
  }
}
