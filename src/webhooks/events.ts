import { and, eq, isNull } from "drizzle-orm";
import { database } from "../db/client.ts";
import { webhookDeliveries, webhooks } from "../db/schema.ts";
import { newId } from "../lib/keys.ts";

/** Every event a webhook can receive. */
export const EVENT_TYPES = [
  "spend_key.spend_threshold_reached",
  "spend_key.limit_reached",
  "spend_key.expired",
  "spend_key.created",
  "spend_key.updated",
  "spend_key.rotated",
  "spend_key.paused",
  "spend_key.resumed",
  "spend_key.revoked",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The envelope every delivery carries. `id` is stable: a replayed event is the same event. */
export interface WebhookEvent {
  id: string;
  type: EventType;
  created_at: string;
  data: Record<string, unknown>;
}

/** What the delivery queue carries: one delivery row to (re)attempt. */
export interface DeliveryMessage {
  deliveryId: string;
}

interface EventEnv {
  DB: D1Database;
  WEBHOOKS: Queue<DeliveryMessage>;
}

/**
 * Fans an event out to the wallet's enabled webhooks that want it: one delivery row each (the row is the
 * durable record: a delivery whose queue message is lost is picked up again by the sweeper), then one queue
 * message each. Replaying the same event id creates nothing new.
 */
export async function emitEvent(env: EventEnv, walletId: string, event: WebhookEvent): Promise<number> {
  const db = database(env.DB);
  const hooks = await db
    .select({ id: webhooks.id, events: webhooks.events })
    .from(webhooks)
    .where(and(eq(webhooks.walletId, walletId), eq(webhooks.enabled, true), isNull(webhooks.deletedAt)))
    .all();
  const wanted = hooks.filter((h) => !h.events || h.events.includes(event.type));
  if (!wanted.length) return 0;
  const now = Date.now();
  const payload = JSON.stringify(event);
  const rows = wanted.map((h) => ({
    id: newId("msg", 24),
    webhookId: h.id,
    walletId,
    eventId: event.id,
    eventType: event.type,
    payload,
    status: "pending" as const,
    attempts: 0,
    nextAttemptAt: now,
    createdAt: now,
    updatedAt: now,
  }));
  // 11 columns a row: 8 rows a statement stays under D1's 100 bound values.
  const inserted: { id: string }[] = [];
  for (let i = 0; i < rows.length; i += 8) {
    const chunk = rows.slice(i, i + 8);
    inserted.push(...(await db.insert(webhookDeliveries).values(chunk).onConflictDoNothing().returning()));
  }
  if (inserted.length) await env.WEBHOOKS.sendBatch(inserted.map((r) => ({ body: { deliveryId: r.id } })));
  return inserted.length;
}
