import { and, desc, eq, isNull, lt } from "drizzle-orm";
import { getCatalog } from "../catalog/catalog.ts";
import { database } from "../db/client.ts";
import { spendKeys, type SpendKeyRow } from "../db/schema.ts";
import { keyGuard, type Bindings } from "../env.ts";
import type { KeyConfig, KeySnapshot } from "../guard/types.ts";
import { afterCursor, page } from "../lib/cursor.ts";
import { periodEnd, visibleCurrent, type Cycle } from "../lib/cycles.ts";
import { isoOrNull as iso } from "../lib/time.ts";
import { ApiError } from "../lib/errors.ts";
import { hashSecret, issueKey, keyPreview } from "../lib/keys.ts";
import { formatUsd, parseUsd } from "../lib/money.ts";
import { ApiRouter } from "../lib/openapi.ts";
import {
  CreateSpendKey,
  ERRORS,
  IdParam,
  listOf,
  Pagination,
  SpendKey,
  SpendKeyCreated,
  SpendKeyRevoked,
  UpdateSpendKey,
  type SpendKeyWire,
  type UpdateSpendKeyBody,
} from "./schemas.ts";


export function toConfig(row: SpendKeyRow): KeyConfig {
  return {
    spendKeyId: row.id,
    walletId: row.walletId,
    secretHash: row.keyHash,
    status: row.status,
    requestShape: row.requestShape,
    allowedModels: row.allowedModels ?? null,
    allowedProviders: row.allowedProviders ?? null,
    spendLimit:
      row.spendLimitNanos !== null ? { nanos: row.spendLimitNanos, cycle: row.spendLimitCycle as Cycle } : null,
    requestLimit:
      row.requestLimitCount !== null ? { count: row.requestLimitCount, cycle: row.requestLimitCycle as Cycle } : null,
    rateLimit:
      row.rateLimitRpm !== null ? { rpm: row.rateLimitRpm, burst: row.rateLimitBurst ?? row.rateLimitRpm } : null,
    expiresAt: row.expiresAt,
    revoked: row.revokedAt !== null,
    version: row.updatedAt,
  };
}

/** The wire form; counters come from the KeyGuard (exact) or, in lists, from the D1 snapshot. */
export function serializeSpendKey(row: SpendKeyRow, live: KeySnapshot | null, now = Date.now()): SpendKeyWire {
  const spendCycle = (row.spendLimitCycle as Cycle | null) ?? null;
  const requestCycle = (row.requestLimitCycle as Cycle | null) ?? null;
  const counters = live ?? {
    currentSpendNanos: visibleCurrent(spendCycle, row.spendPeriodStart ?? 0, row.currentSpendNanos, row.totalSpendNanos, now),
    totalSpendNanos: row.totalSpendNanos,
    currentRequests: visibleCurrent(requestCycle, row.requestPeriodStart ?? 0, row.currentRequests, row.totalRequests, now),
    totalRequests: row.totalRequests,
    lastUsedAt: row.lastUsedAt,
  };
  return {
    spend_key_id: row.id,
    key_preview: row.keyPreview,
    name: row.name,
    status: row.status,
    request_shape: row.requestShape,
    wallet_id: row.walletId,
    allowed_models: row.allowedModels ?? null,
    allowed_providers: row.allowedProviders ?? null,
    spend_limit: row.spendLimitNanos !== null ? { amount: formatUsd(row.spendLimitNanos), cycle: spendCycle! } : null,
    current_spend: formatUsd(counters.currentSpendNanos),
    total_spend: formatUsd(counters.totalSpendNanos),
    request_limit: row.requestLimitCount !== null ? { count: row.requestLimitCount, cycle: requestCycle! } : null,
    current_requests: counters.currentRequests,
    total_requests: counters.totalRequests,
    rate_limit: row.rateLimitRpm !== null ? { rpm: row.rateLimitRpm, burst: row.rateLimitBurst ?? row.rateLimitRpm } : null,
    expires_at: iso(row.expiresAt),
    last_used_at: iso(counters.lastUsedAt),
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
    spend_resets_at: spendCycle ? iso(periodEnd(spendCycle, now)) : null,
    requests_resets_at: requestCycle ? iso(periodEnd(requestCycle, now)) : null,
  };
}

/** Fields of a create/update body as column values; absent fields stay untouched, `null` clears. */
async function columnsFrom(env: Bindings, body: UpdateSpendKeyBody): Promise<Partial<SpendKeyRow>> {
  const cols: Partial<SpendKeyRow> = {};
  if (body.name !== undefined) cols.name = body.name;
  if (body.status !== undefined) cols.status = body.status;
  if (body.request_shape !== undefined) cols.requestShape = body.request_shape;
  if (body.allowed_models !== undefined) {
    if (body.allowed_models) {
      const catalog = await getCatalog(env.DB);
      const unknown = body.allowed_models.find((m) => !catalog.has(m));
      if (unknown !== undefined) {
        throw new ApiError("invalid_request", `allowed_models: '${unknown}' is not a model in the catalog (GET /v1/models)`, {
          param: "allowed_models",
        });
      }
    }
    cols.allowedModels = body.allowed_models ? [...new Set(body.allowed_models)] : null;
  }
  if (body.allowed_providers !== undefined) {
    cols.allowedProviders = body.allowed_providers ? [...new Set(body.allowed_providers)] : null;
  }
  if (body.spend_limit !== undefined) {
    cols.spendLimitNanos = body.spend_limit ? parseUsd(body.spend_limit.amount) : null;
    cols.spendLimitCycle = body.spend_limit?.cycle ?? null;
  }
  if (body.request_limit !== undefined) {
    cols.requestLimitCount = body.request_limit?.count ?? null;
    cols.requestLimitCycle = body.request_limit?.cycle ?? null;
  }
  if (body.rate_limit !== undefined) {
    cols.rateLimitRpm = body.rate_limit?.rpm ?? null;
    cols.rateLimitBurst = body.rate_limit ? (body.rate_limit.burst ?? body.rate_limit.rpm) : null;
  }
  if (body.expires_at !== undefined) cols.expiresAt = body.expires_at === null ? null : Date.parse(body.expires_at);
  return cols;
}

async function findKey(env: Bindings, walletId: string, id: string): Promise<SpendKeyRow> {
  const row = await database(env.DB)
    .select()
    .from(spendKeys)
    .where(and(eq(spendKeys.id, id), eq(spendKeys.walletId, walletId), isNull(spendKeys.revokedAt)))
    .get();
  // Another wallet's key answers exactly like an unknown one.
  if (!row) throw new ApiError("not_found", `No spend key with id '${id}'.`, { param: "id" });
  return row;
}

/**
 * Management writes go to the key's KeyGuard first and to D1 second: if the D1 write fails the guard has
 * already moved to the stricter state (rotated / revoked / new limits) and a retry converges.
 */
async function write(env: Bindings, proposed: SpendKeyRow, insert: boolean): Promise<{ row: SpendKeyRow; snapshot: KeySnapshot }> {
  const { version, ...snapshot } = await keyGuard(env, proposed.id).configure(toConfig(proposed));
  const row = { ...proposed, updatedAt: version };
  const db = database(env.DB);
  if (insert) {
    await db.insert(spendKeys).values(row);
  } else {
    // Configuration only: the counter columns belong to the KeyGuard's flushes. Only a newer version lands.
    const { id, walletId, createdAt, currentSpendNanos, totalSpendNanos, currentRequests, totalRequests, spendPeriodStart, requestPeriodStart, lastUsedAt, snapshotAt, ...config } = row;
    await db.update(spendKeys).set(config).where(and(eq(spendKeys.id, row.id), lt(spendKeys.updatedAt, row.updatedAt)));
  }
  return { row, snapshot };
}

/** A row's next `updated_at`: now, but always after the last one (it versions the configuration). */
const nextVersion = (row: SpendKeyRow) => Math.max(Date.now(), row.updatedAt + 1);

const tags = ["Spend keys"];
const security = "walletKey" as const;

export const spendKeyRoutes = new ApiRouter()
  .route(
    {
      method: "post",
      path: "/spend_keys",
      summary: "Create a spend key",
      tags,
      security,
      body: CreateSpendKey,
      responses: { 201: { description: "The new spend key; `key` is shown only now", schema: SpendKeyCreated }, ...ERRORS },
    },
    async (c, { body }) => {
      const now = Date.now();
      const issued = issueKey("spend");
      const row: SpendKeyRow = {
        id: issued.id,
        walletId: c.get("walletId"),
        name: body.name,
        keyHash: await hashSecret(issued.key),
        keyPreview: keyPreview(issued.key),
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
        revokedAt: null,
        currentSpendNanos: 0,
        totalSpendNanos: 0,
        currentRequests: 0,
        totalRequests: 0,
        spendPeriodStart: null,
        requestPeriodStart: null,
        lastUsedAt: null,
        snapshotAt: 0,
        ...(await columnsFrom(c.env, body)),
      };
      const written = await write(c.env, row, true);
      return c.json({ ...serializeSpendKey(written.row, written.snapshot, now), key: issued.key }, 201);
    },
  )
  .route(
    {
      method: "get",
      path: "/spend_keys",
      summary: "List spend keys, newest first",
      tags,
      security,
      query: Pagination,
      responses: { 200: { description: "A page of spend keys (counters within ~1 s)", schema: listOf("SpendKeyList", SpendKey) }, ...ERRORS },
    },
    async (c, { query: { cursor, limit } }) => {
      const rows = await database(c.env.DB)
        .select()
        .from(spendKeys)
        .where(and(eq(spendKeys.walletId, c.get("walletId")), isNull(spendKeys.revokedAt), afterCursor(cursor, spendKeys.createdAt, spendKeys.id)))
        .orderBy(desc(spendKeys.createdAt), desc(spendKeys.id))
        .limit(limit + 1)
        .all();
      const now = Date.now();
      return c.json(page(rows, limit, (r) => [r.createdAt, r.id], (r) => serializeSpendKey(r, null, now)));
    },
  )
  .route(
    {
      method: "get",
      path: "/spend_keys/{id}",
      summary: "Retrieve a spend key with exact live counters",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "The spend key", schema: SpendKey }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findKey(c.env, c.get("walletId"), params.id);
      const snapshot = await keyGuard(c.env, row.id).snapshot();
      return c.json(serializeSpendKey(row, snapshot));
    },
  );

for (const method of ["put", "patch"] as const) {
  spendKeyRoutes.route(
    {
      method,
      path: "/spend_keys/{id}",
      summary: "Update a spend key: only the fields sent change; null clears a limit",
      tags,
      security,
      params: IdParam,
      body: UpdateSpendKey,
      responses: { 200: { description: "The updated spend key", schema: SpendKey }, ...ERRORS },
    },
    async (c, { params, body }) => {
      const row = await findKey(c.env, c.get("walletId"), params.id);
      const written = await write(c.env, { ...row, ...(await columnsFrom(c.env, body)), updatedAt: nextVersion(row) }, false);
      return c.json(serializeSpendKey(written.row, written.snapshot));
    },
  );
}

spendKeyRoutes
  .route(
    {
      method: "post",
      path: "/spend_keys/{id}/rotate",
      summary: "Rotate a spend key's secret",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "Same id, limits and counters; a new `key`. The old key fails at once.", schema: SpendKeyCreated }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findKey(c.env, c.get("walletId"), params.id);
      const issued = issueKey("spend", row.id);
      const written = await write(c.env, { ...row, keyHash: await hashSecret(issued.key), keyPreview: keyPreview(issued.key), updatedAt: nextVersion(row) }, false);
      return c.json({ ...serializeSpendKey(written.row, written.snapshot), key: issued.key });
    },
  )
  .route(
    {
      method: "delete",
      path: "/spend_keys/{id}",
      summary: "Revoke a spend key",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "Revoked: the key fails on its very next request", schema: SpendKeyRevoked }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findKey(c.env, c.get("walletId"), params.id);
      const version = nextVersion(row);
      await write(c.env, { ...row, revokedAt: version, updatedAt: version }, false);
      return c.json({ success: true });
    },
  );
