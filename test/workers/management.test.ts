import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { parseKey } from "../../src/lib/keys.ts";
import { ADMIN, call, chat, createSpendKey, createWallet, d1All, json, mgmt, setupKey } from "./helpers.ts";

/** Every row of every table that belongs to the wallet (other tests' keys flush in the background). */
async function d1Dump(walletId?: string): Promise<string> {
  const where = (col: string) => (walletId ? ` WHERE ${col} = '${walletId}'` : "");
  const parts: string[] = [];
  for (const [t, col] of [
    ["wallets", "id"],
    ["wallet_secret_keys", "wallet_id"],
    ["spend_keys", "wallet_id"],
    ["requests", "wallet_id"],
  ] as const) {
    parts.push(JSON.stringify(await d1All(`SELECT * FROM ${t}${where(col)}`)));
  }
  parts.push(JSON.stringify(await d1All("SELECT * FROM model_overrides")));
  return parts.join("\n");
}

describe("operator API", () => {
  it("creates a wallet with a one-time secret key and lists wallets newest first", async () => {
    const a = await createWallet("first");
    const b = await createWallet("second");
    expect(a.body).toMatchObject({ name: "first", secret_key_hint: expect.stringMatching(/^sgw_….{4}$/) });
    expect(a.key.startsWith("sgw_")).toBe(true);
    expect(parseKey("wallet", a.key)).toBe(a.body.secret_key_id);
    const list = await json(await call("GET", "/admin/wallets?limit=1", { headers: ADMIN }), 200);
    expect(list.data).toHaveLength(1);
    expect(list.data[0].wallet_id).toBe(b.walletId);
    expect(list.has_more).toBe(true);
    const next = await json(
      await call("GET", `/admin/wallets?limit=1&cursor=${list.next_cursor}`, { headers: ADMIN }),
      200,
    );
    expect(next.data[0].wallet_id).toBe(a.walletId);
    expect(JSON.stringify(list)).not.toContain('secret_key"');
  });

  it("refuses a missing or wrong ADMIN_TOKEN and wallet/spend keys", async () => {
    const { wallet, key } = await setupKey();
    const before = (await d1All("SELECT * FROM wallets")).length;
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer nope" },
      { authorization: `Bearer ${wallet.key}` },
      { authorization: `Bearer ${key}` },
    ]) {
      const res = await call("POST", "/admin/wallets", { headers, body: { name: "x" } });
      expect([401, 403]).toContain(res.status);
    }
    expect((await d1All("SELECT * FROM wallets")).length).toBe(before);
  });

  it("answers 503 with a how-to when ADMIN_TOKEN is unset", async () => {
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("http://gateway.test/admin/wallets", { method: "POST", headers: ADMIN, body: "{}" }),
      { ...env, ADMIN_TOKEN: undefined },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const body = await json(res, 503);
    expect(body.error.message).toContain("wrangler secret put ADMIN_TOKEN");
  });

  it("overrides and restores model prices", async () => {
    const put = await json(
      await call("PUT", "/admin/models/gpt-4o-mini", {
        headers: ADMIN,
        body: { provider: "openai", input_price: "1.5", output_price: "2.25" },
      }),
      200,
    );
    expect(put).toMatchObject({
      id: "gpt-4o-mini",
      input_price: "1.50",
      output_price: "2.25",
      // Not priced apart: cache reads are billed as input.
      cache_read_price: null,
      overridden: true,
    });
    // Every price rule can be set: tiers by input size, 1-hour cache writes, per-call fees, service tiers.
    const rules = await json(
      await call("PUT", "/admin/models/gpt-4o-mini", {
        headers: ADMIN,
        body: {
          provider: "openai",
          input_price: "1",
          output_price: "2",
          prices: {
            input_mtok: { base: "1", tiers: [{ start: 200000, price: "2" }] },
            cache_write_1h_mtok: "2",
            web_searches_kcount: "10",
          },
          service_tiers: { priority: "1.75", flex: "0.5" },
        },
      }),
      200,
    );
    expect(rules.prices).toEqual({
      input_mtok: { base: "1.00", tiers: [{ start: 200000, price: "2.00" }] },
      output_mtok: "2.00",
      cache_write_1h_mtok: "2.00",
      web_searches_kcount: "10.00",
    });
    expect(rules.service_tiers).toEqual({ priority: "1.75", flex: "0.5" });
    const unknownKey = await call("PUT", "/admin/models/gpt-4o-mini", {
      headers: ADMIN,
      body: { provider: "openai", input_price: "1", output_price: "2", prices: { gold_bars_kcount: "1" } },
    });
    expect(unknownKey.status).toBe(400);
    const custom = await json(
      await call("PUT", "/admin/models/my-finetune", {
        headers: ADMIN,
        body: { provider: "openai", input_price: "0.3", output_price: "1.2", max_output_tokens: 4096 },
      }),
      200,
    );
    expect(custom.max_output_tokens).toBe(4096);
    const models = await json(await call("GET", "/v1/models"), 200);
    expect(models.data.map((m: { id: string }) => m.id)).toContain("my-finetune");
    const restored = await json(await call("DELETE", "/admin/models/gpt-4o-mini", { headers: ADMIN }), 200);
    expect(restored).toMatchObject({ input_price: "0.15", overridden: false });
    expect((await call("DELETE", "/admin/models/gpt-4o-mini", { headers: ADMIN })).status).toBe(404);
    const bad = await json(
      await call("PUT", "/admin/models/x", {
        headers: ADMIN,
        body: { provider: "nope", input_price: "1", output_price: "1" },
      }),
      400,
    );
    expect(bad.error.param).toBe("provider");
  });
});

describe("spend keys", () => {
  it("creates a key with every field, shown once, sk- prefixed and previewed", async () => {
    const wallet = await createWallet();
    const created = await createSpendKey(wallet.key, {
      name: "research agent",
      request_shape: "anthropic",
      allowed_models: ["claude-sonnet-4-20250514"],
      allowed_providers: ["anthropic"],
      spend_limit: { amount: "50.00", cycle: "monthly" },
      request_limit: { count: 1000, cycle: "daily" },
      rate_limit: { rpm: 60, burst: 10 },
      expires_at: "2099-01-01T00:00:00Z",
    });
    expect(created.key).toMatch(/^sk-sg-/);
    expect(parseKey("spend", created.key)).toBe(created.spend_key_id);
    expect(created).toMatchObject({
      name: "research agent",
      status: "active",
      request_shape: "anthropic",
      wallet_id: wallet.walletId,
      key_preview: `sk-sg-…${created.key.slice(-4)}`,
      allowed_models: ["claude-sonnet-4-20250514"],
      allowed_providers: ["anthropic"],
      spend_limit: { amount: "50.00", cycle: "monthly" },
      current_spend: "0.00",
      total_spend: "0.00",
      request_limit: { count: 1000, cycle: "daily" },
      current_requests: 0,
      total_requests: 0,
      rate_limit: { rpm: 60, burst: 10 },
      expires_at: "2099-01-01T00:00:00.000Z",
      last_used_at: null,
    });
    const retrieved = await json(await mgmt(wallet.key, "GET", `/spend_keys/${created.spend_key_id}`), 200);
    expect(retrieved.key).toBeUndefined();
    expect(retrieved.spend_limit).toEqual({ amount: "50.00", cycle: "monthly" });
  });

  it("applies defaults: openai shape, no limits, burst = rpm", async () => {
    const wallet = await createWallet();
    const created = await createSpendKey(wallet.key, { rate_limit: { rpm: 30 } });
    expect(created).toMatchObject({
      request_shape: "openai",
      spend_limit: null,
      request_limit: null,
      allowed_models: null,
      rate_limit: { rpm: 30, burst: 30 },
    });
  });

  const badBodies: [string, Record<string, unknown>, string][] = [
    ["missing name", {}, "name"],
    ["empty name", { name: "" }, "name"],
    ["long name", { name: "x".repeat(201) }, "name"],
    ["unknown field", { name: "a", colour: "red" }, "colour"],
    [
      "unknown nested field",
      { name: "a", spend_limit: { amount: "1", cycle: "daily", extra: 1 } },
      "spend_limit.extra",
    ],
    ["zero amount", { name: "a", spend_limit: { amount: "0", cycle: "daily" } }, "spend_limit.amount"],
    ["negative amount", { name: "a", spend_limit: { amount: "-5", cycle: "daily" } }, "spend_limit.amount"],
    ["float amount", { name: "a", spend_limit: { amount: 5, cycle: "daily" } }, "spend_limit.amount"],
    ["exponent amount", { name: "a", spend_limit: { amount: "1e3", cycle: "daily" } }, "spend_limit.amount"],
    ["too many decimals", { name: "a", spend_limit: { amount: "0.0000000001", cycle: "daily" } }, "spend_limit.amount"],
    ["bad cycle", { name: "a", spend_limit: { amount: "1", cycle: "yearly" } }, "spend_limit.cycle"],
    ["zero count", { name: "a", request_limit: { count: 0, cycle: "daily" } }, "request_limit.count"],
    ["fractional count", { name: "a", request_limit: { count: 1.5, cycle: "daily" } }, "request_limit.count"],
    ["zero rpm", { name: "a", rate_limit: { rpm: 0 } }, "rate_limit.rpm"],
    ["bad date", { name: "a", expires_at: "tomorrow" }, "expires_at"],
    ["past date", { name: "a", expires_at: "2001-01-01T00:00:00Z" }, "expires_at"],
    ["an expiry past 2099", { name: "a", expires_at: "2200-01-01T00:00:00Z" }, "expires_at"],
    ["bad status", { name: "a", status: "frozen" }, "status"],
    ["bad shape", { name: "a", request_shape: "gemini" }, "request_shape"],
    ["unknown provider", { name: "a", allowed_providers: ["acme"] }, "allowed_providers.0"],
    ["unknown model", { name: "a", allowed_models: ["gpt-99"] }, "allowed_models"],
    ["models not a list", { name: "a", allowed_models: "gpt-4o" }, "allowed_models"],
  ];
  for (const [label, body, param] of badBodies) {
    it(`refuses ${label} with a 400 naming ${param} and writes nothing`, async () => {
      const wallet = await createWallet();
      const before = await d1Dump(wallet.walletId);
      const res = await mgmt(wallet.key, "POST", "/spend_keys", body);
      const err = await json(res, 400);
      expect(err.error.type).toBe("invalid_request_error");
      expect(err.error.param).toBe(param);
      expect(err.error.message).toContain(param);
      expect(await d1Dump(wallet.walletId)).toBe(before);
    });
  }

  it("refuses malformed JSON and non-object bodies", async () => {
    const wallet = await createWallet();
    for (const body of ["{not json", "[]", "null"]) {
      const res = await call("POST", "/v1/spend_keys", { headers: { authorization: `Bearer ${wallet.key}` }, body });
      expect(res.status).toBe(400);
      expect((await json(res)).error.type).toBe("invalid_request_error");
    }
    expect(await d1All(`SELECT * FROM spend_keys WHERE wallet_id = '${wallet.walletId}'`)).toHaveLength(0);
  });

  it("lists newest first with cursor pagination and limit 1–100", async () => {
    const wallet = await createWallet();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createSpendKey(wallet.key, { name: `k${i}` })).spend_key_id);
    const p1 = await json(await mgmt(wallet.key, "GET", "/spend_keys?limit=2"), 200);
    const p2 = await json(await mgmt(wallet.key, "GET", `/spend_keys?limit=2&cursor=${p1.next_cursor}`), 200);
    const p3 = await json(await mgmt(wallet.key, "GET", `/spend_keys?limit=2&cursor=${p2.next_cursor}`), 200);
    const seen = [...p1.data, ...p2.data, ...p3.data].map((k: { spend_key_id: string }) => k.spend_key_id);
    expect(seen).toEqual([...ids].reverse());
    expect(p1.has_more && p2.has_more).toBe(true);
    expect(p3.has_more).toBe(false);
    expect(p3.next_cursor).toBeUndefined();
    expect((await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data).toHaveLength(5);
    for (const q of ["limit=0", "limit=101", "limit=abc", "cursor=garbage"]) {
      expect((await mgmt(wallet.key, "GET", `/spend_keys?${q}`)).status).toBe(400);
    }
  });

  it("updates only the fields sent (PUT and PATCH), null clears a limit", async () => {
    const { wallet, id } = await setupKey({ spend_limit: { amount: "10", cycle: "daily" }, rate_limit: { rpm: 10 } });
    const put = await json(await mgmt(wallet.key, "PUT", `/spend_keys/${id}`, { name: "renamed" }), 200);
    expect(put).toMatchObject({
      name: "renamed",
      spend_limit: { amount: "10.00", cycle: "daily" },
      rate_limit: { rpm: 10, burst: 10 },
    });
    const patch = await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { spend_limit: null, status: "paused" }),
      200,
    );
    expect(patch).toMatchObject({
      name: "renamed",
      spend_limit: null,
      status: "paused",
      rate_limit: { rpm: 10, burst: 10 },
    });
    const bad = await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, {
      spend_limit: { amount: "abc", cycle: "daily" },
    });
    expect(bad.status).toBe(400);
    const after = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(after.spend_limit).toBeNull();
    expect(after.status).toBe("paused");
  });

  it("concurrent updates leave D1 and the KeyGuard agreeing, and never touch the counters", async () => {
    const { wallet, id, key } = await setupKey();
    await chat(key);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { rate_limit: { rpm: 100 + i } }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const [row] = await d1All(`SELECT rate_limit_rpm, config_version FROM spend_keys WHERE id = '${id}'`);
    const guard = (await keyGuard(env, id).inspect()).config!;
    expect(guard.rateLimit?.rpm).toBe(row!.rate_limit_rpm);
    expect(guard.version).toBe(row!.config_version);
    const retrieved = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(retrieved.total_requests).toBe(1);
  });

  it("rotates: same id, limits and counters; a new key; the old key fails on its next request", async () => {
    const { wallet, id, key } = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    expect((await chat(key)).status).toBe(200);
    const rotated = await json(await mgmt(wallet.key, "POST", `/spend_keys/${id}/rotate`), 200);
    expect(rotated.spend_key_id).toBe(id);
    expect(rotated.key).not.toBe(key);
    expect(rotated.total_requests).toBe(1);
    expect(rotated.spend_limit).toEqual({ amount: "5.00", cycle: "total" });
    expect((await chat(key)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
  });

  it("revokes: success, the key fails at once, leaves list and retrieve", async () => {
    const { wallet, id, key } = await setupKey();
    expect(await json(await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`), 200)).toEqual({ success: true });
    expect((await chat(key)).status).toBe(401);
    expect((await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data).toHaveLength(0);
    expect((await mgmt(wallet.key, "GET", `/spend_keys/${id}`)).status).toBe(404);
    expect((await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`)).status).toBe(404);
  });

  it("answers another wallet's ids exactly like unknown ids", async () => {
    const a = await setupKey();
    const b = await createWallet("other");
    const unknown = "spk_0000000000000000";
    for (const [method, path, body] of [
      ["GET", `/spend_keys/{id}`, undefined],
      ["PUT", `/spend_keys/{id}`, { name: "stolen" }],
      ["PATCH", `/spend_keys/{id}`, { status: "paused" }],
      ["POST", `/spend_keys/{id}/rotate`, undefined],
      ["DELETE", `/spend_keys/{id}`, undefined],
    ] as const) {
      const theirs = await mgmt(b.key, method, path.replace("{id}", a.id), body);
      const none = await mgmt(b.key, method, path.replace("{id}", unknown), body);
      expect(theirs.status).toBe(404);
      expect(none.status).toBe(404);
      const t = (await json(theirs)).error;
      const n = (await json(none)).error;
      expect(t.message.replace(a.id, "ID")).toBe(n.message.replace(unknown, "ID"));
    }
    const still = await json(await mgmt(a.wallet.key, "GET", `/spend_keys/${a.id}`), 200);
    expect(still).toMatchObject({ name: "agent", status: "active" });
    expect((await chat(a.key)).status).toBe(200);
    expect((await json(await mgmt(b.key, "GET", "/spend_keys"), 200)).data).toHaveLength(0);
  });

  it("stores no plaintext secret anywhere in D1 after create and rotate", async () => {
    const wallet = await createWallet();
    const secret = await json(await mgmt(wallet.key, "POST", "/secret_keys", { name: "ci" }), 201);
    const created = await createSpendKey(wallet.key);
    const rotated = await json(await mgmt(wallet.key, "POST", `/spend_keys/${created.spend_key_id}/rotate`), 200);
    const dump = await d1Dump();
    for (const plaintext of [wallet.key, secret.secret_key, created.key, rotated.key]) {
      expect(dump).not.toContain(plaintext);
      // nor the random middle of it
      expect(dump).not.toContain(plaintext.split("_").pop()!.slice(0, 20));
    }
  });
});

describe("wallet secret keys", () => {
  it("lists, creates and deletes keys; refuses to delete the last one", async () => {
    const wallet = await createWallet();
    const list = await json(await mgmt(wallet.key, "GET", "/secret_keys"), 200);
    expect(list.data).toHaveLength(1);
    expect(list.data[0].secret_key).toBeUndefined();
    const first = list.data[0].secret_key_id;
    const created = await json(await mgmt(wallet.key, "POST", "/secret_keys", { name: "second" }), 201);
    expect(created.secret_key).toMatch(/^sgw_/);
    expect((await mgmt(created.secret_key, "GET", "/spend_keys")).status).toBe(200);
    expect(await json(await mgmt(wallet.key, "DELETE", `/secret_keys/${first}`), 200)).toEqual({
      id: first,
      deleted: true,
    });
    expect((await mgmt(wallet.key, "GET", "/spend_keys")).status).toBe(401);
    const last = await mgmt(created.secret_key, "DELETE", `/secret_keys/${created.secret_key_id}`);
    expect(last.status).toBe(409);
    const other = await createWallet("b");
    expect((await mgmt(other.key, "DELETE", `/secret_keys/${created.secret_key_id}`)).status).toBe(404);
    expect((await mgmt(created.secret_key, "GET", "/secret_keys")).status).toBe(200);
  });
});

describe("credentials on the management API", () => {
  it("refuses no key, garbage, a spend key, and keys in the query string", async () => {
    const { wallet, key } = await setupKey();
    expect((await call("GET", "/v1/spend_keys")).status).toBe(401);
    expect((await call("GET", "/v1/spend_keys", { headers: { authorization: "Bearer sgw_garbage" } })).status).toBe(
      401,
    );
    expect((await call("GET", "/v1/spend_keys", { headers: { authorization: `Bearer ${key}` } })).status).toBe(403);
    expect((await call("GET", `/v1/spend_keys?api_key=${wallet.key}`)).status).toBe(401);
    expect((await call("GET", "/v1/spend_keys", { headers: { "x-api-key": wallet.key } })).status).toBe(401);
  });
});

describe("openapi", () => {
  it("describes the operator and management API from the validating schemas", async () => {
    const doc = await json(await call("GET", "/openapi.json"), 200);
    expect(doc.openapi).toBe("3.1.0");
    for (const p of [
      "/admin/wallets",
      "/admin/models/{model}",
      "/v1/spend_keys",
      "/v1/spend_keys/{id}",
      "/v1/spend_keys/{id}/rotate",
      "/v1/secret_keys",
      "/v1/requests",
    ]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    expect(doc.components.schemas.CreateSpendKey.properties.spend_limit).toBeDefined();
  });
});
