import type { Bindings } from "../env.ts";
import type { Family } from "../guard/children.ts";
import type { KeyGuard } from "../guard/key-guard.ts";
import { keyGuard } from "../guard/stub.ts";
import type { Managed } from "../guard/types.ts";
import { type KeyRecord, newRecord } from "../keys/record.ts";
import { serializeSpendKey } from "../keys/view.ts";
import { ERRORS } from "../lib/api-schemas.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE, refusalLimit } from "../lib/errors.ts";
import { hashSecret, issueKey, keyPreview, parseKey } from "../lib/keys.ts";
import { parseUsd } from "../lib/money.ts";
import { ApiRouter } from "../lib/openapi.ts";
import { CreateChildKey, SpendKeyCreated } from "./schemas.ts";
import { columnsFrom } from "./spend-key-fields.ts";
import { copyToD1 } from "./spend-keys.ts";

/**
 * `POST /v1/key/children`: a spend key mints a child key for a sub-agent, carved from its own budget, without the
 * wallet's secret key. The parent's KeyGuard checks and reserves (guard/children.ts); the child's guard is then
 * created like any key's, and D1's copy written. The child is an ordinary spend key everywhere after that.
 */
export const childKeyRoutes = new ApiRouter().route(
  {
    method: "post",
    path: "/key/children",
    summary: "Mint a child key carved from the calling spend key's budget",
    tags: ["Child keys"],
    security: "spendKey",
    body: CreateChildKey,
    responses: {
      201: { description: "The child key; `key` is shown only now", schema: SpendKeyCreated },
      ...ERRORS,
      409: { description: "`carve_exceeded`: the carve or the child does not fit the parent (bounds, children)" },
    },
  },
  async (c, { body }) => {
    const env: Bindings = c.env;
    const secret = spendKeyFrom(c.req.raw.headers);
    const parentId = secret ? parseKey("spend", secret) : null;
    const key = { headers: { "x-spendgate-limit": "key" } };
    if (!secret || !parentId) throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE, key);
    const { spend_limit, ...rest } = body;
    const fields = await columnsFrom(env, rest);
    const issued = issueKey("spend");
    const parent = keyGuard(env, parentId);
    const minted = await parent.mintChild(await hashSecret(secret), {
      childId: issued.id,
      fields,
      carveNanos: spend_limit ? parseUsd(spend_limit.amount) : null,
      cycle: spend_limit?.cycle ?? null,
    });
    if (!minted.ok) {
      if (!minted.refusal) throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE, key);
      // The caller holds the parent's secret: it is answered in the parent's dialect, naming what refused.
      c.set("dialect", minted.shape);
      const { code, message, status, param, limit } = minted.refusal;
      const headers = { "x-spendgate-limit": limit ?? refusalLimit(code) };
      throw new ApiError(code, message, { status, headers, ...(param ? { param } : {}) });
    }
    const now = Date.now();
    const child = {
      id: issued.id,
      walletId: minted.walletId,
      name: body.name,
      keyHash: await hashSecret(issued.key),
      keyPreview: keyPreview(issued.key),
    };
    // The fields the parent's guard decided (children.ts childFields): each scope and limit set, none looser.
    const record = newRecord(child, minted.fields, now, minted.parentId);
    const created = await createChild(parent, keyGuard(env, record.id), record, minted.family);
    if (!created) throw new ApiError("conflict", "Could not create the child key; try again.");
    await copyToD1(env, created.record, true);
    // The reservation is settled; were this call lost, the parent's alarm would find the child created anyway.
    await parent.childCreated(record.id).catch(() => undefined);
    return c.json({ ...serializeSpendKey(created.record, created.snapshot, now), key: issued.key }, 201);
  },
);

/**
 * The child's guard created with its family, or null when it was not. A create that failed or threw may still
 * have committed (an answer lost on the way back): the child's guard is sealed first, and the parent's
 * reservation goes back only when that sealed it (nothing was made); a child that exists is answered.
 */
export async function createChild(
  parent: DurableObjectStub<KeyGuard>,
  child: DurableObjectStub<KeyGuard>,
  record: KeyRecord,
  family: Family,
): Promise<Managed | null> {
  const created = await child.create(record, family).catch(() => null);
  if (created) return created;
  // Sealed first (as the parent's alarm does): a key that exists keeps its carve, and a late create then fails.
  if ((await child.sealIfUncreated()) === "created") return child.read(record.walletId);
  await parent.cancelChild(record.id);
  return null;
}
