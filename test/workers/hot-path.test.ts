import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../src/app.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, callWith, chat, NO_STORAGE, setupKey } from "./helpers.ts";

const post = (key: string, body: unknown) =>
  new Request("http://gateway.test/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** A KeyGuard namespace whose stubs take `ms` longer to settle (as a far-away Durable Object would). */
function slowSettles(ns: typeof env.KEY_GUARD, ms: number): typeof env.KEY_GUARD {
  return new Proxy(ns, {
    get(target, prop) {
      if (prop !== "getByName") return Reflect.get(target, prop, target);
      return (name: string) => {
        const stub = target.getByName(name);
        return new Proxy(stub, {
          get(s, method) {
            const value = Reflect.get(s, method, s);
            if (method !== "settle" || typeof value !== "function") return value;
            return async (input: Parameters<typeof s.settle>[0]) => {
              await new Promise((r) => setTimeout(r, ms));
              return s.settle(input);
            };
          },
        });
      };
    },
  });
}

describe("one round trip on the hot path", () => {
  it("a JSON answer leaves before its settle lands, and its hold still blocks overspending meanwhile", async () => {
    // $0.006 to spend: one hold (9,000 output tokens of gpt-4o-mini ≈ $0.0054) fits, two do not.
    const { key, id } = await setupKey({ spend_limit: { amount: "0.006", cycle: "total" } });
    const ctx = createExecutionContext();
    // The key's KeyGuard 300 ms away for the settle: the answer must not wait for it.
    const res = await app.fetch(
      post(key, { model: "gpt-4o-mini", max_tokens: 9_000, messages: [{ role: "user", content: "hi" }] }),
      { ...env, KEY_GUARD: slowSettles(env.KEY_GUARD, 300) },
      ctx,
    );
    expect(res.status).toBe(200);
    const cost = res.headers.get("x-spendgate-cost");
    expect(Number(cost)).toBeGreaterThan(0);
    // The answer is here; the settle is still on its way: the hold is as held.
    const between = await keyGuard(env, id).snapshot();
    expect(between.openHolds).toBe(1);
    expect(between.heldNanos).toBeGreaterThan(5_000_000);
    expect(between.totalSpendNanos).toBe(0);
    const second = await chat(key, { max_tokens: 9_000 });
    expect(second.status).toBe(429);
    expect(await second.json()).toMatchObject({ error: { code: "spend_limit_exceeded" } });
    await waitOnExecutionContext(ctx);
    const after = await keyGuard(env, id).snapshot();
    expect(after).toMatchObject({ openHolds: 0, heldNanos: 0 });
    expect(after.totalSpendNanos).toBe(Math.round(Number(cost) * 1e9));
    expect(res.headers.get("x-spendgate-budget-remaining")).toBe((0.006 - Number(cost)).toFixed(9).replace(/0+$/, ""));
    // With the hold released, the same request fits again.
    expect((await chat(key, { max_tokens: 9_000 })).status).toBe(200);
  });

  it("every route compiles in Hono's RegExpRouter, which matches a gateway request without allocating", async () => {
    // One route the RegExpRouter cannot compile (e.g. a static segment beside a parameter) and Hono's SmartRouter
    // serves the whole app, the gateway included, with the slower TrieRouter.
    const res = await app.fetch(post("sk-unknown", { model: "gpt-4o-mini" }), env, createExecutionContext());
    expect(res.status).toBe(401);
    expect(app.router.name).toBe("SmartRouter + RegExpRouter");
  });
});

describe("configuration is checked as a whole", () => {
  it("a hold lifetime shorter than the longest exchange refuses to serve, naming the setting", async () => {
    const { key } = await setupKey();
    const errors: string[] = [];
    const logged = vi
      .spyOn(console, "error")
      .mockImplementation((...args: unknown[]) => void errors.push(args.map(String).join(" ")));
    try {
      const res = await callWith(
        { HOLD_TTL_MS: "60000", UPSTREAM_TIMEOUT_MS: "60000" },
        "POST",
        "/v1/chat/completions",
        {
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
        },
      );
      expect(res.status).toBe(500);
      const bad = await callWith({ MAX_INFLIGHT_PER_KEY: "lots" }, "POST", "/v1/chat/completions", {
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
      });
      expect(bad.status).toBe(500);
    } finally {
      logged.mockRestore();
    }
    expect(errors.join("\n")).toContain("HOLD_TTL_MS (60000) must exceed UPSTREAM_TIMEOUT_MS + DISCONNECT_DRAIN_MS");
    expect(errors.join("\n")).toContain("MAX_INFLIGHT_PER_KEY must be a whole number");
  });

  it("GET /health answers ok without touching storage, and 500 when the configuration does not parse", async () => {
    const ok = await call("GET", "/health");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(await ok.json()).toEqual({ status: "ok" });
    expect((await callWith(NO_STORAGE, "GET", "/health")).status).toBe(200);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      expect((await callWith({ MAX_BODY_BYTES: "lots" }, "GET", "/health")).status).toBe(500);
    } finally {
      quiet.mockRestore();
    }
  });
});
