import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Lava } from "@lavapayments/nodejs";
import { Webhook } from "standardwebhooks";
import { expect, it } from "vitest";
import { gatewayUrl, newWallet } from "./helpers.ts";

it("the Lava SDK drives webhooks, and a real HTTP receiver verifies every delivery with standardwebhooks", async () => {
  const received: { headers: Record<string, string>; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  try {
    const wallet = await newWallet();
    const lava = new Lava(wallet.secret_key, { baseUrl: `${gatewayUrl()}/v1/` });
    const hook = await lava.webhooks.create({ name: "ops", url });
    expect(hook.webhook_secret).toMatch(/^whsec_/);
    expect((await lava.webhooks.list()).data.map((w) => w.webhook_id)).toEqual([hook.webhook_id]);
    expect(await lava.webhooks.retrieve(hook.webhook_id)).toMatchObject({ name: "ops", url });
    expect(await lava.webhooks.update(hook.webhook_id, { name: "ops-renamed" })).toMatchObject({ name: "ops-renamed" });

    const key = await lava.spendKeys.create({ name: "watched" });
    await lava.spendKeys.update(key.spend_key_id, { status: "paused" });
    await lava.spendKeys.update(key.spend_key_id, { status: "paused" }); // no change of status: updated only
    await lava.spendKeys.update(key.spend_key_id, { status: "active" });
    await lava.spendKeys.revoke(key.spend_key_id);
    const deadline = Date.now() + 20_000;
    while (received.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const verifier = new Webhook(hook.webhook_secret);
    const events = received.map((r) => verifier.verify(r.body, r.headers) as { type: string; data: any });
    const count = (type: string) => events.filter((e) => e.type === type).length;
    // created, 3 × updated, paused (once: the second PATCH changed nothing), resumed, revoked.
    expect([count("spend_key.updated"), count("spend_key.paused"), count("spend_key.resumed")]).toEqual([3, 1, 1]);
    await new Promise((r) => setTimeout(r, 500)); // nothing more may arrive
    expect(received).toHaveLength(7);
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(["spend_key.created", "spend_key.updated", "spend_key.paused", "spend_key.resumed", "spend_key.revoked"]),
    );
    for (const e of events) expect(e.data.spend_key.spend_key_id).toBe(key.spend_key_id);
    expect(JSON.stringify(events)).not.toContain(key.key.slice(-20));
    expect(() => verifier.verify(received[0]!.body.replace("spend_key", "spend_kex"), received[0]!.headers)).toThrow();

    expect(await lava.webhooks.delete(hook.webhook_id)).toEqual({ id: hook.webhook_id, deleted: true });
    await expect(lava.webhooks.retrieve(hook.webhook_id)).rejects.toThrow(/404/);
  } finally {
    server.close();
  }
}, 60_000);
