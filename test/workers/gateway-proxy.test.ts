import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { TEST_PROVIDER_KEYS } from "../provider-keys.ts";
import {
  call,
  chat,
  direct,
  fakeRequests,
  json,
  lastFakeRequest,
  messages,
  mgmt,
  settled,
  setupKey,
} from "./helpers.ts";

const OPENAI = "https://api.openai.com/v1";
const ANTHROPIC = "https://api.anthropic.com";

describe("the provider sees only its own key", () => {
  it("rebuilds outbound headers from an allowlist (OpenAI)", async () => {
    const { key } = await setupKey();
    const res = await chat(
      key,
      {},
      {
        cookie: "session=secret",
        "cf-connecting-ip": "1.2.3.4",
        "x-forwarded-for": "1.2.3.4",
        "openai-organization": "org-client",
        "openai-beta": "assistants=v2",
        "x-custom": "nope",
      },
    );
    expect(res.status).toBe(200);
    const seen = await lastFakeRequest();
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.headers.authorization).toBe(`Bearer ${TEST_PROVIDER_KEYS.OPENAI_API_KEY}`);
    expect(seen.headers["openai-beta"]).toBe("assistants=v2");
    expect(JSON.stringify(seen.headers)).not.toContain(key);
    for (const h of ["cookie", "cf-connecting-ip", "x-forwarded-for", "openai-organization", "x-custom", "x-api-key"]) {
      expect(seen.headers[h]).toBeUndefined();
    }
  });

  it("rebuilds outbound headers from an allowlist (Anthropic), defaulting anthropic-version", async () => {
    const { key } = await setupKey({ request_shape: "anthropic" });
    await messages(
      key,
      {},
      { "anthropic-version": "", "anthropic-beta": "prompt-caching-2024-07-31", authorization: `Bearer ${key}` },
    );
    const seen = await lastFakeRequest();
    expect(seen.headers["anthropic-version"]).toBe("2023-06-01");
    expect(seen.path).toBe("/v1/messages");
    expect(seen.headers["x-api-key"]).toBe(TEST_PROVIDER_KEYS.ANTHROPIC_API_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["anthropic-beta"]).toBe("prompt-caching-2024-07-31");
    expect(JSON.stringify(seen.headers)).not.toContain(key);
    const plain = await setupKey({ request_shape: "anthropic" });
    await call("POST", "/v1/messages", {
      headers: { "x-api-key": plain.key },
      body: { model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] },
    });
    expect((await lastFakeRequest()).headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("sends an openai-shaped key's Claude call to Anthropic's OpenAI-compatible endpoint", async () => {
    const { key } = await setupKey();
    expect((await chat(key, { model: "claude-sonnet-4-20250514" })).status).toBe(200);
    const seen = await lastFakeRequest();
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.headers["x-api-key"]).toBe(TEST_PROVIDER_KEYS.ANTHROPIC_API_KEY);
  });

  it("sends each provider's models to its own base URL with its own key", async () => {
    const { key } = await setupKey();
    const cases: [string, string, string][] = [
      ["gpt-4o-mini", "https://api.openai.com/v1/chat/completions", "OPENAI_API_KEY"],
      [
        "gemini-2.5-flash",
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "GOOGLE_API_KEY",
      ],
      ["mistral-small-latest", "https://api.mistral.ai/v1/chat/completions", "MISTRAL_API_KEY"],
      ["deepseek-chat", "https://api.deepseek.com/v1/chat/completions", "DEEPSEEK_API_KEY"],
      ["grok-3-mini", "https://api.x.ai/v1/chat/completions", "XAI_API_KEY"],
      ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "https://api.together.xyz/v1/chat/completions", "TOGETHER_API_KEY"],
      [
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "https://api.fireworks.ai/inference/v1/chat/completions",
        "FIREWORKS_API_KEY",
      ],
    ];
    for (const [model, url, secret] of cases) {
      const res = await chat(key, { model, max_tokens: 5 });
      expect(res.status, model).toBe(200);
      const seen = await lastFakeRequest();
      expect(seen.url).toBe(url);
      expect(seen.headers.authorization).toBe(
        `Bearer ${TEST_PROVIDER_KEYS[secret as keyof typeof TEST_PROVIDER_KEYS]}`,
      );
      expect(seen.body.model).toBe(model);
    }
    const emb = await call("POST", "/v1/embeddings", {
      headers: { authorization: `Bearer ${key}` },
      body: { model: "mistral-embed", input: "x" },
    });
    expect(emb.status).toBe(200);
    expect((await lastFakeRequest()).url).toBe("https://api.mistral.ai/v1/embeddings");
  });

  it("accepts the spend key as x-api-key too", async () => {
    const { key } = await setupKey();
    const res = await call("POST", "/v1/chat/completions", {
      headers: { "x-api-key": key },
      body: { model: "gpt-4o-mini", messages: [] },
    });
    expect(res.status).toBe(200);
  });
});

describe("responses pass through unchanged", () => {
  it("JSON bodies are byte-identical to the provider's", async () => {
    const { key } = await setupKey();
    const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "bytes please" }] };
    const viaGateway = await (await chat(key, body)).text();
    const straight = await (await direct(`${OPENAI}/chat/completions`, body)).text();
    expect(viaGateway).toBe(straight);
  });

  it("OpenAI streams are byte-identical when the client asked for usage", async () => {
    const { key } = await setupKey();
    const body = {
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream it" }],
    };
    const res = await chat(key, body);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(await res.text()).toBe(await (await direct(`${OPENAI}/chat/completions`, body)).text());
  });

  it("OpenAI streams drop only the injected usage chunk when the client did not ask for usage", async () => {
    const { key } = await setupKey();
    const body = { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "stream it" }] };
    const text = await (await chat(key, body)).text();
    expect((await lastFakeRequest()).body.stream_options).toEqual({ include_usage: true });
    const withUsage = await (
      await direct(`${OPENAI}/chat/completions`, { ...body, stream_options: { include_usage: true } })
    ).text();
    const expected = withUsage
      .split("\n\n")
      .filter((e) => !/"choices":\[\],"usage":\{/.test(e))
      .join("\n\n");
    expect(text).toBe(expected);
    expect(text).not.toMatch(/"usage":\{/);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("Anthropic streams are byte-identical", async () => {
    const { key } = await setupKey({ request_shape: "anthropic" });
    const body = {
      model: "claude-sonnet-4-20250514",
      max_tokens: 64,
      stream: true,
      messages: [{ role: "user", content: "stream it" }],
    };
    const res = await messages(key, body);
    expect(await res.text()).toBe(await (await direct(`${ANTHROPIC}/v1/messages`, body, { "x-api-key": "k" })).text());
  });

  it("Responses API and embeddings pass through, JSON and streamed", async () => {
    const { key } = await setupKey();
    const auth = { authorization: `Bearer ${key}` };
    for (const body of [
      { model: "gpt-4o-mini", input: "hello" },
      { model: "gpt-4o-mini", input: "hello", stream: true },
    ]) {
      const res = await call("POST", "/v1/responses", { headers: auth, body });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(await (await direct(`${OPENAI}/responses`, body)).text());
    }
    const emb = { model: "text-embedding-3-small", input: ["a b c", "d e"] };
    const res = await call("POST", "/v1/embeddings", { headers: auth, body: emb });
    expect(await res.text()).toBe(await (await direct(`${OPENAI}/embeddings`, emb)).text());
  });

  it("count_tokens is answered and never counted", async () => {
    const { key, id, wallet } = await setupKey({
      request_shape: "anthropic",
      request_limit: { count: 1, cycle: "total" },
    });
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", "/v1/messages/count_tokens", {
        headers: { "x-api-key": key },
        body: { model: "claude-sonnet-4-20250514", messages: [{ role: "user", content: "count me" }] },
      });
      expect(await json(res, 200)).toEqual({ input_tokens: 5 });
    }
    const k = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(k.total_requests).toBe(0);
    expect(k.total_spend).toBe("0.00");
  });

  it("reports an upstream stream that breaks midway in-band, in the key's dialect", async () => {
    const { key } = await setupKey();
    const text = await (
      await chat(key, { stream: true, messages: [{ role: "user", content: "[[fault:reset]]" }] })
    ).text();
    expect(text).toMatch(/data: \{"error":\{"message":"The provider's stream was interrupted\."/);
    const anth = await setupKey({ request_shape: "anthropic" });
    const t2 = await (
      await messages(anth.key, { stream: true, messages: [{ role: "user", content: "[[fault:reset]]" }] })
    ).text();
    expect(t2).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
  });

  it("streams the first bytes before the provider has finished", async () => {
    const { key } = await setupKey();
    const res = await chat(key, { stream: true, messages: [{ role: "user", content: "[[fault:gap:300]]" }] });
    const reader = res.body!.getReader();
    const t0 = Date.now();
    const first = await reader.read();
    const firstAt = Date.now() - t0;
    expect(first.done).toBe(false);
    let rest = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest++;
    }
    const total = Date.now() - t0;
    // 14 chunks 300 ms apart: the first arrives long before the last.
    expect(rest).toBeGreaterThan(5);
    expect(firstAt).toBeLessThan(total / 4);
  });
});

describe("the key's view", () => {
  it("GET /v1/models lists only what the key may call; the catalog without a key", async () => {
    const { key } = await setupKey({ allowed_providers: ["openai"], spend_limit: { amount: "1", cycle: "daily" } });
    const ids = (
      await json(await call("GET", "/v1/models", { headers: { authorization: `Bearer ${key}` } }), 200)
    ).data.map((m: any) => m.id);
    expect(ids).toContain("gpt-4o-mini");
    expect(ids).not.toContain("claude-sonnet-4-0");
    const all = (await json(await call("GET", "/v1/models"), 200)).data;
    expect(all.map((m: any) => m.id)).toEqual(
      expect.arrayContaining(["gpt-4o-mini", "claude-sonnet-4-0", "llama-3.3-70b-versatile", "gpt-5.5"]),
    );
    expect(all[0]).toMatchObject({ object: "model", created: expect.any(Number), owned_by: expect.any(String) });
    const anth = await setupKey({ request_shape: "anthropic" });
    // An Anthropic-shaped key gets Anthropic's list shape (endpoints.test.ts covers its paging).
    const a = (await json(await call("GET", "/v1/models?limit=1000", { headers: { "x-api-key": anth.key } }), 200))
      .data;
    expect(a.length).toBeGreaterThan(0);
    expect(a.every((m: any) => m.type === "model" && m.id.startsWith("claude"))).toBe(true);
    expect((await call("GET", "/v1/models", { headers: { authorization: "Bearer sk-sg-nope" } })).status).toBe(401);
  });

  it("GET /v1/key shows limits, usage, remaining and resets, never the secret", async () => {
    const { key, id, wallet } = await setupKey({
      spend_limit: { amount: "2", cycle: "daily" },
      request_limit: { count: 10, cycle: "monthly" },
      rate_limit: { rpm: 30, burst: 5 },
    });
    await chat(key, { max_tokens: 20 });
    await settled(id);
    const view = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } }), 200);
    expect(view).toMatchObject({
      spend_key_id: id,
      spend_limit: { amount: "2.00", cycle: "daily" },
      held_spend: "0.00",
      request_limit: { count: 10, cycle: "monthly" },
      current_requests: 1,
      total_requests: 1,
      rate_limit: { rpm: 30, burst: 5 },
      remaining: { requests: 9, rate: 4 },
      in_flight: 0,
      next_request: { clamps_output: true, min_output_tokens: 1024 },
    });
    expect(view.next_request.max_cost).toBe(view.remaining.spend);
    // The same view the management API answers, plus the live figures.
    const managed = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    for (const [field, value] of Object.entries(managed)) expect(view[field], field).toEqual(value);
    expect(Number(view.current_spend)).toBeGreaterThan(0);
    expect(Number(view.remaining.spend)).toBeCloseTo(2 - Number(view.current_spend), 9);
    expect(view.spend_resets_at).toMatch(/T00:00:00\.000Z$/);
    expect(JSON.stringify(view)).not.toContain(key.slice(-20));
    expect((await call("GET", "/v1/key")).status).toBe(401);
  });
});

describe("limits survive Durable Object eviction", () => {
  it("evicting the KeyGuard never refills the rate bucket nor resets the request count", async () => {
    const { key, id } = await setupKey({
      rate_limit: { rpm: 1, burst: 2 },
      request_limit: { count: 3, cycle: "total" },
    });
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(429);
    await evictDurableObject(keyGuard(env, id));
    expect((await chat(key)).status).toBe(429);
    const snap = await keyGuard(env, id).snapshot();
    expect(snap.totalRequests).toBe(2);
  });

  it("accepts at most burst + rpm·W/60 requests in any window", async () => {
    const { key, id } = await setupKey({ rate_limit: { rpm: 60, burst: 3 } });
    const stub = keyGuard(env, id);
    let now = Date.UTC(2030, 0, 1);
    await runInDurableObject(stub, (g: KeyGuard) => {
      g.now = () => now;
    });
    const accepted: number[] = [];
    // 40 attempts, 250 ms apart: 10 s of traffic at 4 req/s against 1 req/s + burst 3.
    for (let i = 0; i < 40; i++) {
      if ((await chat(key, { max_tokens: 1 })).status === 200) accepted.push(now);
      now += 250;
      if (i % 10 === 9)
        await evictDurableObject(stub).then(() => runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => now)));
    }
    for (const start of accepted) {
      for (const W of [1000, 2000, 5000]) {
        const inWindow = accepted.filter((t) => t >= start && t < start + W).length;
        expect(inWindow).toBeLessThanOrEqual(3 + (60 * W) / 60_000);
      }
    }
    expect(accepted.length).toBeGreaterThanOrEqual(3 + 9);
  });
});

describe("very next request", () => {
  it("applies updates to models and limits on the next request", async () => {
    const { wallet, id, key } = await setupKey();
    expect((await chat(key)).status).toBe(200);
    await mgmt(wallet.key, "PUT", `/spend_keys/${id}`, { request_limit: { count: 1, cycle: "daily" } });
    // The period's usage before the limit existed does not count: the cycle starts now.
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(429);
    await mgmt(wallet.key, "PUT", `/spend_keys/${id}`, { request_limit: { count: 5, cycle: "daily" } });
    expect((await chat(key)).status).toBe(200);
  });
});

describe("browsers may call the gateway routes from any origin (CORS); the management API stays same-origin", () => {
  const ORIGIN = "https://app.example";
  const preflight = (path: string, method: string, headers: string) =>
    call("OPTIONS", path, {
      headers: { origin: ORIGIN, "access-control-request-method": method, "access-control-request-headers": headers },
    });

  it("answers preflights for the OpenAI and Anthropic routes, reaching no provider", async () => {
    const before = (await fakeRequests()).length;
    const openai = await preflight("/v1/chat/completions", "POST", "authorization, content-type, x-stainless-os");
    expect(openai.status).toBe(204);
    expect(openai.headers.get("access-control-allow-origin")).toBe("*");
    expect(openai.headers.get("access-control-allow-methods")).toBe("GET,POST");
    expect(openai.headers.get("access-control-allow-headers")).toBe("authorization,content-type,x-stainless-os");
    expect(openai.headers.get("access-control-max-age")).toBe("7200");
    const anthropic = await preflight(
      "/v1/messages",
      "POST",
      "x-api-key,anthropic-version,anthropic-dangerous-direct-browser-access,content-type",
    );
    expect(anthropic.status).toBe(204);
    expect(anthropic.headers.get("access-control-allow-headers")).toContain(
      "anthropic-dangerous-direct-browser-access",
    );
    for (const path of ["/v1/models", "/v1/models/gpt-4o-mini", "/v1/key"]) {
      expect((await preflight(path, "GET", "authorization")).headers.get("access-control-allow-origin"), path).toBe(
        "*",
      );
    }
    expect((await fakeRequests()).length).toBe(before);
  });

  it("a browser's request and its errors carry the CORS headers; the cost and budget are readable", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const ok = await chat(key, {}, { origin: ORIGIN });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = ok.headers.get("access-control-expose-headers")?.split(",") ?? [];
    for (const name of ["x-spendgate-cost", "x-spendgate-budget-remaining", "x-request-id", "retry-after"]) {
      expect(exposed, name).toContain(name);
    }
    expect(ok.headers.get("x-spendgate-cost")).toMatch(/^0\.\d+$/);
    const refused = await chat("sk-sg-not-a-key", {}, { origin: ORIGIN });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
    // Servers' SDKs send no Origin and get no CORS headers.
    expect((await chat(key)).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the management API answers no cross-origin request", async () => {
    const { wallet } = await setupKey();
    const pre = await preflight("/v1/spend_keys", "POST", "authorization, content-type");
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const list = await call("GET", "/v1/spend_keys", {
      headers: { origin: ORIGIN, authorization: `Bearer ${wallet.key}` },
    });
    expect(list.status).toBe(200);
    expect(list.headers.get("access-control-allow-origin")).toBeNull();
  });
});
