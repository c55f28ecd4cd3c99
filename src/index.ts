import { app } from "./app.ts";
import { deadLetters, deliverBatch, sweep } from "./webhooks/delivery.ts";
import type { DeliveryMessage } from "./webhooks/events.ts";

export { KeyGuard } from "./guard/key-guard.ts";

export default {
  fetch: app.fetch,
  /** Webhook deliveries, and the dead letters of those that ran out of retries. */
  async queue(batch, env) {
    const messages = batch as MessageBatch<DeliveryMessage>;
    if (batch.queue.endsWith("-dlq")) await deadLetters(messages, env);
    else await deliverBatch(messages, env);
  },
  /** The sweeper: deliveries whose queue message was lost are queued again. */
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweep(env));
  },
} satisfies ExportedHandler<Env>;
