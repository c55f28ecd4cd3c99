import {
  createExecutionContext,
  createScheduledController,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { chat, createWallet, d1All, type Hook, hooks, json, mgmt, settled, setupKey } from "./helpers.ts";

/** Waits until `pick` finds what it wants among the receiver's deliveries (alarm ~1 s, then the queue). */
async function until<T>(pick: (all: Hook[]) => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = pick(await hooks());
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("timed out waiting for webhook deliveries");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const eventsAt = (all: Hook[], path: string) =>
  all
    .filter((h) => h.url.includes(path) && h.status === 200)
    .map((h) => JSON.parse(h.body) as { id: string; type: string; data: any });

describe("webhooks resource", () => {
  it("create (secret once) → list → retrieve → update → delete, wallet-scoped, with validation", async () => {
    const wallet = await createWallet();
    const created = await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "alerts", url: "https://hooks.example.test/a" }),
      201,
    );
    expect(created).toMatchObject({ name: "alerts", url: "https://hooks.example.test/a", events: null, enabled: true });
    expect(created.webhook_secret).toMatch(/^whsec_/);
    const id = created.webhook_id;
    expect((await json(await mgmt(wallet.key, "GET", "/webhooks"), 200)).data).toHaveLength(1);
    const got = await json(await mgmt(wallet.key, "GET", `/webhooks/${id}`), 200);
    expect(got.webhook_secret).toBeUndefined();
    const updated = await json(
      await mgmt(wallet.key, "PATCH", `/webhooks/${id}`, { name: "renamed", events: ["spend_key.revoked"] }),
      200,
    );
    expect(updated).toMatchObject({ name: "renamed", events: ["spend_key.revoked"] });
    const rotated = await json(await mgmt(wallet.key, "POST", `/webhooks/${id}/rotate_secret`), 200);
    expect(rotated.webhook_secret).not.toBe(created.webhook_secret);
    // The secret is stored encrypted, never in plaintext.
    const [row] = await d1All(`SELECT * FROM webhooks WHERE id = '${id}'`);
    expect(JSON.stringify(row)).not.toContain(rotated.webhook_secret.slice(6));
    const other = await createWallet();
    expect((await mgmt(other.key, "GET", `/webhooks/${id}`)).status).toBe(404);
    expect((await mgmt(other.key, "DELETE", `/webhooks/${id}`)).status).toBe(404);
    expect(await json(await mgmt(wallet.key, "DELETE", `/webhooks/${id}`), 200)).toEqual({ id, deleted: true });
    expect((await mgmt(wallet.key, "GET", `/webhooks/${id}`)).status).toBe(404);

    const before = await d1All("SELECT count(*) AS n FROM webhooks");
    for (const [body, param] of [
      [{ name: "x", url: "http://example.com/hook" }, "url"],
      [{ name: "x", url: "https://10.1.2.3/hook" }, "url"],
      [{ name: "x", url: "https://169.254.169.254/latest" }, "url"],
      [{ name: "x", url: "https://localhost/hook" }, "url"],
      [{ name: "x", url: "https://localhost./hook" }, "url"],
      [{ name: "x", url: "https://metadata.google.internal./hook" }, "url"],
      [{ name: "x", url: "https://app.localhost./hook" }, "url"],
      [{ name: "x", url: "not a url" }, "url"],
      [{ name: "x", url: "https://hooks.example.test/", events: ["spend_key.exploded"] }, "events.0"],
    ] as const) {
      const res = await mgmt(wallet.key, "POST", "/webhooks", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as any).error.param).toBe(param);
    }
    expect(await d1All("SELECT count(*) AS n FROM webhooks")).toEqual(before);
    for (const thresholds of [[0.8, 0.5], [0, 0.5], [1.2], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]) {
      const res = await mgmt(wallet.key, "POST", "/spend_keys", { name: "t", alert_thresholds: thresholds });
      expect(res.status, JSON.stringify(thresholds)).toBe(400);
      expect(((await res.json()) as any).error.param).toMatch(/^alert_thresholds/);
    }
  });
});

describe("events, signed and delivered", () => {
  it("200 concurrent requests crossing 80 % raise each threshold exactly once; a new cycle: again", async () => {
    // gpt-4o-mini, 12 output tokens: ≈ $0.0000078 a request; 200 of them pass a $0.0005 daily limit.
    const { wallet, key, id } = await setupKey({ spend_limit: { amount: "0.0005", cycle: "daily" } });
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "t", url: `https://hooks.example.test/${id}` }),
      201,
    );
    const stub = keyGuard(env, id);
    // Waves of 50 simultaneous requests (a wave's holds can take only part of what is left) until the cap.
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(Array.from({ length: 50 }, () => chat(key, { max_tokens: 12 }).then((r) => r.text())));
      await settled(id);
    }
    // Every threshold the spend passed fires exactly once (80 % must have been passed).
    const limit = 500_000;
    const crossed = async () => {
      const spent = (await stub.snapshot()).currentSpendNanos;
      return [0.5, 0.8, 0.95].filter((t) => spent >= t * limit);
    };
    const expected = await crossed();
    expect(expected).toContain(0.8);
    const thresholdEvents = (all: Hook[]) =>
      eventsAt(all, id).filter((e) => e.type === "spend_key.spend_threshold_reached");
    await until((all) => (thresholdEvents(all).length >= expected.length ? true : undefined));
    await new Promise((r) => setTimeout(r, 1_500)); // anything extra would have arrived by now
    const final = thresholdEvents(await hooks());
    expect(final.map((e) => e.data.threshold).sort()).toEqual(expected);
    expect(final[0]!.data).toMatchObject({
      limit: { amount: "0.0005", cycle: "daily" },
      spend_key: { spend_key_id: id },
    });
    expect(JSON.stringify(final)).not.toContain(key.slice(-20));
    // Every delivery verifies with the standardwebhooks package; a tampered or stale one does not.
    const verifier = new Webhook(hook.webhook_secret);
    const delivered = (await hooks()).filter((h) => h.url.includes(id));
    for (const h of delivered) expect(verifier.verify(h.body, h.headers)).toMatchObject({ type: expect.any(String) });
    const one = delivered[0]!;
    expect(() => verifier.verify(one.body.replace("spend_key", "spend_kez"), one.headers)).toThrow();
    const stale = { ...one.headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000) - 3_600) };
    expect(() => verifier.verify(one.body, stale)).toThrow();
    // The spend limit refused some requests: limit_reached at most once — and only if spend itself reached the point
    // where a request no longer fits (refusals by holds in flight alone raise none), as the guard recorded.
    const reachedMarks = ((await stub.inspect()).counters.limitAlerted ?? []).filter((m) => m.startsWith("spend:"));
    const limitEvents = eventsAt(await hooks(), id).filter((e) => e.type === "spend_key.limit_reached");
    expect(limitEvents).toHaveLength(reachedMarks.length);
    expect(limitEvents.length).toBeLessThanOrEqual(1);

    // The next day: a new cycle, the thresholds fire again.
    await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => Date.now() + 86_400_000));
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(Array.from({ length: 50 }, () => chat(key, { max_tokens: 12 }).then((r) => r.text())));
      await settled(id);
    }
    // The guard's clock is a day ahead, so its alarm is too: run it now.
    await runDurableObjectAlarm(stub);
    const again = await crossed();
    expect(again).toContain(0.8);
    await until((all) => (thresholdEvents(all).length >= expected.length + again.length ? true : undefined));
    await new Promise((r) => setTimeout(r, 1_500));
    const both = thresholdEvents(await hooks());
    expect(both).toHaveLength(expected.length + again.length);
    expect(new Set(both.map((e) => e.id)).size).toBe(both.length);
  }, 60_000);

  it("a receiver answering 500 three times gets the event on the fourth try; the log shows it", async () => {
    const { wallet, id } = await setupKey();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", {
        name: "flaky",
        url: `https://hooks.example.test/flaky-${id}?fail=3`,
      }),
      201,
    );
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    const attempts = await until((all) => {
      const mine = all.filter((h) => h.url.includes(`flaky-${id}`) && JSON.parse(h.body).type === "spend_key.paused");
      return mine.some((h) => h.status === 200) ? mine : undefined;
    });
    expect(attempts.map((h) => h.status)).toEqual([500, 500, 500, 200]);
    const log = await json(await mgmt(wallet.key, "GET", `/webhooks/${hook.webhook_id}/deliveries`), 200);
    const paused = log.data.find((d: any) => d.event_type === "spend_key.paused");
    expect(paused).toMatchObject({ status: "delivered", attempts: 4, last_response_code: 200 });
    // Redelivery of that one delivery.
    const again = await json(
      await mgmt(wallet.key, "POST", `/webhooks/${hook.webhook_id}/deliveries/${paused.delivery_id}/redeliver`),
      200,
    );
    expect(again.status).toBe("pending");
  }, 30_000);
});

describe("out of retries", () => {
  it("a receiver that always fails gets 8 attempts (first + 7 retries), then the delivery is dead", async () => {
    const { wallet, id } = await setupKey();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", {
        name: "down",
        url: `https://hooks.example.test/down-${id}?fail=1000`,
      }),
      201,
    );
    await json(await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`), 200);
    const deadline = Date.now() + 20_000;
    let revoked: any;
    while (Date.now() < deadline) {
      const log = await json(await mgmt(wallet.key, "GET", `/webhooks/${hook.webhook_id}/deliveries`), 200);
      revoked = log.data.find((d: any) => d.event_type === "spend_key.revoked");
      if (revoked?.status === "dead") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(revoked).toMatchObject({ status: "dead", attempts: 8, last_response_code: 500, next_retry_at: null });
    expect((await hooks()).filter((h) => h.url.includes(`down-${id}`))).toHaveLength(8);
  }, 30_000);
});

describe("disabled webhooks", () => {
  it("receive nothing: no delivery is made for them, and one in flight when disabled ends dead", async () => {
    const { wallet, id } = await setupKey();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "off", url: `https://hooks.example.test/off-${id}` }),
      201,
    );
    // A delivery already in flight (its row written, its message queued) when the webhook is disabled.
    const now = Date.now();
    const payload = JSON.stringify({
      id: `evt_off_${id}`,
      type: "spend_key.updated",
      created_at: new Date().toISOString(),
      data: {},
    });
    await env.DB.prepare(
      `INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, event_id, event_type, payload, status, attempts,
        next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'spend_key.updated', ?, 'pending', 0, ?, ?, ?)`,
    )
      .bind(`msg_off_${id}`, hook.webhook_id, wallet.walletId, `evt_off_${id}`, payload, now, now, now)
      .run();
    await json(await mgmt(wallet.key, "PATCH", `/webhooks/${hook.webhook_id}`, { enabled: false }), 200);
    await env.WEBHOOKS.send({ deliveryId: `msg_off_${id}` });
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { name: "quiet" }), 200);
    const deadline = Date.now() + 10_000;
    let log: any;
    do {
      await new Promise((r) => setTimeout(r, 250));
      log = await json(await mgmt(wallet.key, "GET", `/webhooks/${hook.webhook_id}/deliveries`), 200);
    } while (log.data[0]?.status !== "dead" && Date.now() < deadline);
    expect(log.data).toHaveLength(1);
    expect(log.data[0]).toMatchObject({ status: "dead", last_error: "webhook deleted or disabled" });
    expect((await hooks()).filter((h) => h.url.includes(`off-${id}`))).toHaveLength(0);
  });
});

describe("nothing is lost", () => {
  it("a delivery whose queue message never arrived is sent by the sweeper (as after a restart)", async () => {
    const { wallet, id } = await setupKey();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "s", url: `https://hooks.example.test/sweep-${id}` }),
      201,
    );
    const event = { id: `evt_lost_${id}`, type: "spend_key.updated", created_at: new Date().toISOString(), data: {} };
    const past = Date.now() - 120_000;
    // The delivery row exists (it is written before the queue is told), but its message was lost.
    await env.DB.prepare(
      `INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, event_id, event_type, payload, status, attempts,
        next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
    )
      .bind(
        `msg_lost_${id}`,
        hook.webhook_id,
        wallet.walletId,
        event.id,
        event.type,
        JSON.stringify(event),
        past,
        past,
        past,
      )
      .run();
    const { default: worker } = await import("../../src/index.ts");
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController(), env, ctx);
    await waitOnExecutionContext(ctx);
    const got = await until((all) => all.find((h) => h.url.includes(`sweep-${id}`)));
    expect(JSON.parse(got.body)).toMatchObject({ id: event.id });
    expect(new Webhook(hook.webhook_secret).verify(got.body, got.headers)).toBeTruthy();
  });

  it("a key's expiry raises spend_key.expired, once", async () => {
    const { wallet, id } = await setupKey({ expires_at: new Date(Date.now() + 2_500).toISOString() });
    await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "e", url: `https://hooks.example.test/exp-${id}` }),
      201,
    );
    const expired = await until((all) => {
      const found = eventsAt(all, `exp-${id}`).filter((e) => e.type === "spend_key.expired");
      return found.length ? found : undefined;
    });
    expect(expired[0]!.data.spend_key.spend_key_id).toBe(id);
  }, 20_000);
});
