import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { ADMIN, call, callWith, chat, d1All, fakeRequests, json, messages, mgmt, setupKey } from "./helpers.ts";

const countTokens = (key: string, text = "Count me", headers: Record<string, string> = {}) =>
  call("POST", "/v1/messages/count_tokens", {
    headers: { "x-api-key": key, "anthropic-version": "2023-06-01", ...headers },
    body: { model: "claude-sonnet-4-20250514", messages: [{ role: "user", content: text }] },
  });

const countTokensCalls = async () => (await fakeRequests()).filter((r) => r.path.endsWith("/count_tokens")).length;

describe("count_tokens obeys the key's status, rate and in-flight cap, and is never counted or charged", () => {
  it("at rpm 1 (burst 1), one of 30 simultaneous calls reaches the provider; the rest: 429, retry-after", async () => {
    const { key, id } = await setupKey({ request_shape: "anthropic", rate_limit: { rpm: 1, burst: 1 } });
    const before = await countTokensCalls();
    const results = await Promise.all(Array.from({ length: 30 }, () => countTokens(key)));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toHaveLength(1);
    expect(limited).toHaveLength(29);
    for (const r of limited) {
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await r.json()).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    }
    expect((await countTokensCalls()) - before).toBe(1);
    // Not a request and not a cost: the counters and the ledger stay empty.
    const snap = await keyGuard(env, id).snapshot();
    expect(snap).toMatchObject({ totalRequests: 0, totalSpendNanos: 0, openHolds: 0, heldNanos: 0 });
  });

  it("is refused on a paused key and counts toward the in-flight cap", async () => {
    const { key, id, wallet } = await setupKey({ request_shape: "anthropic" });
    const overrides = { MAX_INFLIGHT_PER_KEY: "2" };
    const slow = () =>
      callWith(overrides, "POST", "/v1/messages/count_tokens", {
        headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({
          model: "claude-sonnet-4-20250514",
          messages: [{ role: "user", content: "[[fault:slow:400]] hi" }],
        }),
      });
    const results = await Promise.all([slow(), slow(), slow()]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    const refused = results.find((r) => r.status === 429)!;
    expect(await refused.json()).toMatchObject({
      error: { type: "rate_limit_error" },
      details: { limit: "concurrency" },
    });
    // The places are freed when the calls end.
    expect((await keyGuard(env, id).snapshot()).openHolds).toBe(0);
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    const paused = await countTokens(key);
    expect(paused.status).toBe(403);
    expect(await paused.json()).toMatchObject({ type: "error", error: { type: "permission_error" } });
  });
});

describe("strict input at the edges: refused in the caller's dialect, nothing changed", () => {
  it("x-spendgate-metadata values must be strings", async () => {
    const { key, id } = await setupKey();
    const anthropic = await setupKey({ request_shape: "anthropic" });
    const before = (await fakeRequests()).length;
    for (const bad of [{ run: 42 }, { run: null }, { run: { nested: "x" } }, { run: ["a"] }, { ok: "x", flag: true }]) {
      const header = { "x-spendgate-metadata": JSON.stringify(bad) };
      const o = await chat(key, {}, header);
      expect(o.status).toBe(400);
      expect(await o.json()).toMatchObject({ error: { type: "invalid_request_error", param: "x-spendgate-metadata" } });
      const a = await messages(anthropic.key, {}, header);
      expect(a.status).toBe(400);
      expect(await a.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    }
    expect((await fakeRequests()).length).toBe(before);
    expect((await keyGuard(env, id).snapshot()).totalRequests).toBe(0);
    expect((await keyGuard(env, anthropic.id).snapshot()).totalRequests).toBe(0);
    expect((await chat(key, {}, { "x-spendgate-metadata": JSON.stringify({ run: "42" }) })).status).toBe(200);
  });

  it("management bodies over 256 KiB are refused with 413 and change nothing", async () => {
    const { wallet, id } = await setupKey({ name: "before" });
    const before = await d1All(`SELECT * FROM spend_keys WHERE id = '${id}'`);
    const huge = {
      name: "after",
      allowed_models: Array.from({ length: 2000 }, (_, i) => `model-${i}-${"x".repeat(150)}`),
    };
    const res = await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, huge);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "request_too_large", type: "invalid_request_error" } });
    const created = await mgmt(wallet.key, "POST", "/spend_keys", huge);
    expect(created.status).toBe(413);
    expect(await d1All(`SELECT * FROM spend_keys WHERE id = '${id}'`)).toEqual(before);
    expect(await d1All(`SELECT count(*) AS n FROM spend_keys WHERE wallet_id = '${wallet.walletId}'`)).toEqual([
      { n: 1 },
    ]);
  });

  it("list `limit` accepts only plain decimal integers from 1 to 100", async () => {
    const { wallet } = await setupKey();
    for (const bad of ["1e1", "0x10", "%205", "5.0", "05", "0", "101", "-1", "+5", ""]) {
      const res = await mgmt(wallet.key, "GET", `/spend_keys?limit=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(await res.json()).toMatchObject({ error: { param: "limit" } });
    }
    expect((await mgmt(wallet.key, "GET", "/spend_keys?limit=5")).status).toBe(200);
    expect((await mgmt(wallet.key, "GET", "/requests?limit=100")).status).toBe(200);
    expect((await call("GET", "/admin/wallets?limit=1e1", { headers: ADMIN })).status).toBe(400);
  });

  it("`/requests` and `/usage` read `start`/`end` alike: calendar dates, date-times with Z or ±hh:mm", async () => {
    const { wallet } = await setupKey();
    for (const route of ["/requests?", "/usage?"]) {
      for (const bad of ["2026-02-30", "2026-13-01", "2026-10-01 00:00", "2026-10-01T00:00:00%2B0100", "1e12"]) {
        const res = await mgmt(wallet.key, "GET", `${route}start=${bad}`);
        expect(res.status, route + bad).toBe(400);
        expect(await res.json(), route + bad).toMatchObject({
          error: { param: "start", message: expect.stringContaining("must be an ISO 8601 date or date-time") },
        });
      }
      for (const good of ["2026-10-01", "2026-10-01T00:00:00Z", "2026-10-01T00:00:00.5%2B01:00"]) {
        expect((await mgmt(wallet.key, "GET", `${route}start=${good}`)).status, route + good).toBe(200);
      }
    }
    expect((await mgmt(wallet.key, "GET", "/requests?start=2024-02-29")).status).toBe(200);
  });

  it("the operator token is compared exactly: one `Bearer `, nothing trimmed", async () => {
    // (Leading and trailing whitespace of a header value never reaches the Worker: HTTP strips it.)
    const near = [
      "Bearer  test-admin-token",
      "bearer test-admin-token",
      "Bearer Bearer test-admin-token",
      "Bearer test-admin-toke",
    ];
    for (const header of [
      ...near,
      "Bearer test-admin-token x",
      "Bearer test-admin-tokenx",
      "Basic test-admin-token",
      "test-admin-token",
    ]) {
      const res = await call("POST", "/admin/wallets", { headers: { authorization: header }, body: { name: "nope" } });
      expect(res.status, JSON.stringify(header)).toBe(401);
    }
    expect(await d1All("SELECT count(*) AS n FROM wallets WHERE name = 'nope'")).toEqual([{ n: 0 }]);
    expect((await call("GET", "/admin/wallets", { headers: ADMIN })).status).toBe(200);
  });
});
