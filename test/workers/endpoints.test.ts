import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { formatUsd } from "../../src/lib/money.ts";
import { call, json, lastFakeRequest, mgmt, settled, setupKey } from "./helpers.ts";

const openai = (key: string, method: string, path: string, body?: unknown) =>
  call(method, path, { headers: { authorization: `Bearer ${key}` }, body });
const anthropic = (key: string, path: string) =>
  call("GET", path, { headers: { "x-api-key": key, "anthropic-version": "2023-06-01" } });

/** The ledger row of the key's last request, straight from its KeyGuard. */
const lastRow = async (id: string) => (await settled(id)).ledger.at(-1);

describe("models by id, in both dialects", () => {
  it("an OpenAI-shaped key retrieves the models it may use, and 404s the rest in its dialect", async () => {
    const { key } = await setupKey({ allowed_models: ["gpt-4o-mini", "meta-llama/Llama-3.3-70B-Instruct-Turbo"] });
    expect(await json(await openai(key, "GET", "/v1/models/gpt-4o-mini"), 200)).toEqual({
      id: "gpt-4o-mini",
      object: "model",
      created: expect.any(Number),
      owned_by: "openai",
    });
    const slashed = await json(await openai(key, "GET", "/v1/models/meta-llama%2FLlama-3.3-70B-Instruct-Turbo"), 200);
    expect(slashed.id).toBe("meta-llama/Llama-3.3-70B-Instruct-Turbo");
    const missing = await openai(key, "GET", "/v1/models/gpt-4o");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { type: "invalid_request_error", code: "model_not_found" } });
    expect((await openai("sk-sg-garbage", "GET", "/v1/models/gpt-4o-mini")).status).toBe(401);
  });

  it("an Anthropic-shaped key gets Anthropic's list shape and paging, and its model objects", async () => {
    const { key } = await setupKey({ request_shape: "anthropic" });
    const all = await json(await anthropic(key, "/v1/models?limit=1000"), 200);
    expect(all.data.length).toBeGreaterThan(3);
    expect(all.data.every((m: { type: string }) => m.type === "model")).toBe(true);
    expect(all.data.every((m: { id: string }) => m.id.startsWith("claude"))).toBe(true);
    expect(all.data[0]).toEqual({
      type: "model",
      id: all.data[0].id,
      display_name: expect.stringMatching(/^Claude /),
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect(all).toMatchObject({ has_more: false, first_id: all.data[0].id, last_id: all.data.at(-1).id });
    const first = await json(await anthropic(key, "/v1/models?limit=2"), 200);
    expect(first).toMatchObject({ has_more: true, first_id: all.data[0].id, last_id: all.data[1].id });
    const next = await json(await anthropic(key, `/v1/models?limit=2&after_id=${first.last_id}`), 200);
    expect(next.data.map((m: { id: string }) => m.id)).toEqual([all.data[2].id, all.data[3].id]);
    const back = await json(await anthropic(key, `/v1/models?limit=2&before_id=${next.first_id}`), 200);
    expect(back.data.map((m: { id: string }) => m.id)).toEqual([all.data[0].id, all.data[1].id]);
    expect(back.has_more).toBe(false);
    const one = await json(await anthropic(key, "/v1/models/claude-sonnet-4-5-20250929"), 200);
    expect(one).toMatchObject({ type: "model", id: "claude-sonnet-4-5-20250929", display_name: "Claude Sonnet 4.5" });
    const other = await anthropic(key, "/v1/models/gpt-4o-mini");
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    expect((await anthropic(key, "/v1/models?limit=0")).status).toBe(400);
  });
});

describe("legacy completions and fill-in-the-middle", () => {
  it("forwards `suffix`, meters JSON and streams as chat, and names the route for a chat model", async () => {
    const { key, id } = await setupKey();
    const res = await openai(key, "POST", "/v1/completions", {
      model: "gpt-3.5-turbo-instruct",
      prompt: "def add(a, b):",
      suffix: "return total",
      max_tokens: 8,
    });
    const body = await json(res, 200);
    expect(body).toMatchObject({ object: "text_completion", choices: [{ index: 0 }] });
    const seen = await lastFakeRequest();
    expect(seen.url).toBe("https://api.openai.com/v1/completions");
    expect(seen.body.suffix).toBe("return total");
    const { prompt_tokens: input, completion_tokens: output } = body.usage;
    // gpt-3.5-turbo-instruct: $1.50 in / $2 out per 1M tokens.
    const cost = Math.ceil((input * 1_500_000_000 + output * 2_000_000_000) / 1e6);
    expect(await lastRow(id)).toMatchObject({ endpoint: "/v1/completions", costNanos: cost, inputTokens: input });
    expect(res.headers.get("x-spendgate-cost")).toBe(formatUsd(cost));

    const stream = await openai(key, "POST", "/v1/completions", {
      model: "gpt-3.5-turbo-instruct",
      prompt: "hi",
      stream: true,
    });
    const text = await stream.text();
    expect(text).toContain('"object":"text_completion"');
    expect(text).not.toContain('"usage"');
    expect((await lastFakeRequest()).body.stream_options).toEqual({ include_usage: true });
    expect(await lastRow(id)).toMatchObject({ endpoint: "/v1/completions", stream: true, usageKnown: true });

    const chatModel = await openai(key, "POST", "/v1/completions", { model: "gpt-4o-mini", prompt: "hi" });
    expect(chatModel.status).toBe(400);
    expect(((await chatModel.json()) as any).error.message).toBe(
      "The model 'gpt-4o-mini' is not served on /v1/completions.",
    );
  });

  it("holds every answer a batch asks for: prompts × max(n, best_of)", async () => {
    // 4,000 tokens × $2/1M = $0.008 per answer; $0.02 fits two answers, not 3 prompts × best_of 2.
    const strict = await setupKey({ spend_limit: { amount: "0.02", cycle: "total" }, clamp_output: false });
    const one = { model: "gpt-3.5-turbo-instruct", prompt: "x", max_tokens: 4_000 };
    expect((await openai(strict.key, "POST", "/v1/completions", one)).status).toBe(200);
    const batch = { ...one, prompt: ["a", "b", "c"], best_of: 2 };
    expect((await openai(strict.key, "POST", "/v1/completions", batch)).status).toBe(429);
    expect((await openai(strict.key, "POST", "/v1/completions", { ...one, best_of: 0 })).status).toBe(400);
    // With clamping (the default) the batch goes out with the output limit its six answers can afford.
    const { key } = await setupKey({ spend_limit: { amount: "0.02", cycle: "total" } });
    const clamped = await openai(key, "POST", "/v1/completions", batch);
    expect(clamped.status).toBe(200);
    const limit = Number(clamped.headers.get("x-spendgate-output-limit"));
    expect((await lastFakeRequest()).body.max_tokens).toBe(limit);
    expect(limit).toBeGreaterThanOrEqual(1_024);
    expect(6 * limit * 2_000).toBeLessThanOrEqual(20_000_000); // 6 answers × limit × $2/1M ≤ $0.02
  });

  it("Mistral's FIM goes to /fim/completions and is metered", async () => {
    const { key, id } = await setupKey();
    const res = await openai(key, "POST", "/v1/fim/completions", {
      model: "codestral-latest",
      prompt: "def f(",
      suffix: ")",
    });
    const body = await json(res, 200);
    expect((await lastFakeRequest()).url).toBe("https://api.mistral.ai/v1/fim/completions");
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(await lastRow(id)).toMatchObject({
      endpoint: "/v1/fim/completions",
      model: "codestral-latest",
      usageKnown: true,
    });
    const stream = await openai(key, "POST", "/v1/fim/completions", {
      model: "codestral-latest",
      prompt: "x",
      stream: true,
    });
    expect(await stream.text()).toContain("[DONE]");
    expect(await lastRow(id)).toMatchObject({ stream: true, usageKnown: true });
    expect((await openai(key, "POST", "/v1/fim/completions", { model: "gpt-4o-mini", prompt: "x" })).status).toBe(400);
  });
});

describe("moderations", () => {
  it("are counted and limited like any request, never charged, and default to omni-moderation-latest", async () => {
    const { key, id, wallet } = await setupKey({
      spend_limit: { amount: "0.01", cycle: "total" },
      request_limit: { count: 2, cycle: "daily" },
    });
    const res = await openai(key, "POST", "/v1/moderations", { input: "a violent sentence" });
    expect(await json(res, 200)).toMatchObject({ results: [{ flagged: true }] });
    // Forwarded as sent (the provider applies the same default); the ledger names the model.
    expect((await lastFakeRequest()).body).toEqual({ input: "a violent sentence" });
    expect(res.headers.get("x-spendgate-cost")).toBe("0.00");
    expect(await lastRow(id)).toMatchObject({
      endpoint: "/v1/moderations",
      model: "omni-moderation-latest",
      costNanos: 0,
    });
    expect((await openai(key, "POST", "/v1/moderations", { input: ["x", "y"] })).status).toBe(200);
    const third = await openai(key, "POST", "/v1/moderations", { input: "z" });
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ error: { code: "request_limit_exceeded" } });
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { request_limit: null, status: "paused" }), 200);
    expect((await openai(key, "POST", "/v1/moderations", { input: "z" })).status).toBe(403);
    const snap = await keyGuard(env, id).snapshot();
    expect(snap.totalSpendNanos).toBe(0);
    expect(snap.totalRequests).toBe(2);
  });
});
