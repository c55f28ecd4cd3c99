import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { builtinCatalog, pricesAt } from "../../src/catalog/catalog.ts";
import { costOf } from "../../src/catalog/pricing.ts";
import { CHARS_PER_ESTIMATED_TOKEN } from "../../src/gateway/usage.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../../src/keys/record.ts";
import { call, chat, json, lastFakeRequest, messages, mgmt, settled, setupKey } from "./helpers.ts";

const inspect = settled;

describe("admission that fits the budget", () => {
  it("a key with $0.50 left sends gpt-5 requests without max_tokens and gets answers, never overspending", async () => {
    const { key, id } = await setupKey({ spend_limit: { amount: "0.50", cycle: "total" } });
    // gpt-5 may write 128,000 tokens unasked: $1.28 at $10/1M, more than the whole limit. Each answer costs
    // cents, so every request goes out with the output limit the budget affords.
    for (let i = 0; i < 10; i++) {
      const res = await chat(key, { model: "gpt-5" });
      expect(res.status).toBe(200);
      const limit = Number(res.headers.get("x-spendgate-output-limit"));
      expect(limit).toBeGreaterThan(40_000);
      expect(limit).toBeLessThan(128_000);
      // The field OpenAI reads for gpt-5 carries the lowered limit.
      expect((await lastFakeRequest()).body.max_completion_tokens).toBe(limit);
    }
    // A provider that bills every token the limit allows drains the budget, and still never past it.
    const worst = "Tell me everything [[fault:worst]] [maxout:128000]";
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await chat(key, { model: "gpt-5", messages: [{ role: "user", content: worst }] });
      statuses.push(res.status);
      await res.text();
    }
    expect(statuses[0]).toBe(200);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const { ledger } = await inspect(id);
    const snapshot = await keyGuard(env, id).snapshot();
    expect(snapshot.currentSpendNanos).toBeLessThanOrEqual(500_000_000);
    expect(snapshot.currentSpendNanos).toBeGreaterThan(490_000_000);
    expect(ledger.filter((r) => r.overage)).toEqual([]);
    // Once what is left cannot pay for MIN_CLAMPED_OUTPUT_TOKENS, requests are refused as before.
    const last = await chat(key, { model: "gpt-5" });
    expect(last.status).toBe(429);
    expect(((await last.json()) as any).error.message).toContain(`Even ${MIN_CLAMPED_OUTPUT_TOKENS} output tokens`);
  });

  it("concurrent clamped requests of every dialect still never pass the limit", async () => {
    for (const anthropic of [false, true]) {
      const { key, id } = await setupKey({
        spend_limit: { amount: "0.30", cycle: "total" },
        request_shape: anthropic ? "anthropic" : "openai",
      });
      const content = "[[fault:worst]] [maxout:64000]";
      const results = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const res = anthropic
            ? await messages(key, {
                model: "claude-sonnet-4-5",
                max_tokens: 64_000,
                messages: [{ role: "user", content }],
              })
            : await call("POST", "/v1/responses", {
                headers: { authorization: `Bearer ${key}` },
                body: { model: "gpt-5-mini", input: content, stream: i % 2 === 0 },
              });
          await res.text();
          return { status: res.status, limit: res.headers.get("x-spendgate-output-limit") };
        }),
      );
      expect(results.some((r) => r.status === 200 && r.limit !== null)).toBe(true);
      const { ledger } = await inspect(id);
      const snapshot = await keyGuard(env, id).snapshot();
      expect(snapshot.currentSpendNanos).toBeLessThanOrEqual(300_000_000);
      expect(ledger.filter((r) => r.overage)).toEqual([]);
    }
  });

  it("a key with clamp_output off refuses instead; GET /v1/key says what the next request can afford", async () => {
    const { key, id, wallet } = await setupKey({
      spend_limit: { amount: "0.50", cycle: "total" },
      clamp_output: false,
    });
    const refused = await chat(key, { model: "gpt-5" });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error.message).toContain("Lower max_tokens");
    const view = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } }), 200);
    expect(view).toMatchObject({
      clamp_output: false,
      next_request: { max_cost: "0.50", clamps_output: false, min_output_tokens: MIN_CLAMPED_OUTPUT_TOKENS },
    });
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { clamp_output: true }), 200);
    const ok = await chat(key, { model: "gpt-5" });
    expect(ok.status).toBe(200);
    expect(Number(ok.headers.get("x-spendgate-output-limit"))).toBeGreaterThan(MIN_CLAMPED_OUTPUT_TOKENS);
  });

  it("a request that fits is sent unchanged and says nothing of clamping", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    const res = await chat(key, { model: "gpt-5", max_completion_tokens: 300 });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-spendgate-output-limit")).toBeNull();
    expect((await lastFakeRequest()).body.max_completion_tokens).toBe(300);
  });

  it("bounds web searches: max_uses / max_tool_calls for a spend-limited key, none for an open one", async () => {
    const limited = await setupKey({ spend_limit: { amount: "5", cycle: "total" }, request_shape: "anthropic" });
    const search = [{ type: "web_search_20250305", name: "web_search" }];
    expect((await messages(limited.key, { model: "claude-haiku-4-5", tools: search })).status).toBe(200);
    expect((await lastFakeRequest()).body.tools[0]).toMatchObject({ max_uses: 10 });
    const own = [{ type: "web_search_20250305", name: "web_search", max_uses: 2 }];
    expect((await messages(limited.key, { model: "claude-haiku-4-5", tools: own })).status).toBe(200);
    expect((await lastFakeRequest()).body.tools[0].max_uses).toBe(2);
    const open = await setupKey({ request_shape: "anthropic" });
    expect((await messages(open.key, { model: "claude-haiku-4-5", tools: search })).status).toBe(200);
    expect((await lastFakeRequest()).body.tools[0].max_uses).toBeUndefined();
    const responses = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    const r = await call("POST", "/v1/responses", {
      headers: { authorization: `Bearer ${responses.key}` },
      body: { model: "gpt-5-mini", input: "news", tools: [{ type: "web_search" }], max_output_tokens: 100 },
    });
    expect(r.status).toBe(200);
    expect((await lastFakeRequest()).body.max_tool_calls).toBe(10);
  });
});

describe("cut streams are charged from what is known", () => {
  it("Anthropic: the input message_start reported, and output estimated from the text delivered", async () => {
    const { key, id } = await setupKey({ request_shape: "anthropic" });
    const res = await messages(key, {
      model: "claude-haiku-4-5",
      max_tokens: 4_000,
      stream: true,
      messages: [{ role: "user", content: "[[fault:truncate]] [[fault:words:40]] a story please" }],
    });
    const text = await res.text();
    expect(text).toContain("event: error");
    const delivered = [...text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((m) => m[1]).join("");
    const start = JSON.parse(/event: message_start\ndata: (.*)\n/.exec(text)![1]!).message.usage;
    const [row] = (await inspect(id)).ledger;
    const entry = builtinCatalog.resolve("claude-haiku-4-5")!.entry;
    const expected = costOf(
      { input_tokens: start.input_tokens, output_tokens: Math.ceil(delivered.length / CHARS_PER_ESTIMATED_TOKEN) },
      pricesAt(entry, new Date())!,
    );
    expect(row).toMatchObject({ status: "error", usageKnown: false, costNanos: expected.totalNanos });
    expect(row!.costNanos).toBeLessThan(4_000 * 5_000); // far below the hold ($5/1M × 4,000 tokens of output)
  });

  it("OpenAI: input unknown until the end, so the hold's input bound, plus the estimated output", async () => {
    const { key, id } = await setupKey();
    const res = await chat(key, {
      max_tokens: 4_000,
      stream: true,
      messages: [{ role: "user", content: "[[fault:truncate]] [[fault:words:40]] a story please" }],
    });
    const text = await res.text();
    const delivered = [...text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join("");
    const [row] = (await inspect(id)).ledger;
    const outputTokens = Math.ceil(delivered.length / CHARS_PER_ESTIMATED_TOKEN);
    expect(row).toMatchObject({ status: "error", usageKnown: false, outputTokens });
    // Every byte forwarded counts as an input token at most: what the hold assumed.
    const hold = 4_000 * 600;
    expect(row!.costNanos).toBeLessThan(hold);
    expect(row!.costNanos).toBeGreaterThanOrEqual(Math.ceil((outputTokens * 600_000_000) / 1e6));
  });
});
