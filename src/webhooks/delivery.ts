import { and, eq, inArray, lt } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { gatewayConfig } from "../config.ts";
import { database, walletD1, walletD1s } from "../db/client.ts";
import { webhookDeliveries, webhooks } from "../db/schema.ts";
import { errorText, log } from "../lib/log.ts";
import type { DeliveryMessage } from "./events.ts";
import { openSecret } from "./secrets.ts";
import { webhookUrlProblem } from "./url.ts";

/**
 * One attempt takes at most this long. After a failed one the delivery waits the next of `WEBHOOK_RETRY_DELAYS`
 * (config.ts: the Standard Webhooks schedule, about 27.5 hours in all); after the last it is dead, and the queue
 * moves its message to the dead-letter queue.
 */
const ATTEMPT_TIMEOUT_MS = 10_000;

export interface DeliveryEnv {
  DB: D1Database;
  WEBHOOKS: Queue<DeliveryMessage>;
}

function retryDelays(env: DeliveryEnv): number[] {
  return gatewayConfig(env).webhookRetryDelaysS;
}

type Outcome = { ok: true; status: number } | { ok: false; status: number | null; error: string };

/** One signed POST, 10 s at most, redirects not followed. */
async function attempt(
  env: DeliveryEnv,
  url: string,
  cipher: string,
  msgId: string,
  payload: string,
): Promise<Outcome> {
  const problem = webhookUrlProblem(url, gatewayConfig(env).production);
  if (problem) return { ok: false, status: null, error: problem };
  // One instant for both: the signature covers the timestamp the header carries.
  const at = new Date();
  const signature = new Webhook(await openSecret(env, cipher)).sign(msgId, at, payload);
  const timestamp = String(Math.floor(at.getTime() / 1000));
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "spendgate-webhooks/0.1",
        "webhook-id": msgId,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
      },
      body: payload,
      redirect: "manual",
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    return {
      ok: false,
      status: res.status,
      error: res.status >= 300 && res.status < 400 ? "redirect (not followed)" : `HTTP ${res.status}`,
    };
  } catch (err) {
    return { ok: false, status: null, error: err instanceof Error ? err.name : "fetch failed" };
  }
}

/** The delivery queue's consumer: one attempt per message, then ack, retry later, or let it go dead. */
export async function deliverBatch(batch: MessageBatch<DeliveryMessage>, env: DeliveryEnv): Promise<void> {
  for (const message of batch.messages) {
    try {
      await deliverOne(message, env);
    } catch (err) {
      // D1 could not record the attempt (or the secret could not be opened): try again later (the receiver
      // dedupes a repeat by its `webhook-id`).
      const { deliveryId, walletId } = message.body;
      log("error", "webhook.consumer_failed", {
        delivery_id: deliveryId,
        ...(walletId ? { wallet_id: walletId } : {}),
        retry_in_s: 5,
        error: errorText(err),
      });
      message.retry({ delaySeconds: 5 });
    }
  }
}

async function deliverOne(message: Message<DeliveryMessage>, env: DeliveryEnv): Promise<void> {
  const db = database(walletD1(env, message.body.walletId ?? ""));
  const delays = retryDelays(env);
  const id = message.body.deliveryId;
  const row = await db
    .select({
      d: webhookDeliveries,
      url: webhooks.url,
      cipher: webhooks.secretCipher,
      enabled: webhooks.enabled,
      deletedAt: webhooks.deletedAt,
    })
    .from(webhookDeliveries)
    .innerJoin(webhooks, eq(webhooks.id, webhookDeliveries.webhookId))
    .where(eq(webhookDeliveries.id, id))
    .get();
  // Gone, or already delivered (a replayed message): nothing to do.
  if (!row || row.d.status === "delivered") {
    message.ack();
    return;
  }
  // Its webhook was deleted or disabled: the delivery ends here (dead, so the sweeper leaves it alone).
  if (row.deletedAt !== null || !row.enabled) {
    await db
      .update(webhookDeliveries)
      .set({ status: "dead", lastError: "webhook deleted or disabled", nextAttemptAt: null, updatedAt: Date.now() })
      .where(eq(webhookDeliveries.id, id));
    message.ack();
    return;
  }
  const outcome = await attempt(env, row.url, row.cipher, row.d.id, row.d.payload);
  const attempts = row.d.attempts + 1;
  const now = Date.now();
  if (outcome.ok) {
    await db
      .update(webhookDeliveries)
      .set({
        status: "delivered",
        attempts,
        lastStatus: outcome.status,
        lastError: null,
        nextAttemptAt: null,
        updatedAt: now,
      })
      .where(eq(webhookDeliveries.id, id));
    message.ack();
    return;
  }
  const delay = delays[attempts - 1];
  const dead = delay === undefined;
  await db
    .update(webhookDeliveries)
    .set({
      status: dead ? "dead" : "retrying",
      attempts,
      lastStatus: outcome.status,
      lastError: outcome.error,
      nextAttemptAt: dead ? null : now + delay * 1000,
      updatedAt: now,
    })
    .where(eq(webhookDeliveries.id, id));
  // Never the URL (it may carry the receiver's own token) nor the payload: the ids find both.
  log(dead ? "error" : "warn", "webhook.delivery_failed", {
    delivery_id: id,
    webhook_id: row.d.webhookId,
    wallet_id: row.d.walletId,
    event_id: row.d.eventId,
    event_type: row.d.eventType,
    attempt: attempts,
    status: outcome.status,
    error: outcome.error,
    dead,
    ...(dead ? {} : { retry_in_s: delay }),
  });
  if (dead) message.ack();
  else message.retry({ delaySeconds: delay });
}

/** The dead-letter queue's consumer: whatever reaches it is marked dead in the log. */
export async function deadLetters(batch: MessageBatch<DeliveryMessage>, env: DeliveryEnv): Promise<void> {
  const ids = batch.messages.map((m) => m.body.deliveryId);
  for (const db of walletD1s(env)) {
    await database(db)
      .update(webhookDeliveries)
      .set({ status: "dead", nextAttemptAt: null, updatedAt: Date.now() })
      .where(and(inArray(webhookDeliveries.id, ids), eq(webhookDeliveries.status, "retrying")));
  }
  batch.ackAll();
}

/**
 * The sweeper (a cron trigger, every minute): deliveries due more than a minute ago are queued again, so a
 * queue message lost to a restart or an outage never loses its delivery (attempts are idempotent per row).
 */
export async function sweep(env: DeliveryEnv, now = Date.now()): Promise<number> {
  let swept = 0;
  for (const db of walletD1s(env)) {
    const due = await database(db)
      .select({ id: webhookDeliveries.id, walletId: webhookDeliveries.walletId })
      .from(webhookDeliveries)
      .where(
        and(
          inArray(webhookDeliveries.status, ["pending", "retrying"]),
          lt(webhookDeliveries.nextAttemptAt, now - 60_000),
        ),
      )
      .limit(100)
      .all();
    if (due.length)
      await env.WEBHOOKS.sendBatch(due.map((d) => ({ body: { deliveryId: d.id, walletId: d.walletId } })));
    swept += due.length;
  }
  return swept;
}
