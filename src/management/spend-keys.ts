import { and, eq, isNull, lt } from "drizzle-orm";
import { database, walletD1 } from "../db/client.ts";
import { type SpendKeyRow, spendKeys } from "../db/schema.ts";
import type { Bindings } from "../env.ts";
import { keyGuard } from "../guard/stub.ts";
import type { Managed } from "../guard/types.ts";
import { type KeyChange, type KeyRecord, newRecord, recordOf, rowOf } from "../keys/record.ts";
import { countsOf, serializeSpendKey } from "../keys/view.ts";
import { ERRORS, IdParam, listOf } from "../lib/api-schemas.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { hashSecret, isKeyId, issueKey, keyPreview } from "../lib/keys.ts";
import { errorText, log } from "../lib/log.ts";
import { ApiRouter } from "../lib/openapi.ts";
import {
  CreateSpendKey,
  RotateSpendKey,
  SpendKey,
  SpendKeyCreated,
  SpendKeyRevoked,
  SpendKeysQuery,
  UpdateSpendKey,
} from "./schemas.ts";
import { columnsFrom } from "./spend-key-fields.ts";

const notFound = (id: string) => new ApiError("not_found", `No spend key with id '${id}'.`, { param: "id" });

/**
 * Applies one change inside the key's KeyGuard (the one writer of a key), which also queues the change's webhook
 * events and D1's copy of the record; then writes that copy at once, so lists read right after the call show it.
 * Unknown ids, another wallet's keys (answered exactly like unknown ones) and revoked keys are 404.
 */
async function change(
  env: Bindings,
  walletId: string,
  id: string,
  what: KeyChange,
): Promise<Managed & { previous: KeyRecord }> {
  const guard = isKeyId("spend", id) ? keyGuard(env, id) : null;
  const managed = guard ? await guard.manage(walletId, what) : null;
  if (!managed || !guard) throw notFound(id);
  if ("refused" in managed) {
    const { code, message, status, param } = managed.refused;
    throw new ApiError(code, message, { status, ...(param ? { param } : {}) });
  }
  await copyToD1(env, managed.record, false);
  await reachDescendants(guard, id, walletId);
  return managed;
}

/**
 * A pause, resume, revoke or earlier expiry holds for the key's whole subtree before the call answers: the guard
 * pushes it to every descendant's guard (and an ended child's report to its parent), awaited here. Should a push
 * fail, the change has still landed: the guard's alarm pushes again until every descendant has it.
 */
async function reachDescendants(guard: ReturnType<typeof keyGuard>, id: string, walletId: string): Promise<void> {
  try {
    await guard.propagate();
  } catch (err) {
    log("warn", "children.push_deferred", { spend_key_id: id, wallet_id: walletId, error: errorText(err) });
  }
}

/**
 * D1's copy of a record, written at once after the guard applied a change (read-your-writes for lists). Only a
 * version newer than D1's lands, so racing writes leave D1 with the guard's latest record whatever order they
 * arrive in; the counter columns are never written here. The change has landed when the guard answered: if D1
 * fails now, the call still succeeds — the guard's bookkeeping queue brings D1 the same record once it answers.
 */
export async function copyToD1(env: Bindings, record: KeyRecord, created: boolean): Promise<void> {
  const db = database(walletD1(env, record.walletId));
  try {
    if (created) {
      await db.insert(spendKeys).values(rowOf(record)).onConflictDoNothing();
    } else {
      const { id, walletId, createdAt, ...fields } = rowOf(record);
      await db
        .update(spendKeys)
        .set(fields)
        .where(and(eq(spendKeys.id, id), lt(spendKeys.configVersion, record.configVersion)));
    }
  } catch (err) {
    const fields = { spend_key_id: record.id, wallet_id: record.walletId, error: errorText(err) };
    log("warn", "books.copy_deferred", fields);
  }
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
      const key = {
        id: issued.id,
        walletId: c.get("walletId"),
        name: body.name,
        keyHash: await hashSecret(issued.key),
        keyPreview: keyPreview(issued.key),
      };
      const record = newRecord(key, await columnsFrom(c.env, body), now);
      const created = await keyGuard(c.env, record.id).create(record);
      // A fresh random id cannot have a record already; if it does, nothing is written and nothing shown.
      if (!created) throw new ApiError("conflict", "Could not create the spend key; try again.");
      await copyToD1(c.env, created.record, true);
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
      query: SpendKeysQuery,
      responses: {
        200: {
          description:
            "A page of spend keys (counters a second or two behind; a retrieve is exact); `parent_key_id` lists " +
            "only that key's children",
          schema: listOf("SpendKeyList", SpendKey),
        },
        ...ERRORS,
      },
    },
    async (c, { query }) => {
      const t = spendKeys;
      const parent = query.parent_key_id;
      const mine = and(
        eq(t.walletId, c.get("walletId")),
        isNull(t.revokedAt),
        parent === undefined ? undefined : eq(t.parentKeyId, parent),
      );
      const now = Date.now();
      const wire = (r: SpendKeyRow) => serializeSpendKey(recordOf(r), countsOf(r, now), now);
      return c.json(await listPage(walletD1(c.env, c.get("walletId")), t, t.id, mine, query, wire));
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
      body: RotateSpendKey,
      optionalBody: true,
      responses: {
        200: {
          description:
            "Same id, limits and counters; a new `key`. The old key fails at once, or when `grace_period_seconds` " +
            "(at most 86400) have passed: see `previous_secret_expires_at`.",
          schema: SpendKeyCreated,
        },
        ...ERRORS,
      },
    },
    async (c, { params, body }) => {
      const issued = issueKey("spend", params.id);
      const rotate = {
        kind: "rotate" as const,
        keyHash: await hashSecret(issued.key),
        keyPreview: keyPreview(issued.key),
        graceMs: (body.grace_period_seconds ?? 0) * 1000,
      };
      const managed = await change(c.env, c.get("walletId"), params.id, rotate);
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
      await change(c.env, c.get("walletId"), params.id, { kind: "revoke" });
      return c.json({ success: true });
    },
  );
