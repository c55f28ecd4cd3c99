import { calcPrice, extractUsage, findProvider } from "@pydantic/genai-prices";
import { describe, expect, it } from "vitest";
import { builtinCatalog, pricesAt } from "../../src/catalog/catalog.ts";
import data from "../../src/catalog/prices.gen.json";
import { costOf, type Rate, type Usage } from "../../src/catalog/pricing.ts";
import { call, settled, setupKey } from "./helpers.ts";

/**
 * The pricing matrix through the gateway: the fake provider reports a usage object in the provider's own shape
 * ([[usage:…]]); the ledger must record exactly our cost of what the price database's own extractor reads from
 * that response, which in turn matches the database's calcPrice. JSON and streams, both dialects, the Responses
 * API, service tiers, web searches, each side of a tier.
 */
type Route = "chat" | "messages" | "responses";
const DATABASE_ID: Record<string, string> = { xai: "x-ai" };
const FLAVOR: Record<Route, string> = { chat: "chat", messages: "default", responses: "responses" };
const PATH: Record<Route, string> = {
  chat: "/v1/chat/completions",
  messages: "/v1/messages",
  responses: "/v1/responses",
};

const compiled = data.providers as unknown as Record<string, { models: { id: string; schedule: unknown[] }[] }>;

/** Per provider: its models with a rule beyond input/output (tiers, 1-hour writes, fees, media) and its first two. */
function sample(provider: string): string[] {
  const ids: string[] = [];
  for (const [i, m] of compiled[provider]!.models.entries()) {
    const entry = builtinCatalog.within(provider, m.id);
    // Only ids that reach this model, and no time-of-day prices (the test must know the instant's price).
    if (entry?.id !== m.id || entry.schedule?.some((s) => s.when?.type === "time_of_date")) continue;
    // An id another provider serves first goes there (Vertex's Claude models are Anthropic's here).
    if (builtinCatalog.resolve(m.id)?.entry !== entry) continue;
    const rates = pricesAt(entry, new Date())!.rates;
    const special = Object.entries(rates).some(
      ([k, r]) => typeof r !== "number" || !["input_mtok", "output_mtok", "cache_read_mtok"].includes(k),
    );
    if (special || i < 2) ids.push(m.id);
  }
  return ids.slice(0, 8);
}

const tierStart = (rates: Record<string, Rate>) =>
  Object.values(rates).flatMap((r) => (typeof r === "number" ? [] : r.tiers.map(([s]) => s)))[0];

interface Shape {
  usage: Record<string, unknown>;
  tier?: string;
  webSearchCalls?: number;
}

/** Usage objects in each API's own shape, with the markers the fake needs beside them. */
function shapes(route: Route, provider: string, rates: Record<string, Rate>): Shape[] {
  const start = tierStart(rates);
  const big = start === undefined ? [] : [start, start + 1];
  if (route === "messages") {
    return [
      { usage: { input_tokens: 1_200, output_tokens: 340 } },
      {
        usage: { input_tokens: 400, cache_read_input_tokens: 3_000, cache_creation_input_tokens: 0, output_tokens: 90 },
      },
      {
        usage: {
          input_tokens: 500,
          cache_creation_input_tokens: 4_000,
          cache_creation: { ephemeral_5m_input_tokens: 2_500, ephemeral_1h_input_tokens: 1_500 },
          cache_read_input_tokens: 0,
          output_tokens: 100,
        },
      },
      { usage: { input_tokens: 700, output_tokens: 60, server_tool_use: { web_search_requests: 3 } } },
      ...big.map((n) => ({
        usage: { input_tokens: n - 1_000, cache_read_input_tokens: 1_000, output_tokens: 500 },
      })),
    ];
  }
  if (route === "responses") {
    return [
      { usage: { input_tokens: 1_200, input_tokens_details: { cached_tokens: 200 }, output_tokens: 340 } },
      {
        usage: { input_tokens: 800, output_tokens: 2_600, output_tokens_details: { reasoning_tokens: 2_000 } },
        tier: "flex",
      },
      { usage: { input_tokens: 900, output_tokens: 50 }, webSearchCalls: 4 },
      ...big.map((n) => ({ usage: { input_tokens: n, output_tokens: 500 } })),
    ];
  }
  const tiers = provider === "openai" ? ["priority", "flex"] : [];
  return [
    { usage: { prompt_tokens: 1_200, completion_tokens: 340 } },
    { usage: { prompt_tokens: 5_000, prompt_tokens_details: { cached_tokens: 3_000 }, completion_tokens: 200 } },
    {
      usage: { prompt_tokens: 800, completion_tokens: 600, completion_tokens_details: { reasoning_tokens: 400 } },
    },
    ...tiers.map((tier) => ({ usage: { prompt_tokens: 1_000, completion_tokens: 100 }, tier })),
    ...big.map((n) => ({ usage: { prompt_tokens: n, completion_tokens: 500 } })),
  ];
}

function request(route: Route, model: string, usage: unknown, tier?: string, webSearchCalls?: number) {
  const text =
    `Price me [[usage:${JSON.stringify(usage)}]]` +
    (tier ? ` [[tier:${tier}]]` : "") +
    (webSearchCalls ? ` [web_search_calls:${webSearchCalls}]` : "");
  if (route === "responses") {
    return { model, input: text, max_output_tokens: 1_000, ...(tier ? { service_tier: tier } : {}) };
  }
  if (route === "messages") return { model, max_tokens: 1_000, messages: [{ role: "user", content: text }] };
  return {
    model,
    max_tokens: 1_000,
    messages: [{ role: "user", content: text }],
    ...(tier ? { service_tier: tier } : {}),
  };
}

async function run(route: Route, provider: string) {
  const anthropic = route === "messages";
  const { key, id } = await setupKey({
    request_shape: anthropic ? "anthropic" : "openai",
    spend_limit: { amount: "100000", cycle: "total" },
  });
  const auth: Record<string, string> = anthropic
    ? { "x-api-key": key, "anthropic-version": "2023-06-01" }
    : { authorization: `Bearer ${key}` };
  const dbProvider = findProvider({ providerId: DATABASE_ID[provider] ?? provider })!;
  // A provider without a mapping for the flavor is read by its default one (an OpenAI-compatible API's), else
  // as OpenAI's (the gateway does the same).
  const has = (f: string) => dbProvider.extractors?.some((e) => e.api_flavor === f);
  const [extractor, flavor] = has(FLAVOR[route])
    ? [dbProvider, FLAVOR[route]]
    : has("default") && provider !== "anthropic"
      ? [dbProvider, "default"]
      : [findProvider({ providerId: "openai" })!, FLAVOR[route]];
  let checked = 0;
  for (const model of sample(provider)) {
    const entry = builtinCatalog.within(provider, model)!;
    const prices = pricesAt(entry, new Date())!;
    for (const shape of shapes(route, provider, prices.rates)) {
      for (const stream of [false, true]) {
        const body = { ...request(route, model, shape.usage, shape.tier, shape.webSearchCalls), stream };
        const res = await call("POST", PATH[route], { headers: auth, body });
        const text = await res.text();
        expect(res.status, `${route} ${model}: ${text.slice(0, 300)}`).toBe(200);
        const requestId = res.headers.get(anthropic ? "request-id" : "x-request-id");
        const row = (await settled(id)).ledger.find((r) => r.requestId === requestId)!;
        // What the database's own extractor reads from the same response.
        const usage: Usage = { ...extractUsage(extractor, { model, usage: shape.usage }, flavor).usage } as Usage;
        if (shape.webSearchCalls) usage.web_searches = shape.webSearchCalls;
        const expected = costOf(usage, prices, shape.tier);
        const what = `${route} ${provider}/${model} ${stream ? "stream" : "json"} ${JSON.stringify(shape)}`;
        expect(row.costNanos, what).toBe(expected.totalNanos);
        expect(row.pricedModel).toBe(entry.id);
        // …and that is the database's price (service tiers: × the tier's multiplier).
        const factor = shape.tier === "priority" ? 2 : shape.tier === "flex" ? 0.5 : 1;
        const theirs = calcPrice(usage, model, { providerId: DATABASE_ID[provider] ?? provider })!.total_price;
        expect(Math.abs(row.costNanos / 1e9 - theirs * factor), what).toBeLessThanOrEqual(1e-9 + theirs * 1e-12);
        checked++;
      }
    }
  }
  return checked;
}

describe("the ledger records exactly the computed cost, for every price rule", () => {
  it("OpenAI-shaped chat completions, every routed provider (JSON and streams)", async () => {
    let checked = 0;
    // Groq is left unconfigured in the tests (its prices are checked against calcPrice in prices.test.ts).
    for (const provider of Object.keys(compiled).filter((p) => p !== "groq")) checked += await run("chat", provider);
    expect(checked).toBeGreaterThan(100);
  }, 120_000);

  it("Anthropic messages: cache reads, 5-minute and 1-hour writes, web searches, long-context tiers", async () => {
    expect(await run("messages", "anthropic")).toBeGreaterThan(40);
  }, 60_000);

  it("the Responses API: cached input, reasoning, built-in web searches, flex", async () => {
    expect(await run("responses", "openai")).toBeGreaterThan(40);
  }, 60_000);
});

describe("operator overrides express every rule", () => {
  it("an override's 1-hour writes, web-search fee and tiers price requests by any alias of the model", async () => {
    const admin = { authorization: "Bearer test-admin-token" };
    const put = await call("PUT", "/admin/models/claude-haiku-4-5", {
      headers: admin,
      body: {
        provider: "anthropic",
        input_price: "1",
        output_price: "5",
        prices: {
          input_mtok: { base: "1", tiers: [{ start: 100000, price: "3" }] },
          cache_write_mtok: "1.25",
          cache_write_1h_mtok: "7",
          web_searches_kcount: "20",
        },
      },
    });
    expect(put.status).toBe(200);
    try {
      const { key, id } = await setupKey({ request_shape: "anthropic" });
      const usage = {
        input_tokens: 150_000,
        cache_creation_input_tokens: 3_000,
        cache_creation: { ephemeral_5m_input_tokens: 1_000, ephemeral_1h_input_tokens: 2_000 },
        cache_read_input_tokens: 0,
        output_tokens: 100,
        server_tool_use: { web_search_requests: 2 },
      };
      const res = await call("POST", "/v1/messages", {
        headers: { "x-api-key": key, "anthropic-version": "2023-06-01" },
        body: request("messages", "claude-haiku-4-5-20251001", usage),
      });
      expect(res.status).toBe(200);
      const [row] = (await settled(id)).ledger;
      // 153,000 input tokens cross the 100k tier: uncached input at $3/1M (1-hour writes at $7, 5-minute at
      // $1.25), output at $5/1M, 2 searches at $20 per 1,000.
      // In nano-dollars per token: $1/1M = 1,000.
      const nanos = 150_000 * 3_000 + 1_000 * 1_250 + 2_000 * 7_000 + 100 * 5_000 + 2 * 20_000_000;
      expect(row).toMatchObject({ pricedModel: "claude-haiku-4-5", costNanos: nanos });
    } finally {
      await call("DELETE", "/admin/models/claude-haiku-4-5", { headers: admin });
    }
  });
});

describe("xAI reasoning tokens", () => {
  it("bills reasoning tokens on top of completion_tokens, as xAI documents (charged as completion)", async () => {
    const { key, id } = await setupKey();
    const usage = { prompt_tokens: 100, completion_tokens: 20, completion_tokens_details: { reasoning_tokens: 300 } };
    const res = await call("POST", "/v1/chat/completions", {
      headers: { authorization: `Bearer ${key}` },
      body: request("chat", "grok-3-mini", usage),
    });
    expect(res.status).toBe(200);
    const [row] = (await settled(id)).ledger;
    expect(row).toMatchObject({ provider: "xai", outputTokens: 320, reasoningTokens: 300 });
    const prices = pricesAt(builtinCatalog.resolve("grok-3-mini")!.entry, new Date())!;
    expect(row!.costNanos).toBe(costOf({ input_tokens: 100, output_tokens: 320 }, prices).totalNanos);
  });
});
