import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { deliverBatch } from "../../src/webhooks/delivery.ts";
import type { DeliveryMessage } from "../../src/webhooks/events.ts";
import { openSecret } from "../../src/webhooks/secrets.ts";
import { ADMIN, callWith, createWallet, d1All, json } from "./helpers.ts";

/** Rotating WEBHOOK_SECRET_KEY (docs/deploy.md): old key only → both keys → new key only. */
type Keys = Record<string, string>;
const OLD: Keys = { WEBHOOK_SECRET_KEY: "the-old-webhook-secret-key-0123456789" };
const ROTATING: Keys = {
  WEBHOOK_SECRET_KEY: "the-new-webhook-secret-key-9876543210",
  WEBHOOK_SECRET_KEY_PREVIOUS: "the-old-webhook-secret-key-0123456789",
};
const NEW: Keys = { WEBHOOK_SECRET_KEY: "the-new-webhook-secret-key-9876543210" };

interface Hook {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const cipherOf = async (id: string) =>
  (await d1All(`SELECT secret_cipher FROM webhooks WHERE id = '${id}'`))[0]?.secret_cipher as string;

async function createHook(keys: Keys, walletKey: string, path: string) {
  const res = await callWith(keys, "POST", "/v1/webhooks", {
    headers: { authorization: `Bearer ${walletKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: path, url: `https://hooks.example.test/${path}` }),
  });
  const created = await json(res, 201);
  return { id: created.webhook_id as string, secret: created.webhook_secret as string, path };
}

let deliveries = 0;
/**
 * One delivery of `hook` through the queue consumer, with the Worker's secrets set to `keys`: what reached the
 * receiver, or null when the consumer kept the message for a retry instead.
 */
async function attempt(keys: Keys, walletId: string, hook: { id: string; path: string }): Promise<Hook | null> {
  const n = ++deliveries;
  const event = { id: `evt_rot_${n}`, type: "spend_key.updated", created_at: new Date().toISOString(), data: {} };
  const now = Date.now();
  await env.DB.prepare(
    `INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, event_id, event_type, payload, status, attempts,
      next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
  )
    .bind(`msg_rot_${n}`, hook.id, walletId, event.id, event.type, JSON.stringify(event), now, now, now)
    .run();
  const batch = createMessageBatch<DeliveryMessage>("spendgate-webhooks", [
    { id: `m${n}`, timestamp: now, attempts: 1, body: { deliveryId: `msg_rot_${n}`, walletId } },
  ]);
  const ctx = createExecutionContext();
  await deliverBatch(batch, { ...env, ...keys } as never);
  const result = await getQueueResult(batch, ctx);
  const all = ((await (await fetch("http://fake-provider.test/__fake/hooks")).json()) as { data: Hook[] }).data;
  const got = all.find((h) => h.headers["webhook-id"] === `msg_rot_${n}`) ?? null;
  if (got) {
    expect(result.explicitAcks).toEqual([`m${n}`]);
    expect(got.url).toBe(`https://hooks.example.test/${hook.path}`);
  } else expect(result.retryMessages.map((m) => m.msgId)).toEqual([`m${n}`]);
  return got;
}

async function deliver(keys: Keys, walletId: string, hook: { id: string; path: string }): Promise<Hook> {
  const got = await attempt(keys, walletId, hook);
  if (!got) throw new Error(`the delivery to ${hook.path} did not arrive`);
  return got;
}

async function reencryptAll(keys: Keys, limit: number) {
  const steps = [];
  let cursor: string | null = null;
  do {
    const query: string = `?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
    const step = await json(
      await callWith(keys, "POST", `/admin/webhook-secrets/reencrypt${query}`, { headers: ADMIN }),
    );
    steps.push(step);
    cursor = step.next_cursor;
  } while (cursor);
  return steps;
}

describe("rotating WEBHOOK_SECRET_KEY", () => {
  it("old secrets verify during and after the rotation, all end under the new key, the old key goes", async () => {
    const wallet = await createWallet();
    const hooks = [];
    for (let i = 0; i < 5; i++) hooks.push(await createHook(OLD, wallet.key, `rot-${i}`));
    // One stored by a release before rotation existed: `v1.<iv>.<sealed>`, no key id.
    const legacy = hooks[4]!;
    const [v, iv, sealed] = (await cipherOf(legacy.id)).split(".");
    await env.DB.prepare("UPDATE webhooks SET secret_cipher = ? WHERE id = ?")
      .bind(`${v}.${iv}.${sealed}`, legacy.id)
      .run();
    // A deleted webhook's secret is stored too, and re-encrypted like the others.
    const deleted = await createHook(OLD, wallet.key, "rot-deleted");
    await env.DB.prepare("UPDATE webhooks SET deleted_at = ? WHERE id = ?").bind(Date.now(), deleted.id).run();
    // One sealed under a key the Worker does not have: reported, left alone, never loops.
    const stranger = await createHook({ WEBHOOK_SECRET_KEY: "a-key-nobody-has-anymore" }, wallet.key, "rot-lost");

    // The new key alone cannot open what the old one sealed (the message waits for a retry): that is what
    // WEBHOOK_SECRET_KEY_PREVIOUS is for.
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect(await attempt(NEW, wallet.walletId, hooks[0]!)).toBeNull();
    expect(String(logged.mock.calls[0]?.[0])).toMatch(/neither WEBHOOK_SECRET_KEY nor/);
    logged.mockRestore();

    // Both keys set: deliveries of webhooks sealed under the old key still verify with their secret.
    for (const hook of hooks) {
      const got = await deliver(ROTATING, wallet.walletId, hook);
      expect(new Webhook(hook.secret).verify(got.body, got.headers)).toMatchObject({ type: "spend_key.updated" });
    }
    // A webhook created meanwhile is sealed under the new key.
    const fresh = await createHook(ROTATING, wallet.key, "rot-fresh");
    expect(await openSecret(NEW, await cipherOf(fresh.id))).toBe(fresh.secret);

    // Re-encryption, two at a time: it pages through every webhook once.
    const steps = await reencryptAll(ROTATING, 2);
    expect(steps.reduce((n, s) => n + s.reencrypted, 0)).toBe(6);
    expect(steps.flatMap((s) => s.unreadable)).toEqual([stranger.id]);
    expect(steps.at(-1)).toMatchObject({ remaining: 1, next_cursor: null });
    // Done: a second pass finds nothing to do.
    expect(await reencryptAll(ROTATING, 100)).toEqual([
      { reencrypted: 0, unreadable: [stranger.id], remaining: 1, next_cursor: null },
    ]);

    // Every stored secret (deleted webhook included) opens under the new key alone, unchanged.
    for (const hook of [...hooks, deleted, fresh])
      expect(await openSecret(NEW, await cipherOf(hook.id))).toBe(hook.secret);

    // The old key is dropped: deliveries still verify.
    for (const hook of [hooks[0]!, legacy, fresh]) {
      const got = await deliver(NEW, wallet.walletId, hook);
      expect(new Webhook(hook.secret).verify(got.body, got.headers)).toBeTruthy();
    }
  });

  it("what it seals, the release before rotation still opens (a rollback keeps webhooks signing)", async () => {
    const wallet = await createWallet();
    const hook = await createHook(NEW, wallet.key, "rot-rollback");
    // The previous release's reader, verbatim: it reads the first three parts of the cipher.
    const [, iv, sealed] = (await cipherOf(hook.id)).split(".");
    const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(NEW.WEBHOOK_SECRET_KEY));
    const key = await crypto.subtle.importKey("raw", digest, "AES-GCM", false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(iv!) }, key, unb64(sealed!));
    expect(new TextDecoder().decode(plain)).toBe(hook.secret);
  });

  it("needs the operator token", async () => {
    const res = await callWith(ROTATING, "POST", "/admin/webhook-secrets/reencrypt");
    expect(res.status).toBe(401);
  });
});
