import type { Prices, Usage, WorstCase } from "../catalog/pricing.ts";
import type { LedgerRow } from "../db/schema.ts";
import type { KeyConfig, KeyRecord, RequestShape } from "../keys/record.ts";
import type { KeySnapshot, RateState, RunSnapshot } from "../keys/view.ts";
import type { ErrorCode, LimitDetails, RefusalLimit } from "../lib/errors.ts";

export type { KeyConfig, KeySnapshot, RateState, RequestShape };

/** What the open holds add up to. */
export interface HeldTotals {
  count: number;
  nanos: number;
  /** the worst-case tokens the open holds reserve against the token limit */
  tokens: number;
}

/** Absolute counters; `current*` belong to the period starting at `*PeriodStart`. */
export interface Counters {
  spendPeriodStart: number;
  currentSpendNanos: number;
  totalSpendNanos: number;
  requestPeriodStart: number;
  currentRequests: number;
  totalRequests: number;
  lastUsedAt: number | null;
  tokenPeriodStart: number;
  /** tokens counted in the token limit's period (settled requests: their reported tokens) */
  currentTokens: number;
  totalTokens: number;
  /** the UTC minute (its start, ms) `minuteTokens` belongs to */
  minuteStart: number;
  /**
   * tokens of the requests admitted in that minute: their holds while open, their counted tokens once settled
   * (what `tokens_per_minute` admits against)
   */
  minuteTokens: number;
  /** GCRA theoretical arrival time (ms) of the rate bucket */
  tat: number;
  /** bumped on every change, so D1 snapshots never go backwards */
  version: number;
  /** the alert thresholds already reached in the current spend period (each fires once a cycle) */
  alerted?: number[];
  /** which limit's refusal raised limit_reached, and for which period (`spend:<start>` / `requests:<start>`) */
  limitAlerted?: string[];
  /** whether spend_key.expired has fired */
  expiredAlerted?: boolean;
  /** what the key's children take of its spend cycle (live carves and returned spend: guard/children.ts) */
  carvedNanos?: number;
}

export interface RequestInfo {
  requestId: string;
  endpoint: string;
  stream: boolean;
  metadata: Record<string, string>;
  /** the run the request names (`x-spendgate-run`, or metadata `run`), already validated; absent: no run */
  run?: string;
}

export interface AdmitInput extends RequestInfo {
  secretHash: string;
  /** the shape of the route called */
  routeShape: RequestShape;
  model: string;
  /** the catalog entry of `model`, null when the catalog does not know it */
  target: {
    provider: string;
    /** the catalog model that prices the request (the id asked for may be an alias or a snapshot of it) */
    pricedModel: string;
    /** the prices in force at admission; null when the request cannot be priced */
    prices: Prices | null;
    /** what the hold covers: the most the provider can bill for this request (hold.ts) */
    worst: WorstCase;
    /** why the request has no price (recorded with `cost: null` on a key without a spend limit) */
    unpricedNote?: string;
    /** whether the gateway can lower the request's output limit (a JSON body with a field the provider reads) */
    clampable: boolean;
    /** why the hold is as large as it is, when the body alone does not say (told when it does not fit) */
    holdNote?: string;
    /** set when no safe bound exists: a key with a spend limit refuses the request with this message */
    unbounded?: string;
    /** set when no safe bound on the tokens exists: a key with a token limit refuses the request with this message */
    tokensUnbounded?: string;
  } | null;
  /** why the request cannot be served (provider not configured, route unsupported), told only to its key */
  unavailable?: { code: ErrorCode; message: string };
  /** false for count_tokens: checked like any request, never counted or charged */
  metered: boolean;
  maxInflight: number;
  holdTtlMs: number;
}

export interface Budget {
  /** nano-dollars left in the spend cycle after this request's hold (null: no spend limit) */
  remainingNanos: number | null;
  limitNanos: number | null;
}

export type AdmitResult =
  | {
      ok: true;
      shape: RequestShape;
      /** the key's wallet (for the log) */
      walletId: string;
      rate: RateState | null;
      /** what the spend limit leaves after this request's hold */
      budget: Budget;
      /** this request's hold */
      holdNanos: number;
      /** the tokens this request's hold reserves against the key's token limits */
      holdTokens: number;
      /** set when the spend limit afforded less than the request's output limit: the per-choice limit granted */
      clampedOutputTokens?: number;
    }
  | {
      ok: false;
      /** the key's shape when the key is known, so the error speaks its dialect */
      shape: RequestShape | null;
      /** the key's wallet when the key exists (for the log, even when the secret was wrong) */
      walletId?: string;
      code: ErrorCode;
      /** what refused, for the log only: the body says less (every bad key reads the same) */
      limit: RefusalLimit;
      message: string;
      details?: LimitDetails;
      retryAfterMs?: number;
      /** terminal limits: clients must not retry */
      terminal?: boolean;
      /**
       * spend refusals: true when the settled spend alone leaves no room for the request at its smallest; false when
       * the requests in flight (their holds) fill the budget for now
       */
      exhausted?: boolean;
    };

export type SettleStatus = "completed" | "error" | "aborted";

export interface SettleInput {
  requestId: string;
  status: SettleStatus;
  /** the provider's reported usage; null when none arrived */
  usage: Usage | null;
  /** when `usage` is null: what was measured instead (a cut stream's estimate), recorded in the ledger */
  estimate?: Usage;
  /** charged instead when `usage` is null (capped by the hold): 0 releases it */
  fallbackNanos: number;
  /** counted toward the token limits instead when `usage` is null (capped by the token hold); absent: 0 */
  fallbackTokens?: number;
  /** the service tier the provider reports having used (priced by its multiplier) */
  serviceTier?: string | null;
  responseId: string | null;
  httpStatus: number | null;
  latencyMs: number;
}

export interface SettleResult {
  costNanos: number;
  remainingNanos: number | null;
  /** false when this request was already settled (idempotent replay) */
  applied: boolean;
}

/** What a management call answers: the record now in force and the live counters. */
export interface Managed {
  record: KeyRecord;
  snapshot: KeySnapshot;
}

/** Everything the guard holds, for tests (`inspect()`); the secret is only ever a hash. */
export interface GuardState {
  record: KeyRecord | null;
  config: KeyConfig | null;
  counters: Counters;
  held: HeldTotals;
  ledger: LedgerRow[];
  /** what D1 has not confirmed yet (rows, events, the record and counters when newer than D1's) */
  unconfirmed: number;
  /** the runs stored (live, or ended and not yet dropped) */
  runs: number;
}

/** `GET /v1/key`'s read: the key's record and configuration without their secret hash, and live counters. */
export type Described =
  | {
      ok: true;
      record: KeyRecord;
      config: KeyConfig;
      snapshot: KeySnapshot;
      /** the run asked about; null when the key has no `run_limit` (runs are not tracked) */
      run?: RunSnapshot | null;
      /** why the key refuses every request while its own status says `active`: an ancestor paused it */
      stoppedBy?: string;
    }
  | { ok: false };
