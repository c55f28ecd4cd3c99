import { chargeFor, type Prices, type Usage } from "../catalog/pricing.ts";
import { tokensOf } from "../catalog/token-count.ts";
import type { LedgerRow } from "../db/schema.ts";
import type { AdmitInput, SettleInput } from "./types.ts";

/**
 * How a request becomes a ledger row: what its hold remembers of the request (`HoldInfo`, stored with the hold
 * at admission) and the row a settle turns it into. Pure functions; ledger.ts stores the results.
 */

/** An open hold as the guard's `holds` table stores it. */
export interface HoldRow extends Record<string, SqlStorageValue> {
  request_id: string;
  amount: number;
  created_at: number;
  expires_at: number;
  info: string;
  /** the worst-case tokens reserved against the key's token limits */
  tokens: number;
}

export interface HoldInfo {
  /** false for count_tokens: the hold only counts toward the in-flight cap, and closes with no charge or row */
  metered?: boolean;
  model: string;
  pricedModel: string;
  provider: string;
  prices: Prices | null;
  /** the service tier the hold was sized for (the response's own tier prices the settle) */
  serviceTier: string | null;
  /** why the request has no price: its row shows `cost: null` with this note */
  unpricedNote?: string;
  endpoint: string;
  stream: boolean;
  metadata: Record<string, string>;
  /** the run the request named (its ledger row's `run_id`) */
  run?: string;
  /** whether the run's budget holds this hold too (the key had a `run_limit`): its settle charges the run */
  runHeld?: boolean;
}

/** What the hold of an admitted request remembers for its settle. */
export function holdInfo(input: AdmitInput, target: NonNullable<AdmitInput["target"]>, runHeld = false): HoldInfo {
  return {
    metered: input.metered,
    model: input.model,
    pricedModel: target.pricedModel,
    provider: target.provider,
    prices: target.prices,
    serviceTier: target.worst.serviceTier,
    ...(target.unpricedNote ? { unpricedNote: target.unpricedNote } : {}),
    endpoint: input.endpoint,
    stream: input.stream,
    metadata: input.metadata,
    ...(input.run === undefined ? {} : { run: input.run }),
    ...(runHeld ? { runHeld } : {}),
  };
}

/** What a hold remembers, read once per settle (its ledger row and its run both need it). */
export const infoOf = (hold: HoldRow): HoldInfo => JSON.parse(hold.info) as HoldInfo;

/** The run whose budget holds this hold, if any. */
export function heldRun(info: HoldInfo): string | null {
  return info.runHeld && info.run !== undefined ? info.run : null;
}

/** The settle of a hold that outlived its lifetime (a lost settle): charged in full, as aborted. */
export function lapsedSettle(hold: HoldRow, now: number): SettleInput {
  const common = { usage: null, responseId: null, httpStatus: null };
  return {
    ...common,
    requestId: hold.request_id,
    status: "aborted",
    fallbackNanos: hold.amount,
    fallbackTokens: hold.tokens,
    latencyMs: now - hold.created_at,
  };
}

/**
 * What a settled request counts toward the token limits: its reported tokens, else the fallback the gateway
 * measured (the estimate its charge used), never more than its hold — as `chargeFor` treats the spend.
 */
export function countedTokens(hold: HoldRow, input: SettleInput): number {
  if (input.usage) return tokensOf(input.usage);
  return Math.min(hold.tokens, Math.max(0, input.fallbackTokens ?? 0));
}

/** The ledger row of a settled hold and what it costs (null for count_tokens: no row, no cost). */
export function ledgerRowFor(
  hold: HoldRow,
  info: HoldInfo,
  input: SettleInput,
  key: { spendKeyId: string; walletId: string; parentKeyId?: string | null },
): LedgerRow | null {
  if (info.metered === false) return null;
  const usage = input.usage;
  const tier = input.serviceTier ?? info.serviceTier;
  const cost = chargeFor(usage, info.prices, hold.amount, input.fallbackNanos, tier);
  const costNanos = cost.totalNanos;
  const seen: Usage = usage ?? input.estimate ?? {};
  const n = (key: string) => seen[key] ?? 0;
  return {
    requestId: input.requestId,
    spendKeyId: key.spendKeyId,
    walletId: key.walletId,
    status: input.status,
    provider: info.provider,
    model: info.model,
    pricedModel: info.pricedModel,
    endpoint: info.endpoint,
    responseId: input.responseId,
    httpStatus: input.httpStatus,
    inputTokens: Math.max(0, n("input_tokens") - n("cache_read_tokens") - n("cache_write_tokens")),
    outputTokens: n("output_tokens"),
    cacheReadTokens: n("cache_read_tokens"),
    cacheWriteTokens: n("cache_write_tokens"),
    reasoningTokens: n("output_reasoning_tokens"),
    mediaInputTokens: n("input_audio_tokens") + n("input_image_tokens"),
    units: n("images") + n("audio_seconds") + n("input_characters"),
    usage: seen,
    inputCostFemtos: cost.inputFemtos.toString(),
    outputCostFemtos: cost.outputFemtos.toString(),
    feeCostFemtos: cost.feeFemtos.toString(),
    costNanos,
    costNote: info.prices ? null : (info.unpricedNote ?? "The model has no price."),
    // The provider billed more than the hold allowed for: charged in full and flagged; the key refuses once
    // its spend reaches the limit.
    overage: costNanos > hold.amount,
    usageKnown: usage !== null,
    stream: info.stream,
    latencyMs: input.latencyMs,
    metadata: info.metadata,
    createdAt: hold.created_at,
    parentKeyId: key.parentKeyId ?? null,
    runId: info.run ?? null,
  };
}
