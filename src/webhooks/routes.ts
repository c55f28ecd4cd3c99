import { and, eq, isNull } from "drizzle-orm";
import { gatewayConfig } from "../config.ts";
import { database, walletD1 } from "../db/client.ts";
import { webhookDeliveries, webhooks } from "../db/schema.ts";
import type { Bindings } from "../env.ts";
import { ERRORS, IdParam, listOf, Pagination } from "../lib/api-schemas.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { newId } from "../lib/keys.ts";
import { ApiRouter } from "../lib/openapi.ts";
import { isoOrNull as iso } from "../lib/time.ts";
import {
  CreateWebhook,
  Delivery,
  DeliveryParams,
  UpdateWebhook,
  Webhook,
  WebhookCreated,
  WebhookDeleted,
} from "./schemas.ts";
import { newWebhookSecret, sealSecret } from "./secrets.ts";
import { webhookUrlProblem } from "./url.ts";

type WebhookRow = typeof webhooks.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;

const wire = (r: WebhookRow) => ({
  webhook_id: r.id,
  name: r.name,
  url: r.url,
  events: r.events ?? null,
  enabled: r.enabled,
  created_at: new Date(r.createdAt).toISOString(),
});
const deliveryWire = (d: DeliveryRow) => ({
  delivery_id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  status: d.status,
  attempts: d.attempts,
  last_response_code: d.lastStatus,
  last_error: d.lastError,
  next_retry_at: d.status === "retrying" ? iso(d.nextAttemptAt) : null,
  created_at: new Date(d.createdAt).toISOString(),
});

function checkUrl(env: Bindings, url: string): void {
  const problem = webhookUrlProblem(url, gatewayConfig(env).production);
  if (problem) throw new ApiError("invalid_request", `url: ${problem}`, { param: "url" });
}

async function findWebhook(env: Bindings, walletId: string, id: string): Promise<WebhookRow> {
  const row = await database(walletD1(env, walletId))
    .select()
    .from(webhooks)
    .where(and(eq(webhooks.id, id), eq(webhooks.walletId, walletId), isNull(webhooks.deletedAt)))
    .get();
  // Another wallet's webhook answers exactly like an unknown one.
  if (!row) throw new ApiError("not_found", `No webhook with id '${id}'.`, { param: "id" });
  return row;
}

const tags = ["Webhooks"];
const security = "walletKey" as const;

/** The webhooks resource: the Lava SDK's `webhooks`, plus events, enabled, secret rotation and deliveries. */
export const webhookRoutes = new ApiRouter()
  .route(
    {
      method: "post",
      path: "/webhooks",
      summary: "Create a webhook; its signing secret is shown only now",
      tags,
      security,
      body: CreateWebhook,
      responses: { 201: { description: "The webhook and its secret", schema: WebhookCreated }, ...ERRORS },
    },
    async (c, { body }) => {
      checkUrl(c.env, body.url);
      const secret = newWebhookSecret();
      const now = Date.now();
      const row: WebhookRow = {
        id: newId("whk"),
        walletId: c.get("walletId"),
        name: body.name,
        url: body.url,
        events: body.events ?? null,
        enabled: body.enabled ?? true,
        secretCipher: await sealSecret(c.env, secret),
        createdAt: now,
        updatedAt: now,
        deletedAt: null,
      };
      await database(walletD1(c.env, c.get("walletId")))
        .insert(webhooks)
        .values(row);
      return c.json({ ...wire(row), webhook_secret: secret }, 201);
    },
  )
  .route(
    {
      method: "get",
      path: "/webhooks",
      summary: "List webhooks, newest first",
      tags,
      security,
      query: Pagination,
      responses: { 200: { description: "A page of webhooks", schema: listOf("WebhookList", Webhook) }, ...ERRORS },
    },
    async (c, { query }) => {
      const mine = and(eq(webhooks.walletId, c.get("walletId")), isNull(webhooks.deletedAt));
      return c.json(await listPage(walletD1(c.env, c.get("walletId")), webhooks, webhooks.id, mine, query, wire));
    },
  )
  .route(
    {
      method: "get",
      path: "/webhooks/{id}",
      summary: "Retrieve a webhook",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "The webhook", schema: Webhook }, ...ERRORS },
    },
    async (c, { params }) => c.json(wire(await findWebhook(c.env, c.get("walletId"), params.id))),
  )
  .route(
    {
      method: "patch",
      path: "/webhooks/{id}",
      summary: "Update a webhook: only the fields sent change",
      tags,
      security,
      params: IdParam,
      body: UpdateWebhook,
      responses: { 200: { description: "The updated webhook", schema: Webhook }, ...ERRORS },
    },
    async (c, { params, body }) => {
      const row = await findWebhook(c.env, c.get("walletId"), params.id);
      if (body.url !== undefined) checkUrl(c.env, body.url);
      const next: WebhookRow = {
        ...row,
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.url !== undefined ? { url: body.url } : {}),
        ...(body.events !== undefined ? { events: body.events } : {}),
        ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
        updatedAt: Date.now(),
      };
      const { id, walletId, createdAt, ...fields } = next;
      await database(walletD1(c.env, c.get("walletId")))
        .update(webhooks)
        .set(fields)
        .where(eq(webhooks.id, id));
      return c.json(wire(next));
    },
  )
  .route(
    {
      method: "delete",
      path: "/webhooks/{id}",
      summary: "Delete a webhook: nothing more is delivered to it",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "Deleted", schema: WebhookDeleted }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findWebhook(c.env, c.get("walletId"), params.id);
      await database(walletD1(c.env, c.get("walletId")))
        .update(webhooks)
        .set({ deletedAt: Date.now() })
        .where(eq(webhooks.id, row.id));
      return c.json({ id: row.id, deleted: true as const });
    },
  )
  .route(
    {
      method: "post",
      path: "/webhooks/{id}/rotate_secret",
      summary: "Replace the signing secret; the new one is shown only now",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "The webhook and its new secret", schema: WebhookCreated }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findWebhook(c.env, c.get("walletId"), params.id);
      const secret = newWebhookSecret();
      const secretCipher = await sealSecret(c.env, secret);
      await database(walletD1(c.env, c.get("walletId")))
        .update(webhooks)
        .set({ secretCipher, updatedAt: Date.now() })
        .where(eq(webhooks.id, row.id));
      return c.json({ ...wire(row), webhook_secret: secret });
    },
  )
  .route(
    {
      method: "get",
      path: "/webhooks/{id}/deliveries",
      summary: "The webhook's deliveries, newest first: status, attempts, last response, next retry",
      tags,
      security,
      params: IdParam,
      query: Pagination,
      responses: { 200: { description: "A page of deliveries", schema: listOf("DeliveryList", Delivery) }, ...ERRORS },
    },
    async (c, { params, query }) => {
      const row = await findWebhook(c.env, c.get("walletId"), params.id);
      const t = webhookDeliveries;
      return c.json(
        await listPage(walletD1(c.env, c.get("walletId")), t, t.id, eq(t.webhookId, row.id), query, deliveryWire),
      );
    },
  )
  .route(
    {
      method: "post",
      path: "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
      summary: "Deliver one delivery again now (its attempts start over)",
      tags,
      security,
      params: DeliveryParams,
      responses: { 200: { description: "The delivery, queued again", schema: Delivery }, ...ERRORS },
    },
    async (c, { params }) => {
      const row = await findWebhook(c.env, c.get("walletId"), params.id);
      const t = webhookDeliveries;
      const now = Date.now();
      const [updated] = await database(walletD1(c.env, c.get("walletId")))
        .update(t)
        .set({ status: "pending", attempts: 0, nextAttemptAt: now, updatedAt: now })
        .where(and(eq(t.id, params.delivery_id), eq(t.webhookId, row.id)))
        .returning();
      if (!updated)
        throw new ApiError("not_found", `No delivery with id '${params.delivery_id}'.`, { param: "delivery_id" });
      await c.env.WEBHOOKS.send({ deliveryId: updated.id, walletId: c.get("walletId") });
      return c.json(deliveryWire(updated));
    },
  );
