import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import {
  ADMIN,
  call,
  callWith,
  chat,
  createWallet,
  fakeRequests,
  json,
  messages,
  mgmt,
  NO_STORAGE,
  settled,
  setupKey,
} from "./helpers.ts";

/** Asserts an error in the OpenAI dialect: status, `type`, `code`, and our request id header. */
async function openaiError(res: Response, status: number, type: string, code: string) {
  const body = await json(res, status);
  expect(body.error.type).toBe(type);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(res.headers.get("x-request-id")).toMatch(/^req_/);
  return body;
}

async function anthropicError(res: Response, status: number, type: string) {
  const body = await json(res, status);
  expect(body.type).toBe("error");
  expect(body.error.type).toBe(type);
  expect(typeof body.error.message).toBe("string");
  expect(body.request_id).toMatch(/^req_/);
  expect(res.headers.get("request-id")).toBe(body.request_id);
  return body;
}

describe("401: missing, malformed, unknown, rotated-out, revoked or expired key", () => {
  it("answers every bad key with the same body apart from the request id, in the route's dialect", async () => {
    const { wallet, id, key } = await setupKey();
    const unknown = key.replace(/^sk-sg-.{16}/, "sk-sg-AAAAAAAAAAAAAAAA");
    const mutated = key.slice(0, -8) + (key.at(-8) === "a" ? "b" : "a") + key.slice(-7);
    const bodies: string[] = [];
    const strip = (b: any) => JSON.stringify({ ...b, request_id: undefined });
    for (const k of [undefined, "", "garbage", "sk-proj-abc", mutated, wallet.key]) {
      const res = await chat(k ?? "", {}, k === undefined ? { authorization: "" } : {});
      bodies.push(strip(await openaiError(res, 401, "invalid_request_error", "invalid_api_key")));
    }
    // A well-formed key with a valid checksum that no one issued.
    const { issueKey } = await import("../../src/lib/keys.ts");
    bodies.push(
      strip(await openaiError(await chat(issueKey("spend").key), 401, "invalid_request_error", "invalid_api_key")),
    );
    expect(unknown).not.toBe(key);
    // A rotated-out secret reads like any bad key.
    const rotated = await json(await mgmt(wallet.key, "POST", `/spend_keys/${id}/rotate`), 200);
    bodies.push(strip(await openaiError(await chat(key), 401, "invalid_request_error", "invalid_api_key")));
    expect(new Set(bodies).size).toBe(1);
    // Only the holder of the right secret learns that the key was revoked.
    await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`);
    const revoked = await chat(rotated.key);
    expect(revoked.headers.get("x-spendgate-limit")).toBe("revoked");
    expect(revoked.headers.get("x-should-retry")).toBe("false");
    await openaiError(revoked, 401, "invalid_request_error", "key_revoked");
    const anyone = await chat(key);
    expect(anyone.headers.get("x-spendgate-limit")).toBe("key");
    await openaiError(anyone, 401, "invalid_request_error", "invalid_api_key");

    const res = await messages("garbage");
    await anthropicError(res, 401, "authentication_error");
  });

  it("refuses a mutated key without touching D1 or the key's Durable Object", async () => {
    const { key, id } = await setupKey();
    for (let i = 6; i < key.length; i += 7) {
      const c = key[i] === "x" ? "y" : "x";
      const mutated = key.slice(0, i) + c + key.slice(i + 1);
      const res = await callWith(NO_STORAGE, "POST", "/v1/chat/completions", {
        headers: { authorization: `Bearer ${mutated}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
      });
      expect(res.status).toBe(401);
    }
    expect(id).toMatch(/^spk_/);
  });

  it("a forged key with a valid checksum is refused and leaves its Durable Object empty", async () => {
    const { issueKey } = await import("../../src/lib/keys.ts");
    const forged = issueKey("spend");
    expect((await chat(forged.key)).status).toBe(401);
    const tables = await runInDurableObject(keyGuard(env, forged.id), (_g: KeyGuard, state: DurableObjectState) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((r) => r.name),
    );
    expect(tables).not.toContain("holds");
    expect(tables).not.toContain("ledger");
    expect(
      await runInDurableObject(keyGuard(env, forged.id), (_g: KeyGuard, state: DurableObjectState) =>
        state.storage.kv.get("config"),
      ),
    ).toBeUndefined();
  });

  it("never reads a key from the query string", async () => {
    const { key } = await setupKey();
    const res = await call("POST", `/v1/chat/completions?api_key=${key}&key=${key}`, {
      body: { model: "gpt-4o-mini", messages: [] },
    });
    expect(res.status).toBe(401);
  });

  it("fails an expired key on its next request", async () => {
    const { key, id } = await setupKey({ expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await chat(key)).status).toBe(200);
    await runInDurableObject(keyGuard(env, id), (guard: KeyGuard) => {
      guard.now = () => Date.now() + 3_600_001;
    });
    const res = await chat(key);
    expect(res.headers.get("x-spendgate-limit")).toBe("expiry");
    const body = await openaiError(res, 401, "invalid_request_error", "key_expired");
    expect(body.error.message).toMatch(/^This spend key expired at \d{4}-/);
  });
});

describe("403 and 404", () => {
  it("pauses and resumes on the very next request", async () => {
    const { wallet, id, key } = await setupKey();
    await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" });
    await openaiError(await chat(key), 403, "permission_error", "key_paused");
    await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active" });
    expect((await chat(key)).status).toBe(200);
    const anth = await setupKey({ request_shape: "anthropic", status: "paused" });
    await anthropicError(await messages(anth.key), 403, "permission_error");
  });

  it("refuses models and providers the key may not use, and routes outside its shape", async () => {
    const { wallet, id, key } = await setupKey({ allowed_models: ["gpt-4o-mini"] });
    expect((await chat(key)).status).toBe(200);
    await openaiError(await chat(key, { model: "gpt-4o" }), 403, "permission_error", "model_not_allowed");
    await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { allowed_models: null, allowed_providers: ["anthropic"] });
    await openaiError(await chat(key), 403, "permission_error", "model_not_allowed");
    expect((await chat(key, { model: "claude-sonnet-4-20250514" })).status).toBe(200);
    // an openai-shaped key on /v1/messages: refused in its own dialect
    await openaiError(await messages(key), 403, "permission_error", "model_not_allowed");
    const anth = await setupKey({ request_shape: "anthropic" });
    await anthropicError(await chat(anth.key), 403, "permission_error");
    await anthropicError(await messages(anth.key, { model: "gpt-4o-mini" }), 400, "invalid_request_error");
    await anthropicError(await messages(anth.key, { model: "claude-9" }), 404, "not_found_error");
  });

  it("answers 404 model_not_found for a model outside the catalog", async () => {
    const { key } = await setupKey();
    await openaiError(await chat(key, { model: "gpt-99-ultra" }), 404, "invalid_request_error", "model_not_found");
  });

  it("refuses an unpriced request only when the key has a spend limit; else records cost null and why", async () => {
    // gpt-4o-mini-tts is priced by tokens, but a speech answer is audio and reports none.
    const speech = (key: string) =>
      call("POST", "/v1/audio/speech", {
        headers: { authorization: `Bearer ${key}` },
        body: { model: "gpt-4o-mini-tts", input: "Hello there", voice: "alloy" },
      });
    const capped = await setupKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const refused = await openaiError(await speech(capped.key), 403, "permission_error", "model_not_priced");
    expect(refused.error.message).toContain("reports no usage");
    const open = await setupKey();
    const res = await speech(open.key);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    let row: any;
    // The ledger reaches D1 with the key's next flush (about a second).
    for (let i = 0; i < 40 && !row; i++) {
      await new Promise((r) => setTimeout(r, 100));
      row = (await json(await mgmt(open.wallet.key, "GET", `/requests?spend_key_id=${open.id}`), 200)).data[0];
    }
    expect(row).toMatchObject({ cost: null, model: "gpt-4o-mini-tts", priced_model: "gpt-4o-mini-tts" });
    expect(row.cost_note, JSON.stringify(row)).toContain("reports no usage");
  });
});

describe("429: rate, request and spend limits", () => {
  it("rate: burst then 429 with retry-after and retry-after-ms, in both dialects", async () => {
    const { key } = await setupKey({ rate_limit: { rpm: 60, burst: 2 } });
    const ok = await chat(key);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(ok.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    expect(ok.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)$/);
    expect((await chat(key)).status).toBe(200);
    const res = await chat(key);
    const body = await openaiError(res, 429, "requests", "rate_limit_exceeded");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers.get("retry-after-ms"))).toBeGreaterThan(0);
    expect(res.headers.get("x-should-retry")).toBeNull();
    expect(body.details.limit).toBe("rate");

    const anth = await setupKey({ request_shape: "anthropic", rate_limit: { rpm: 60, burst: 1 } });
    const first = await messages(anth.key);
    expect(first.status).toBe(200);
    expect(first.headers.get("anthropic-ratelimit-requests-limit")).toBe("1");
    expect(first.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(first.headers.get("anthropic-ratelimit-requests-reset")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const limited = await messages(anth.key);
    await anthropicError(limited, 429, "rate_limit_error");
    expect(limited.headers.get("retry-after")).not.toBeNull();
  });

  it("request limit: terminal 429 with x-should-retry false and retry-after until the reset", async () => {
    const { key } = await setupKey({ request_limit: { count: 2, cycle: "daily" } });
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(200);
    const res = await chat(key);
    const body = await openaiError(res, 429, "insufficient_quota", "request_limit_exceeded");
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(body.details).toMatchObject({ limit: "requests", count: 2, current: 2, cycle: "daily" });
    const total = await setupKey({ request_limit: { count: 1, cycle: "total" } });
    await chat(total.key);
    const t = await chat(total.key);
    expect(t.status).toBe(429);
    expect(t.headers.get("retry-after")).toBeNull();
    const anth = await setupKey({ request_shape: "anthropic", request_limit: { count: 1, cycle: "total" } });
    await messages(anth.key);
    await anthropicError(await messages(anth.key), 429, "rate_limit_error");
  });

  it("spend limit: 429 insufficient_quota (OpenAI) / 402 billing_error (Anthropic), terminal", async () => {
    // gpt-4o-mini: 16,384 max output × $0.60/M ≈ $0.0098 worst case, so $0.005 cannot fit a request without
    // max_tokens when the key does not let the gateway lower the output limit.
    const { key } = await setupKey({ spend_limit: { amount: "0.005", cycle: "monthly" }, clamp_output: false });
    const res = await chat(key);
    const body = await openaiError(res, 429, "insufficient_quota", "spend_limit_exceeded");
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect(body.details).toMatchObject({ limit: "spend", amount: "0.005", current: "0.00", cycle: "monthly" });
    expect((await chat(key, { max_tokens: 50 })).status).toBe(200);
    const anth = await setupKey({ request_shape: "anthropic", spend_limit: { amount: "0.0001", cycle: "total" } });
    const r = await messages(anth.key);
    await anthropicError(r, 402, "billing_error");
    expect(r.headers.get("x-should-retry")).toBe("false");
    expect(r.headers.get("retry-after")).toBeNull();
  });
});

describe("400, 413, 503, 502/504 and upstream errors", () => {
  it("refuses bad JSON, a missing model and bad fields", async () => {
    const { key } = await setupKey();
    const auth = { authorization: `Bearer ${key}` };
    await openaiError(
      await call("POST", "/v1/chat/completions", { headers: auth, body: "{oops" }),
      400,
      "invalid_request_error",
      "invalid_request",
    );
    await openaiError(
      await call("POST", "/v1/chat/completions", { headers: auth, body: { messages: [] } }),
      400,
      "invalid_request_error",
      "invalid_request",
    );
    const bad = await openaiError(await chat(key, { max_tokens: -1 }), 400, "invalid_request_error", "invalid_request");
    expect(bad.error.param).toBe("max_tokens");
    for (const streamOptions of ["x", [true]]) {
      const body = { stream: true, stream_options: streamOptions };
      const refused = await openaiError(await chat(key, body), 400, "invalid_request_error", "invalid_request");
      expect(refused.error.param).toBe("stream_options");
    }
    await anthropicError(
      await call("POST", "/v1/messages", { headers: { "x-api-key": key }, body: "[]" }),
      400,
      "invalid_request_error",
    );
  });

  it("refuses a body naming a key twice in one object; colons and quotes inside strings are not keys", async () => {
    const { key, id } = await setupKey();
    const headers = { authorization: `Bearer ${key}` };
    const before = (await fakeRequests()).length;
    const message = '{"role":"user","content":"hi"}';
    for (const body of [
      `{"model":"gpt-4o-mini","max_tokens":5,"messages":[${message}],"max_tokens":100000}`,
      '{"model":"gpt-4o","model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a","content":"b"}]}',
    ]) {
      const refused = await openaiError(
        await call("POST", "/v1/chat/completions", { headers, body }),
        400,
        "invalid_request_error",
        "invalid_request",
      );
      expect(refused.error).toMatchObject({ param: "body", message: expect.stringContaining("twice") });
    }
    expect((await fakeRequests()).length).toBe(before);
    // Colons, escaped quotes and backslashes inside strings: one request, answered.
    const content = 'a ": b\\": c: {"k":1} \\';
    const tricky = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], user: "x:y" });
    const ok = await call("POST", "/v1/chat/completions", { headers, body: tricky });
    expect(ok.status).toBe(200);
    expect((await settled(id)).ledger).toHaveLength(1);
  });

  it("a body nested 100,000 deep is forwarded as sent; the provider's 400 comes back, nothing spent", async () => {
    const { key, id } = await setupKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const body = `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":${deep}}]}`;
    const res = await call("POST", "/v1/chat/completions", { headers: { authorization: `Bearer ${key}` }, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.message).toBe("fake provider: input nested too deeply");
    const state = await settled(id);
    expect(state.counters.currentSpendNanos).toBe(0);
    expect(state.held).toEqual({ count: 0, nanos: 0, tokens: 0 });
    expect(state.ledger.map((r) => [r.status, r.httpStatus, r.costNanos])).toEqual([["error", 400, 0]]);
  });

  it("answers 413 for an oversized body, with and without content-length", async () => {
    const { key } = await setupKey();
    const big = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(5000) }] });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    await openaiError(
      await callWith({ MAX_BODY_BYTES: "1000" }, "POST", "/v1/chat/completions", { headers, body: big }),
      413,
      "invalid_request_error",
      "request_too_large",
    );
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big.slice(0, 2500)));
        c.enqueue(new TextEncoder().encode(big.slice(2500)));
        c.close();
      },
    });
    const res = await callWith({ MAX_BODY_BYTES: "1000" }, "POST", "/v1/messages", {
      headers: { ...headers, "x-api-key": key },
      body: chunked,
    });
    await anthropicError(res, 413, "request_too_large");
    const before = (await fakeRequests()).length;
    expect((await fakeRequests()).length).toBe(before);
  });

  it("answers 503 provider_not_configured when the provider has no key", async () => {
    const { key } = await setupKey();
    await openaiError(
      await chat(key, { model: "llama-3.3-70b-versatile" }),
      503,
      "server_error",
      "provider_not_configured",
    );
    const anth = await setupKey({ request_shape: "anthropic" });
    const res = await callWith({ ANTHROPIC_API_KEY: undefined }, "POST", "/v1/messages", {
      headers: { "x-api-key": anth.key, "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-20250514", max_tokens: 10, messages: [] }),
    });
    await anthropicError(res, 503, "api_error");
  });

  it("answers 504 when the provider does not answer in time", async () => {
    const { key } = await setupKey();
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const hang = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "[[fault:hang]]" }] });
    const timedOut = await callWith({ UPSTREAM_TIMEOUT_MS: "300" }, "POST", "/v1/chat/completions", {
      headers,
      body: hang,
    });
    const body = await openaiError(timedOut, 504, "server_error", "upstream_timeout");
    expect(JSON.stringify(body)).not.toMatch(/api\.openai\.com|stack|Error:/);
    // 502 (provider unreachable) is proven in test/conformance/gateway-faults.test.ts against a closed port.
  });

  it("passes upstream error responses through unchanged", async () => {
    const { key } = await setupKey();
    const res = await chat(key, { messages: [{ role: "user", content: "[[fault:500]]" }] });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { message: "fake 500", type: "server_error", param: null, code: null } });
    const anth = await setupKey({ request_shape: "anthropic" });
    const r = await messages(anth.key, { messages: [{ role: "user", content: "[[fault:429]]" }] });
    expect(r.status).toBe(429);
    expect(await r.json()).toEqual({ type: "error", error: { type: "rate_limit_error", message: "fake 429" } });
  });
});

describe("tenancy on the gateway", () => {
  it("refuses wallet keys and admin tokens as spend keys", async () => {
    const wallet = await createWallet();
    expect((await chat(wallet.key)).status).toBe(401);
    expect((await chat(ADMIN.authorization.slice(7))).status).toBe(401);
  });
});
