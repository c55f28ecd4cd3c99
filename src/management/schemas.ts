import { z } from "@hono/zod-openapi";
import { CYCLES } from "../lib/cycles.ts";
import { parseUsd } from "../lib/money.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";

/** The request and response shapes of the operator and management APIs: they validate and they document. */

const Cycle = z.enum(CYCLES).openapi({ description: "UTC calendar cycle; `total` never resets" });

export const UsdAmount = z
  .string()
  .refine((s) => {
    const n = parseUsd(s);
    return n !== null && n > 0;
  }, "must be a positive USD decimal string with at most 9 decimals and at most 999999 dollars, e.g. \"50.00\"")
  .openapi({ example: "50.00" });

const Price = z
  .string()
  .refine((s) => parseUsd(s) !== null, "must be a USD decimal string (per 1M tokens), e.g. \"0.15\"")
  .openapi({ example: "0.15" });

const FutureDate = z.iso
  .datetime({ offset: true })
  .refine((s) => Date.parse(s) > Date.now(), "must be in the future")
  .openapi({ example: "2027-01-01T00:00:00Z" });

const SpendLimit = z.strictObject({ amount: UsdAmount, cycle: Cycle });
const RequestLimit = z.strictObject({ count: z.number().int().positive().max(1_000_000_000), cycle: Cycle });
const RateLimit = z.strictObject({
  rpm: z.number().int().positive().max(1_000_000),
  burst: z.number().int().positive().max(1_000_000).nullable().optional().openapi({ description: "defaults to rpm" }),
});
const Name = z.string().trim().min(1).max(200);

const spendKeyFields = {
  status: z.enum(["active", "paused"]).optional(),
  request_shape: z.enum(["openai", "anthropic"]).optional(),
  allowed_models: z.array(z.string().min(1).max(200)).max(500).nullable().optional(),
  allowed_providers: z.array(z.enum(PROVIDER_IDS as [string, ...string[]])).max(50).nullable().optional(),
  spend_limit: SpendLimit.nullable().optional(),
  request_limit: RequestLimit.nullable().optional(),
  rate_limit: RateLimit.nullable().optional(),
  expires_at: FutureDate.nullable().optional(),
};

export const CreateSpendKey = z.strictObject({ name: Name, ...spendKeyFields }).openapi("CreateSpendKey");
export const UpdateSpendKey = z.strictObject({ name: Name.optional(), ...spendKeyFields }).openapi("UpdateSpendKey");
export type CreateSpendKeyBody = z.infer<typeof CreateSpendKey>;
export type UpdateSpendKeyBody = z.infer<typeof UpdateSpendKey>;

export const SpendKey = z
  .object({
    spend_key_id: z.string(),
    key_preview: z.string(),
    name: z.string(),
    status: z.enum(["active", "paused"]),
    request_shape: z.enum(["openai", "anthropic"]),
    wallet_id: z.string(),
    allowed_models: z.array(z.string()).nullable(),
    allowed_providers: z.array(z.string()).nullable(),
    spend_limit: z.object({ amount: z.string(), cycle: Cycle }).nullable(),
    current_spend: z.string(),
    total_spend: z.string(),
    request_limit: z.object({ count: z.number(), cycle: Cycle }).nullable(),
    current_requests: z.number(),
    total_requests: z.number(),
    rate_limit: z.object({ rpm: z.number(), burst: z.number() }).nullable(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    spend_resets_at: z.string().nullable(),
    requests_resets_at: z.string().nullable(),
  })
  .openapi("SpendKey");
export type SpendKeyWire = z.infer<typeof SpendKey>;

export const SpendKeyCreated = SpendKey.extend({ key: z.string() }).openapi("SpendKeyCreated");

export const Pagination = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const listOf = <T extends z.ZodType>(item: T, name: string) =>
  z.object({ data: z.array(item), has_more: z.boolean(), next_cursor: z.string().optional() }).openapi(name);

export const SecretKey = z
  .object({ secret_key_id: z.string(), name: z.string(), secret_key_hint: z.string(), created_at: z.string() })
  .openapi("SecretKey");
export const SecretKeyCreated = SecretKey.extend({ secret_key: z.string() }).openapi("SecretKeyCreated");
export const CreateSecretKey = z.strictObject({ name: Name }).openapi("CreateSecretKey");

export const LedgerEntry = z
  .object({
    request_id: z.string(),
    spend_key_id: z.string(),
    status: z.enum(["completed", "error", "aborted"]),
    provider: z.string(),
    model: z.string(),
    endpoint: z.string(),
    response_id: z.string().nullable(),
    model_usage: z.object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      total_tokens: z.number(),
      cache_read_tokens: z.number(),
      cache_write_tokens: z.number(),
      reasoning_tokens: z.number(),
      input_cost: z.string(),
      output_cost: z.string(),
      total_cost: z.string(),
    }),
    cost: z.string(),
    usage_known: z.boolean(),
    stream: z.boolean(),
    http_status: z.number().nullable(),
    latency_ms: z.number(),
    metadata: z.record(z.string(), z.string()),
    created_at: z.string(),
  })
  .openapi("Request");

export const RequestsQuery = Pagination.extend({ spend_key_id: z.string().max(100).optional() });

export const CreateWallet = z.strictObject({ name: Name }).openapi("CreateWallet");
export const Wallet = z
  .object({ wallet_id: z.string(), name: z.string(), created_at: z.string() })
  .openapi("Wallet");
export const WalletCreated = Wallet.extend({
  secret_key_id: z.string(),
  secret_key_hint: z.string(),
  secret_key: z.string(),
}).openapi("WalletCreated");

export const PutModel = z
  .strictObject({
    provider: z.enum(PROVIDER_IDS as [string, ...string[]]),
    input_price: Price,
    output_price: Price,
    cache_read_price: Price.optional(),
    cache_write_price: Price.optional(),
    max_output_tokens: z.number().int().min(0).max(10_000_000).optional(),
  })
  .openapi("PutModel");

export const ModelEntryWire = z
  .object({
    id: z.string(),
    provider: z.string(),
    input_price: z.string().nullable(),
    output_price: z.string().nullable(),
    cache_read_price: z.string().nullable(),
    cache_write_price: z.string().nullable(),
    max_output_tokens: z.number(),
    overridden: z.boolean(),
  })
  .openapi("ModelEntry");

export const ModelList = z
  .object({
    object: z.literal("list"),
    data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: z.number(), owned_by: z.string() })),
  })
  .openapi("ModelList");

export const ErrorBody = z
  .object({
    error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string() }),
  })
  .openapi("Error");

const PathId = z.string().min(1).max(200);
export const IdParam = z.object({ id: PathId });
export const ModelParam = z.object({ model: PathId });
export const RequestIdParam = z.object({ request_id: PathId });

export const SpendKeyRevoked = z.object({ success: z.literal(true) }).openapi("SpendKeyRevoked");
export const SecretKeyDeleted = z.object({ id: z.string(), deleted: z.literal(true) }).openapi("SecretKeyDeleted");
