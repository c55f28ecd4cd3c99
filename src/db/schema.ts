import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * D1 is the system of record for configuration and the ledger; the KeyGuard Durable Object is the
 * authority at request time and flushes counter snapshots and ledger rows here from its alarm.
 * Times are ms since epoch; money is integer nano-dollars (prices: nano-dollars per 1M tokens).
 */

/**
 * Exact prices and costs. A price is integer nano-dollars per its unit's `per` (per 1M tokens, per 1,000 web
 * searches, per hour of audio…), flat or tiered by the request's total input tokens. Costs are computed in exact
 * integers of ninths of a femto-dollar (every `per` divides 9e6, so every term is an integer there), then rounded
 * up once: to femto-dollars for the ledger's components, to a nano-dollar for the charge.
 */
export type Rate = number | { base: number; tiers: readonly (readonly [start: number, price: number])[] };

export const wallets = sqliteTable(
  "wallets",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("wallets_created").on(t.createdAt, t.id)],
);

export const walletSecretKeys = sqliteTable(
  "wallet_secret_keys",
  {
    id: text("id").primaryKey(),
    walletId: text("wallet_id")
      .notNull()
      .references(() => wallets.id),
    name: text("name").notNull(),
    keyHash: text("key_hash").notNull(),
    hint: text("hint").notNull(),
    createdAt: integer("created_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [index("wallet_secret_keys_wallet").on(t.walletId, t.createdAt)],
);

export const spendKeys = sqliteTable(
  "spend_keys",
  {
    id: text("id").primaryKey(),
    walletId: text("wallet_id")
      .notNull()
      .references(() => wallets.id),
    name: text("name").notNull(),
    keyHash: text("key_hash").notNull(),
    keyPreview: text("key_preview").notNull(),
    status: text("status", { enum: ["active", "paused"] }).notNull(),
    requestShape: text("request_shape", { enum: ["openai", "anthropic"] }).notNull(),
    allowedModels: text("allowed_models", { mode: "json" }).$type<string[] | null>(),
    allowedProviders: text("allowed_providers", { mode: "json" }).$type<string[] | null>(),
    spendLimitNanos: integer("spend_limit_nanos"),
    spendLimitCycle: text("spend_limit_cycle"),
    requestLimitCount: integer("request_limit_count"),
    requestLimitCycle: text("request_limit_cycle"),
    rateLimitRpm: integer("rate_limit_rpm"),
    rateLimitBurst: integer("rate_limit_burst"),
    expiresAt: integer("expires_at"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    // Bumped by one on every management change, in the key's KeyGuard; D1 only takes a newer version.
    configVersion: integer("config_version").notNull().default(0),
    /** fractions of the spend limit that raise a webhook event, once per cycle each; null: the default */
    alertThresholds: text("alert_thresholds", { mode: "json" }).$type<number[] | null>(),
    // Lower a request's output limit to what the spend limit affords instead of refusing it (hold.ts).
    clampOutput: integer("clamp_output", { mode: "boolean" }).notNull().default(true),
    // Tokens per cycle and per UTC minute (docs/limits-and-metering.md: what counts); null: no such limit.
    tokenLimitCount: integer("token_limit_count"),
    tokenLimitCycle: text("token_limit_cycle"),
    tokensPerMinute: integer("tokens_per_minute"),
    // Each run's own budget inside the key (`run_limit`), for the run's lifetime; null: no such limit.
    runSpendLimitNanos: integer("run_spend_limit_nanos"),
    runRequestLimit: integer("run_request_limit"),
    revokedAt: integer("revoked_at"),
    // A child key (minted by its parent with POST /v1/key/children): its parent's id; null for a root key.
    parentKeyId: text("parent_key_id"),
    // What the key may delegate: levels of children below it (1..3) and direct children a cycle (1..20); null: none.
    delegationMaxDepth: integer("delegation_max_depth"),
    delegationMaxChildren: integer("delegation_max_children"),
    // The hash of the secret a rotation replaced, accepted until previous_key_expires_at (the grace period).
    previousKeyHash: text("previous_key_hash"),
    previousKeyExpiresAt: integer("previous_key_expires_at"),
    // Counter snapshot, written by the KeyGuard's alarm (absolute values, newest `snapshotAt` wins).
    currentSpendNanos: integer("current_spend_nanos").notNull().default(0),
    totalSpendNanos: integer("total_spend_nanos").notNull().default(0),
    currentRequests: integer("current_requests").notNull().default(0),
    totalRequests: integer("total_requests").notNull().default(0),
    spendPeriodStart: integer("spend_period_start"),
    requestPeriodStart: integer("request_period_start"),
    lastUsedAt: integer("last_used_at"),
    snapshotAt: integer("snapshot_at").notNull().default(0),
    // What the key's live and returned children take of its spend cycle (guard/children.ts), with the counters.
    carvedSpendNanos: integer("carved_spend_nanos").notNull().default(0),
    currentTokens: integer("current_tokens").notNull().default(0),
    totalTokens: integer("total_tokens").notNull().default(0),
    tokenPeriodStart: integer("token_period_start"),
  },
  (t) => [index("spend_keys_wallet_created").on(t.walletId, t.createdAt, t.id)],
);

/** Webhook endpoints of a wallet. The signing secret is stored encrypted (AES-GCM), never in plaintext. */
export const webhooks = sqliteTable(
  "webhooks",
  {
    id: text("id").primaryKey(),
    walletId: text("wallet_id")
      .notNull()
      .references(() => wallets.id),
    name: text("name").notNull(),
    url: text("url").notNull(),
    /** event types delivered; null: every type */
    events: text("events", { mode: "json" }).$type<string[] | null>(),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    secretCipher: text("secret_cipher").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [index("webhooks_wallet_created").on(t.walletId, t.createdAt, t.id)],
);

/** One event for one webhook: its delivery log (the payload is what was signed and sent). */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    webhookId: text("webhook_id").notNull(),
    walletId: text("wallet_id").notNull(),
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    payload: text("payload").notNull(),
    status: text("status", { enum: ["pending", "retrying", "delivered", "dead"] }).notNull(),
    attempts: integer("attempts").notNull(),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    nextAttemptAt: integer("next_attempt_at"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_event").on(t.webhookId, t.eventId),
    index("webhook_deliveries_webhook_created").on(t.webhookId, t.createdAt, t.id),
    index("webhook_deliveries_due").on(t.status, t.nextAttemptAt),
  ],
);

export const modelOverrides = sqliteTable("model_overrides", {
  model: text("model").primaryKey(),
  provider: text("provider").notNull(),
  inputPrice: integer("input_price").notNull(),
  outputPrice: integer("output_price").notNull(),
  cacheReadPrice: integer("cache_read_price"),
  cacheWritePrice: integer("cache_write_price"),
  maxOutputTokens: integer("max_output_tokens"),
  contextWindow: integer("context_window"),
  // Every other price rule, by the price database's keys (nano-dollars per unit; tiers by input tokens).
  rates: text("rates", { mode: "json" }).$type<Record<string, Rate>>(),
  // OpenAI service-tier multipliers as decimal strings (`{"priority": "1.75", "flex": "0.5"}`).
  serviceTiers: text("service_tiers", { mode: "json" }).$type<Record<string, string>>(),
  updatedAt: integer("updated_at").notNull(),
});

export const requests = sqliteTable(
  "requests",
  {
    requestId: text("request_id").notNull(),
    spendKeyId: text("spend_key_id").notNull(),
    walletId: text("wallet_id").notNull(),
    status: text("status", { enum: ["completed", "error", "aborted"] }).notNull(),
    provider: text("provider").notNull(),
    // The id the request named, and the model that priced it (an alias or snapshot resolves to it).
    model: text("model").notNull(),
    pricedModel: text("priced_model"),
    endpoint: text("endpoint").notNull(),
    responseId: text("response_id"),
    httpStatus: integer("http_status"),
    inputTokens: integer("input_tokens").notNull(),
    outputTokens: integer("output_tokens").notNull(),
    cacheReadTokens: integer("cache_read_tokens").notNull(),
    cacheWriteTokens: integer("cache_write_tokens").notNull(),
    reasoningTokens: integer("reasoning_tokens").notNull(),
    // Image or audio input tokens priced apart from text, and what is priced per unit (images, seconds, characters).
    mediaInputTokens: integer("media_input_tokens").notNull().default(0),
    units: integer("units").notNull().default(0),
    // Exact component costs in femto-dollars as decimal integer strings (they can exceed 2^53).
    inputCostFemtos: text("input_cost_femtos").notNull(),
    outputCostFemtos: text("output_cost_femtos").notNull(),
    // Per-call fees and what is neither input nor output (web searches, seconds of audio).
    feeCostFemtos: text("fee_cost_femtos").notNull().default("0"),
    // Every count the provider reported, by the price database's usage keys.
    usage: text("usage", { mode: "json" }).$type<Record<string, number>>(),
    // Why the request has no price (the wire shows `cost: null`); null when priced.
    costNote: text("cost_note"),
    costNanos: integer("cost_nanos").notNull(),
    usageKnown: integer("usage_known", { mode: "boolean" }).notNull(),
    // The provider billed more than the request's hold: charged in full, and the key stops until its next cycle.
    overage: integer("overage", { mode: "boolean" }).notNull().default(false),
    stream: integer("stream", { mode: "boolean" }).notNull(),
    latencyMs: integer("latency_ms").notNull(),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>().notNull(),
    createdAt: integer("created_at").notNull(),
    // The key's parent when it is a child key (its subtree's spend is read by joining on it).
    parentKeyId: text("parent_key_id"),
    // The run the request named (`x-spendgate-run` or metadata `run`); null when it named none.
    runId: text("run_id"),
    // Set while retention archives the row (the R2 part it goes to); null otherwise. bookkeeping/retention.ts
    archivePart: text("archive_part"),
  },
  (t) => [
    uniqueIndex("requests_request_id").on(t.requestId),
    index("requests_wallet_created").on(t.walletId, t.createdAt, t.requestId),
    index("requests_key_created").on(t.spendKeyId, t.createdAt, t.requestId),
    // Retention walks the oldest rows day by day, and finds a part it claimed but did not finish.
    index("requests_created").on(t.createdAt),
    index("requests_archive_part").on(t.archivePart).where(sql`${t.archivePart} IS NOT NULL`),
    // Usage by run reads a wallet's rows that named a run, in a time range (`GET /v1/usage?group_by=run`).
    index("requests_wallet_run").on(t.walletId, t.runId, t.createdAt).where(sql`${t.runId} IS NOT NULL`),
  ],
);

/**
 * Exact per key × model × UTC day totals of the ledger, kept for ever. A trigger on `requests` adds each row as
 * it is inserted (a replayed insert inserts nothing, so adds nothing); archiving raw rows never touches them.
 */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    day: integer("day").notNull(),
    walletId: text("wallet_id").notNull(),
    spendKeyId: text("spend_key_id").notNull(),
    model: text("model").notNull(),
    requests: integer("requests").notNull(),
    inputTokens: integer("input_tokens").notNull(),
    outputTokens: integer("output_tokens").notNull(),
    cacheReadTokens: integer("cache_read_tokens").notNull(),
    cacheWriteTokens: integer("cache_write_tokens").notNull(),
    reasoningTokens: integer("reasoning_tokens").notNull(),
    mediaInputTokens: integer("media_input_tokens").notNull(),
    units: integer("units").notNull(),
    costNanos: integer("cost_nanos").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.walletId, t.day, t.spendKeyId, t.model] }),
    index("usage_daily_key_day").on(t.spendKeyId, t.day),
  ],
);

/** Raw ledger rows held in D1 per UTC day (trigger-maintained): what the retention's size budget counts. */
export const ledgerDays = sqliteTable("ledger_days", {
  day: integer("day").primaryKey(),
  rawRows: integer("raw_rows").notNull(),
});

/** Retention's progress: `archived_before` — raw rows before this instant may have left D1 for the archive. */
export const retentionState = sqliteTable("retention_state", {
  name: text("name").primaryKey(),
  value: integer("value").notNull(),
});

export type SpendKeyRow = typeof spendKeys.$inferSelect;
export type LedgerRow = typeof requests.$inferInsert;

/** Dashboard sign-ins: the session id is only ever stored hashed; a row is deleted on sign-out. */
export const dashboardSessions = sqliteTable(
  "dashboard_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    walletId: text("wallet_id").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("dashboard_sessions_expires").on(t.expiresAt)],
);

/** Failed dashboard sign-ins per client (a hash of its address), counted in a fixed window. */
export const signinFailures = sqliteTable("signin_failures", {
  client: text("client").primaryKey(),
  windowStart: integer("window_start").notNull(),
  failures: integer("failures").notNull(),
});
