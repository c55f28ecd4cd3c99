import * as z from "zod/mini";
import { named } from "../lib/openapi.ts";
import { EVENT_TYPES } from "./events.ts";

/** The webhook API's request and response shapes: they validate and they document (`/openapi.json`). */
const Url = z.string().check(z.maxLength(2_000));
const Events = z.nullable(z.array(z.enum(EVENT_TYPES)).check(z.minLength(1), z.maxLength(EVENT_TYPES.length)));
const Name = z.string().check(z.trim(), z.minLength(1), z.maxLength(200));
export const CreateWebhook = named(
  "CreateWebhook",
  z.strictObject({ name: Name, url: Url, events: z.optional(Events), enabled: z.optional(z.boolean()) }),
);
export const UpdateWebhook = named(
  "UpdateWebhook",
  z.strictObject({
    name: z.optional(Name),
    url: z.optional(Url),
    events: z.optional(Events),
    enabled: z.optional(z.boolean()),
  }),
);
export const Webhook = named(
  "Webhook",
  z.object({
    webhook_id: z.string(),
    name: z.string(),
    url: z.string(),
    events: z.nullable(z.array(z.string())),
    enabled: z.boolean(),
    created_at: z.string(),
  }),
);
export const WebhookCreated = named("WebhookCreated", z.extend(Webhook, { webhook_secret: z.string() }));
export const Delivery = named(
  "WebhookDelivery",
  z.object({
    delivery_id: z.string(),
    event_id: z.string(),
    event_type: z.string(),
    status: z.enum(["pending", "retrying", "delivered", "dead"]),
    attempts: z.number(),
    last_response_code: z.nullable(z.number()),
    last_error: z.nullable(z.string()),
    next_retry_at: z.nullable(z.string()),
    created_at: z.string(),
  }),
);
export const DeliveryParams = z.object({ id: z.string(), delivery_id: z.string() });
export const WebhookDeleted = named("WebhookDeleted", z.object({ id: z.string(), deleted: z.literal(true) }));
