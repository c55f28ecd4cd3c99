import { Lava } from "@lavapayments/nodejs";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newWallet } from "./helpers.ts";

/** The seed's management code, unchanged but for `baseUrl`, through the real @lavapayments/nodejs SDK. */
describe("@lavapayments/nodejs against Spendgate", () => {
  it("create → list (2 pages) → retrieve → update → rotate → revoke, and secretKeys", async () => {
    const wallet = await newWallet();
    const lava = new Lava(wallet.secret_key, { baseUrl: `${gatewayUrl()}/v1/` });

    const created = await lava.spendKeys.create({
      name: "research-agent",
      allowed_models: ["gpt-4o-mini", "claude-sonnet-4-20250514"],
      spend_limit: { amount: "50.00", cycle: "monthly" },
      request_limit: { count: 1000, cycle: "daily" },
      rate_limit: { rpm: 60 },
      expires_at: "2099-12-31T00:00:00Z",
    });
    expect(created.key).toMatch(/^sk-/);
    expect(created.spend_limit).toEqual({ amount: "50.00", cycle: "monthly" });
    expect(created.rate_limit).toEqual({ rpm: 60, burst: 60 });
    const second = await lava.spendKeys.create({ name: "second", request_shape: "anthropic" });

    const page1 = await lava.spendKeys.list({ limit: 1 });
    expect(page1.data.map((k) => k.spend_key_id)).toEqual([second.spend_key_id]);
    expect(page1.has_more).toBe(true);
    const page2 = await lava.spendKeys.list({ limit: 1, cursor: page1.next_cursor });
    expect(page2.data.map((k) => k.spend_key_id)).toEqual([created.spend_key_id]);
    expect(page2.has_more).toBe(false);
    for (const k of [...page1.data, ...page2.data]) expect("key" in k).toBe(false);

    const retrieved = await lava.spendKeys.retrieve(created.spend_key_id);
    expect(retrieved).toMatchObject({ name: "research-agent", current_spend: "0.00", total_requests: 0 });
    expect("key" in retrieved).toBe(false);

    const updated = await lava.spendKeys.update(created.spend_key_id, {
      allowed_models: ["gpt-4o-mini"],
      status: "paused",
    });
    expect(updated).toMatchObject({
      allowed_models: ["gpt-4o-mini"],
      status: "paused",
      spend_limit: { amount: "50.00", cycle: "monthly" },
    });
    expect("key" in updated).toBe(false);

    const rotated = await lava.spendKeys.rotate(created.spend_key_id);
    expect(rotated.spend_key_id).toBe(created.spend_key_id);
    expect(rotated.key).not.toBe(created.key);

    expect(await lava.spendKeys.revoke(created.spend_key_id)).toEqual({ success: true });
    await expect(lava.spendKeys.retrieve(created.spend_key_id)).rejects.toThrow(/404/);
    expect((await lava.spendKeys.list()).data.map((k) => k.spend_key_id)).toEqual([second.spend_key_id]);

    // Bad input surfaces as the SDK's error with our message naming the field.
    await expect(lava.spendKeys.create({ name: "x", spend_limit: { amount: "-1", cycle: "daily" } })).rejects.toThrow(
      /400.*spend_limit\.amount/,
    );

    const secret = await lava.secretKeys.create({ name: "ci" });
    expect(secret.secret_key).toMatch(/^sgw_/);
    const secrets = await lava.secretKeys.list();
    expect(secrets.data.map((s) => s.secret_key_id)).toContain(secret.secret_key_id);
    await lava.secretKeys.delete(secret.secret_key_id);
    expect((await lava.secretKeys.list()).data).toHaveLength(1);

    const models = await lava.models.list();
    expect(models.object).toBe("list");
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(["gpt-4o-mini", "claude-sonnet-4-0"]));
  });
});

describe("@lavapayments/nodejs usage.retrieve", () => {
  it("answers RestUsage for the wallet's requests, with metadata_filters as the SDK sends them", async () => {
    const wallet = await newWallet();
    const lava = new Lava(wallet.secret_key, { baseUrl: `${gatewayUrl()}/v1/` });
    const created = await lava.spendKeys.create({ name: "usage" });
    const call = (run: string) =>
      fetch(`${gatewayUrl()}/v1/chat/completions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${created.key}`,
          "content-type": "application/json",
          "x-spendgate-metadata": JSON.stringify({ run }),
        },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      });
    const costs: number[] = [];
    for (const run of ["a", "a", "b"]) costs.push(Number((await call(run)).headers.get("x-spendgate-cost")));
    const start = new Date(Date.now() - 3_600_000).toISOString();
    // The ledger reaches D1 within about a second of each settle.
    let usage = await lava.usage.retrieve({ start });
    for (let i = 0; i < 20 && usage.totals.total_requests < 3; i++) {
      await new Promise((r) => setTimeout(r, 250));
      usage = await lava.usage.retrieve({ start });
    }
    expect(usage.totals.total_requests).toBe(3);
    expect(usage.items.at(-1)).toMatchObject({ date: new Date().toISOString().slice(0, 10) });
    const onlyA = await lava.usage.retrieve({ start, metadata_filters: { run: "a" } });
    expect(onlyA.totals.total_requests).toBe(2);
    expect(Number(onlyA.totals.total_cost)).toBeCloseTo(costs[0]! + costs[1]!, 9);
    expect(onlyA.totals.total_charge).toBe(onlyA.totals.total_cost);
  });
});
