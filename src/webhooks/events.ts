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
  /** whose delivery it is: which database holds it (messages queued before it was carried have none) */
  walletId?: string;
}

/** A webhook that may want an event: its id, wallet, and the event types it takes (null: every type). */
export interface Subscriber {
  id: string;
  walletId: string;
  events: string[] | null;
  createdAt: number;
}

/** A `webhook_deliveries` row to insert: one event for one webhook, not attempted yet. */
export interface NewDelivery {
  id: string;
  webhookId: string;
  walletId: string;
  eventId: string;
  eventType: EventType;
  payload: string;
}

/**
 * The deliveries of a wallet's events: one per enabled webhook of the wallet that wants the event and existed when
 * it happened (events reach D1 a moment after they happen; a webhook made meanwhile does not get them). The row is the
 * durable record of a delivery (a lost queue message is picked up again by the sweeper); the unique
 * (webhook, event) index makes a replayed event create nothing new.
 */
export function deliveriesFor(hooks: Subscriber[], walletId: string, events: WebhookEvent[]): NewDelivery[] {
  const out: NewDelivery[] = [];
  for (const event of events) {
    const payload = JSON.stringify(event);
    const at = Date.parse(event.created_at);
    for (const h of hooks) {
      if (h.walletId !== walletId || h.createdAt > at || (h.events && !h.events.includes(event.type))) continue;
      out.push({
        id: newId("msg", 24),
        webhookId: h.id,
        walletId,
        eventId: event.id,
        eventType: event.type,
        payload,
      });
    }
  }
  return out;
}
