import { and, eq, isNull, lt } from "drizzle-orm";
import type { Context } from "hono";
import { database } from "../db/client.ts";
import { type SpendKeyRow, spendKeys } from "../db/schema.ts";
import { type AppEnv, type Bindings, keyGuard } from "../env.ts";
import { type KeyChange, type KeyRecord, recordOf } from "../guard/record.ts";
import type { Managed } from "../guard/types.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { hashSecret, isKeyId, issueKey, keyPreview } from "../lib/keys.ts";
import { ApiRouter } from "../lib/openapi.ts";
import { type EventType, emitEvent } from "../webhooks/events.ts";
import { eventId } from "../webhooks/secrets.ts";
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
} from "./schemas.ts";
import { columnsFrom } from "./spend-key-fields.ts";
import { countsOf, serializeSpendKey } from "./spend-key-view.ts";

const notFound = (id: string) => new ApiError("not_found", `No spend key with id '${id}'.`, { param: "id" });

/**
 * Applies one change inside the key's KeyGuard (the one writer of a key), then lets D1 follow. Unknown ids,
 * another wallet's keys (answered exactly like unknown ones) and revoked keys are 404.
 */
async function change(
  env: Bindings,
  walletId: string,
  id: string,
  what: KeyChange,
): Promise<Managed & { previous: KeyRecord }> {
  const managed = isKeyId("spend", id) ? await keyGuard(env, id).manage(walletId, what) : null;
  if (!managed) throw notFound(id);
  await mirror(env, managed.record);
  return managed;
}

/**
 * D1 follows the guard: only a copy newer than the one it holds lands, so racing writes leave D1 with the
 * guard's latest record whatever order their D1 writes arrive in. The counter columns belong to the guard's
 * flushes and are never written here.
 */
async function mirror(env: Bindings, record: KeyRecord): Promise<void> {
  const { id, walletId, createdAt, ...fields } = record;
  await database(env.DB)
    .update(spendKeys)
    .set(fields)
    .where(and(eq(spendKeys.id, id), lt(spendKeys.configVersion, record.configVersion)));
}

/**
 * Management events go to the wallet's webhooks after the change has landed, in the background: one delivery
 * row per webhook (the durable record the sweeper retries from), then the queue.
 */
function announce(c: Context<AppEnv>, types: EventType[], managed: Managed): void {
  const now = Date.now();
  const data = { spend_key: serializeSpendKey(managed.record, managed.snapshot, now) };
  const created_at = new Date(now).toISOString();
  const work = Promise.all(
    types.map((type) => emitEvent(c.env, managed.record.walletId, { id: eventId(), type, created_at, data })),
  ).catch((err) => console.error("webhook event not emitted", err instanceof Error ? err.message : String(err)));
  c.executionCtx.waitUntil(work);
}

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
      responses: {
        201: { description: "The new spend key; `key` is shown only now", schema: SpendKeyCreated },
        ...ERRORS,
      },
    },
    async (c, { body }) => {
      const now = Date.now();
      const issued = issueKey("spend");
      const record: KeyRecord = {
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
        configVersion: 1,
        revokedAt: null,
        alertThresholds: null,
        ...(await columnsFrom(c.env, body)),
        clampOutput: body.clamp_output ?? true,
      };
      const created = await keyGuard(c.env, record.id).create(record);
      // A fresh random id cannot have a record already; if it does, nothing is written and nothing shown.
      if (!created) throw new ApiError("conflict", "Could not create the spend key; try again.");
      await database(c.env.DB).insert(spendKeys).values(created.record);
      announce(c, ["spend_key.created"], created);
      return c.json({ ...serializeSpendKey(created.record, created.snapshot, now), key: issued.key }, 201);
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
      responses: {
        200: { description: "A page of spend keys (counters within ~1 s)", schema: listOf("SpendKeyList", SpendKey) },
        ...ERRORS,
      },
    },
    async (c, { query }) => {
      const t = spendKeys;
      const mine = and(eq(t.walletId, c.get("walletId")), isNull(t.revokedAt));
      const now = Date.now();
      const wire = (r: SpendKeyRow) => serializeSpendKey(recordOf(r), countsOf(r, now), now);
      return c.json(await listPage(c.env.DB, t, t.id, mine, query, wire));
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
      // The guard's record, not D1's copy: what a read shows is what the gateway enforces.
      const managed = isKeyId("spend", params.id) ? await keyGuard(c.env, params.id).read(c.get("walletId")) : null;
      if (!managed) throw notFound(params.id);
      return c.json(serializeSpendKey(managed.record, managed.snapshot));
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
      const fields = await columnsFrom(c.env, body);
      const managed = await change(c.env, c.get("walletId"), params.id, { kind: "update", fields });
      const was = managed.previous.status;
      const now = managed.record.status;
      const status = was === now ? null : now === "paused" ? "spend_key.paused" : "spend_key.resumed";
      announce(c, status ? ["spend_key.updated", status] : ["spend_key.updated"], managed);
      return c.json(serializeSpendKey(managed.record, managed.snapshot));
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
      responses: {
        200: {
          description: "Same id, limits and counters; a new `key`. The old key fails at once.",
          schema: SpendKeyCreated,
        },
        ...ERRORS,
      },
    },
    async (c, { params }) => {
      const issued = issueKey("spend", params.id);
      const rotate = {
        kind: "rotate" as const,
        keyHash: await hashSecret(issued.key),
        keyPreview: keyPreview(issued.key),
      };
      const managed = await change(c.env, c.get("walletId"), params.id, rotate);
      announce(c, ["spend_key.rotated"], managed);
      return c.json({ ...serializeSpendKey(managed.record, managed.snapshot), key: issued.key });
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
      responses: {
        200: { description: "Revoked: the key fails on its very next request", schema: SpendKeyRevoked },
        ...ERRORS,
      },
    },
    async (c, { params }) => {
      announce(c, ["spend_key.revoked"], await change(c.env, c.get("walletId"), params.id, { kind: "revoke" }));
      return c.json({ success: true });
    },
  );
