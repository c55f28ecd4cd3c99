import * as z from "zod/mini";
import type { SpendKeyView } from "../keys/view.ts";
import { Instant, Name, Pagination, PathId, RunId } from "../lib/api-schemas.ts";
import { CYCLES } from "../lib/cycles.ts";
import { parseUsd } from "../lib/money.ts";
import { named } from "../lib/openapi.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";

/** The request and response shapes of the operator and management APIs: they validate and they document. */

const Cycle = z.enum(CYCLES);
const opt = <S extends z.ZodMiniType>(s: S) => z.optional(z.nullable(s));

const UsdAmount = z.string().check(
  z.refine((s) => {
    const n = parseUsd(s);
    return n !== null && n > 0;
  }, 'must be a positive USD decimal string with at most 9 decimals and at most 999999 dollars, e.g. "50.00"'),
);

/** The latest expiry a key may have: far enough for any use, and within what the platform's alarms can schedule. */
const LATEST_EXPIRY = Date.UTC(2100, 0, 1);
const FutureDate = z.iso.datetime({ offset: true }).check(
  z.refine((s) => Date.parse(s) > Date.now(), "must be in the future"),
  z.refine((s) => Date.parse(s) < LATEST_EXPIRY, "must be before 2100-01-01"),
);

const PositiveInt = (max: number) => z.int().check(z.positive(), z.maximum(max));
const SpendLimit = z.strictObject({ amount: UsdAmount, cycle: Cycle });
const RequestLimit = z.strictObject({ count: PositiveInt(1_000_000_000), cycle: Cycle });
const RateLimit = z.strictObject({ rpm: PositiveInt(1_000_000), burst: opt(PositiveInt(1_000_000)) });
/** Token counts stay exact integers in the guard's arithmetic (limit + holds + usage): far below 2^53. */
const MAX_TOKENS = 1_000_000_000_000;
const TokenLimit = z.strictObject({ count: PositiveInt(MAX_TOKENS), cycle: Cycle });
/** Each run's own budget: spend (USD) and requests, for the run's lifetime; either may be null (no such limit). */
const RunLimit = z.strictObject({ spend: opt(UsdAmount), requests: opt(PositiveInt(1_000_000_000)) });
const Providers = z.enum(PROVIDER_IDS as [string, ...string[]]);

/** Bounds of a key's delegation (docs/limits-and-metering.md, "Child keys"). */
const Delegation = z.strictObject({ max_depth: PositiveInt(3), max_children: PositiveInt(20) });

const spendKeyFields = {
  delegation: opt(Delegation),
  status: z.optional(z.enum(["active", "paused"])),
  request_shape: z.optional(z.enum(["openai", "anthropic"])),
  allowed_models: opt(z.array(z.string().check(z.minLength(1), z.maxLength(200))).check(z.maxLength(500))),
  allowed_providers: opt(z.array(Providers).check(z.maxLength(50))),
  spend_limit: opt(SpendLimit),
  request_limit: opt(RequestLimit),
  rate_limit: opt(RateLimit),
  token_limit: opt(TokenLimit),
  tokens_per_minute: opt(PositiveInt(MAX_TOKENS)),
  expires_at: opt(FutureDate),
  clamp_output: z.optional(z.boolean()),
  run_limit: opt(RunLimit),
  alert_thresholds: opt(
    z.array(z.number().check(z.positive(), z.maximum(1))).check(
      z.maxLength(5),
      z.refine((a) => a.every((t, i) => i === 0 || t > (a[i - 1] ?? 0)), "must be in ascending order, each once"),
    ),
  ),
};

export const CreateSpendKey = named("CreateSpendKey", z.strictObject({ name: Name, ...spendKeyFields }));
/**
 * `POST /v1/key/children`: a spend key's fields, minted by a key itself. `spend_limit.amount` is the carve of the
 * parent's cycle; its cycle may be left out (it is always the parent's).
 */
export const CreateChildKey = named(
  "CreateChildKey",
  z.strictObject({
    name: Name,
    ...spendKeyFields,
    spend_limit: opt(z.strictObject({ amount: UsdAmount, cycle: z.optional(Cycle) })),
  }),
);
export const UpdateSpendKey = named("UpdateSpendKey", z.strictObject({ name: z.optional(Name), ...spendKeyFields }));
export type UpdateSpendKeyBody = z.output<typeof UpdateSpendKey>;

/** `GET /v1/spend_keys`: a page, optionally only the children of one key. */
export const SpendKeysQuery = z.extend(Pagination, {
  parent_key_id: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
});

const nullable = <S extends z.ZodMiniType>(s: S) => z.nullable(s);
export const SpendKey = named(
  "SpendKey",
  z.object({
    spend_key_id: z.string(),
    key_preview: z.string(),
    name: z.string(),
    status: z.enum(["active", "paused"]),
    request_shape: z.enum(["openai", "anthropic"]),
    wallet_id: z.string(),
    allowed_models: nullable(z.array(z.string())),
    allowed_providers: nullable(z.array(z.string())),
    spend_limit: nullable(z.object({ amount: z.string(), cycle: Cycle })),
    current_spend: z.string(),
    total_spend: z.string(),
    request_limit: nullable(z.object({ count: z.number(), cycle: Cycle })),
    current_requests: z.number(),
    total_requests: z.number(),
    rate_limit: nullable(z.object({ rpm: z.number(), burst: z.number() })),
    /** tokens per cycle: every input (cached included) and output (reasoning included) token the provider reports */
    token_limit: nullable(z.object({ count: z.number(), cycle: Cycle })),
    /** tokens per UTC minute, counted for the minute a request is admitted in */
    tokens_per_minute: nullable(z.number()),
    current_tokens: z.number(),
    total_tokens: z.number(),
    expires_at: nullable(z.string()),
    last_used_at: nullable(z.string()),
    created_at: z.string(),
    updated_at: z.string(),
    spend_resets_at: nullable(z.string()),
    requests_resets_at: nullable(z.string()),
    tokens_resets_at: nullable(z.string()),
    /** fractions of the spend limit that raise `spend_key.spend_threshold_reached`, once per cycle each */
    alert_thresholds: z.array(z.number()),
    /** whether a request the spend limit cannot cover in full gets a lower output limit instead of a refusal */
    clamp_output: z.boolean(),
    /** the key that minted this one (POST /v1/key/children); null for a key the wallet created */
    parent_key_id: nullable(z.string()),
    /** what the key may delegate: levels of children below it and direct children a cycle; null: none */
    delegation: nullable(z.object({ max_depth: z.number(), max_children: z.number() })),
    /** what its children take of its spend cycle: live carves plus the spend of children ended this cycle */
    carved_spend: z.string(),
    /** after a rotation with a grace period: when the replaced secret stops working (null: it already has) */
    previous_secret_expires_at: nullable(z.string()),
    /** each run's own budget inside the key (requests that send `x-spendgate-run`), for the run's lifetime */
    run_limit: nullable(z.object({ spend: nullable(z.string()), requests: nullable(z.number()) })),
  }),
);
/** The schema documents the view the keys module defines: if either changes alone, this stops compiling. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const SPEND_KEY_SCHEMA_MATCHES_VIEW: Same<z.output<typeof SpendKey>, SpendKeyView> = true;
export const SpendKeyCreated = named("SpendKeyCreated", z.extend(SpendKey, { key: z.string() }));
/** A rotation's optional body: how long the replaced secret keeps working (an agent mid-run is not cut off). */
export const RotateSpendKey = named(
  "RotateSpendKey",
  z.strictObject({ grace_period_seconds: z.optional(z.int().check(z.minimum(0), z.maximum(86_400))) }),
);
export const SpendKeyRevoked = named("SpendKeyRevoked", z.object({ success: z.literal(true) }));

export const SecretKey = named(
  "SecretKey",
  z.object({ secret_key_id: z.string(), name: z.string(), secret_key_hint: z.string(), created_at: z.string() }),
);
export const SecretKeyCreated = named("SecretKeyCreated", z.extend(SecretKey, { secret_key: z.string() }));
export const CreateSecretKey = named("CreateSecretKey", z.strictObject({ name: Name }));
export const SecretKeyDeleted = named("SecretKeyDeleted", z.object({ id: z.string(), deleted: z.literal(true) }));

export const LedgerEntry = named(
  "Request",
  z.object({
    request_id: z.string(),
    spend_key_id: z.string(),
    status: z.enum(["completed", "error", "aborted"]),
    provider: z.string(),
    model: z.string(),
    /** the catalog model that priced the request (`model` may be an alias or a dated snapshot of it) */
    priced_model: z.string(),
    endpoint: z.string(),
    response_id: nullable(z.string()),
    model_usage: z.object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      total_tokens: z.number(),
      cache_read_tokens: z.number(),
      cache_write_tokens: z.number(),
      reasoning_tokens: z.number(),
      /** image or audio input tokens (priced apart from text) */
      media_input_tokens: z.number(),
      /** images, seconds of audio or characters, for what is priced per unit */
      units: z.number(),
      input_cost: z.string(),
      output_cost: z.string(),
      /** per-call fees and durations (web searches, file searches, seconds of audio) */
      fee_cost: z.string(),
      total_cost: nullable(z.string()),
      /** every count the provider reported, by the price database's usage keys */
      usage: z.record(z.string(), z.number()),
    }),
    /** what was charged; null when the request had no price (a key without a spend limit): see `cost_note` */
    cost: nullable(z.string()),
    cost_note: nullable(z.string()),
    usage_known: z.boolean(),
    /** the provider billed more than the request's hold */
    overage: z.boolean(),
    stream: z.boolean(),
    http_status: nullable(z.number()),
    latency_ms: z.number(),
    metadata: z.record(z.string(), z.string()),
    /** the run the request named (`x-spendgate-run` or metadata `run`); null when none */
    run_id: nullable(z.string()),
    created_at: z.string(),
  }),
);

export const RequestsQuery = z.extend(Pagination, {
  spend_key_id: z.optional(z.string().check(z.maxLength(100))),
  /** the id the request named, or the model that priced it */
  model: z.optional(z.string().check(z.maxLength(200))),
  status: z.optional(z.enum(["completed", "error", "aborted"])),
  /** the rows of one run (`x-spendgate-run`) */
  run_id: z.optional(RunId),
  /** rows created at or after this instant (ISO date or date-time) */
  start: z.optional(Instant),
  /** rows created before this instant */
  end: z.optional(Instant),
});

export const RequestIdParam = z.object({ request_id: PathId });
