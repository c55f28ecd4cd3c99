import { app } from "./app.ts";
import { stepRetention } from "./bookkeeping/retention.ts";
import { writeBooks } from "./bookkeeping/write.ts";
import type { BooksMessage } from "./guard/books.ts";
import { deadLetters, deliverBatch, sweep } from "./webhooks/delivery.ts";
import type { DeliveryMessage } from "./webhooks/events.ts";

export { KeyGuard } from "./guard/key-guard.ts";

export default {
  fetch: app.fetch,
  /**
   * The bookkeeping queue (the guards' writes to D1), told by what its messages carry, so a renamed queue still
   * reaches its consumer; webhook deliveries, and the dead letters of those (a `-dlq` queue).
   */
  async queue(batch, env) {
    const first = batch.messages[0]?.body as Partial<BooksMessage> | undefined;
    if (first?.keyId !== undefined) await writeBooks(batch as MessageBatch<BooksMessage>, env);
    else if (batch.queue.endsWith("-dlq")) await deadLetters(batch as MessageBatch<DeliveryMessage>, env);
    else await deliverBatch(batch as MessageBatch<DeliveryMessage>, env);
  },
  /** Every minute: deliveries whose queue message was lost are queued again; one bounded step of retention. */
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweep(env));
    ctx.waitUntil(stepRetention(env));
  },
} satisfies ExportedHandler<Env>;
