import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtinCatalog } from "../../src/catalog/catalog.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, chat, fakeRequests, json, mgmt, settled, setupKey } from "./helpers.ts";

/**
 * The hold must bound everything the provider can bill. The fake provider bills the worst case each request
 * allows ([[fault:worst]]): the largest output field it reads (or the model's max), the body's bytes plus a
 * tool-use prompt, or the whole context window when the request pulls content in. Fired concurrently at small
 * `total` limits, recorded spend must never pass the limit, and no row may need the overage flag.
 */
type Route = "chat" | "responses" | "messages";
type Feature = "none" | "function_tool" | "client_tool" | "server_tool" | "image_url" | "file" | "state" | "beta";
const PULLS: Feature[] = ["server_tool", "image_url", "file", "state", "beta"];
const MODEL: Record<Route, string> = {
  chat: "gpt-4o-mini",
  responses: "gpt-4o-mini",
  messages: "claude-haiku-4-5-20251001",
};
const PATH: Record<Route, string> = {
  chat: "/v1/chat/completions",
  responses: "/v1/responses",
  messages: "/v1/messages",
};

function request(route: Route, feature: Feature, fields: Record<string, number>, n: number, stream: boolean) {
  const model = builtinCatalog.resolve(MODEL[route])!.entry;
  const pulls = PULLS.includes(feature) && !(feature === "beta" && route !== "messages");
  const pulled = pulls ? ` [pulled:${model.contextWindow}]` : "";
  const text = `Tell me [[fault:worst]] [maxout:${model.maxOutputTokens}]${pulled}`;
  const url = "https://example.com/cat.png";
  const body: Record<string, unknown> = { model: MODEL[route], stream, ...fields };
  const headers: Record<string, string> = {};
  if (route === "chat") {
    const parts: unknown[] = [{ type: "text", text }];
    if (feature === "image_url") parts.push({ type: "image_url", image_url: { url } });
    if (feature === "file") parts.push({ type: "file", file: { file_id: "file-abc" } });
    body.messages = [{ role: "user", content: parts }];
    if (n > 1) body.n = n;
    if (feature === "function_tool")
      body.tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    if (feature === "client_tool") body.tools = [{ type: "custom", custom: { name: "g" } }];
    if (feature === "server_tool" || feature === "state") body.web_search_options = {};
  } else if (route === "responses") {
    const parts: unknown[] = [{ type: "input_text", text }];
    if (feature === "image_url") parts.push({ type: "input_image", image_url: url });
    if (feature === "file") parts.push({ type: "input_file", file_id: "file-abc" });
    body.input = [{ role: "user", content: parts }];
    if (feature === "function_tool") body.tools = [{ type: "function", name: "f", parameters: { type: "object" } }];
    if (feature === "client_tool") body.tools = [{ type: "custom", name: "g" }];
    if (feature === "server_tool") body.tools = [{ type: "web_search" }];
    if (feature === "state") body.previous_response_id = "resp_earlier";
  } else {
    const parts: unknown[] = [{ type: "text", text }];
    if (feature === "image_url") parts.push({ type: "image", source: { type: "url", url } });
    if (feature === "file") parts.push({ type: "document", source: { type: "file", file_id: "file_abc" } });
    body.messages = [{ role: "user", content: parts }];
    if (feature === "function_tool") body.tools = [{ name: "f", input_schema: { type: "object" } }];
    if (feature === "client_tool")
      body.tools = [
        { type: "bash_20250124", name: "bash" },
        { type: "text_editor_20250728", name: "str_replace_based_edit_tool" },
      ];
    if (feature === "server_tool") body.tools = [{ type: "web_search_20250305", name: "web_search" }];
    if (feature === "state") body.mcp_servers = [{ type: "url", url: "https://mcp.example.com/sse", name: "m" }];
    if (feature === "beta") headers["anthropic-beta"] = "files-api-2025-04-14";
  }
  const auth: Record<string, string> = route === "messages" ? { "anthropic-version": "2023-06-01" } : {};
  return { path: PATH[route], body, headers: { ...auth, ...headers } };
}

const ledgerOf = async (id: string) => (await settled(id)).ledger;

describe("holds bound what the provider can bill", () => {
  it("concurrent worst-case requests never pass a small total limit (property: dialects, JSON, streams)", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Route>("chat", "responses", "messages"),
        fc.constantFrom<Feature>(
          "none",
          "function_tool",
          "client_tool",
          "server_tool",
          "image_url",
          "file",
          "state",
          "beta",
        ),
        fc.record(
          {
            max_tokens: fc.integer({ min: 1, max: 200_000 }),
            max_completion_tokens: fc.integer({ min: 1, max: 200_000 }),
            max_output_tokens: fc.integer({ min: 1, max: 200_000 }),
          },
          { requiredKeys: [] },
        ),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 2, max: 6 }),
        async (route, feature, fields, n, stream, cents, concurrent) => {
          const limitNanos = cents * 10_000_000;
          const { key, id } = await setupKey({
            name: `bound-${run++}`,
            request_shape: route === "messages" ? "anthropic" : "openai",
            spend_limit: { amount: (cents / 100).toFixed(2), cycle: "total" },
          });
          const req = request(route, feature, fields, n, stream);
          const credential: Record<string, string> =
            route === "messages" ? { "x-api-key": key } : { authorization: `Bearer ${key}` };
          const results = await Promise.all(
            Array.from({ length: concurrent }, async () => {
              const res = await call("POST", req.path, { headers: { ...credential, ...req.headers }, body: req.body });
              await res.text();
              return res.status;
            }),
          );
          for (const status of results) expect([200, 400, 402, 429]).toContain(status);
          const rows = await ledgerOf(id);
          const snap = await keyGuard(env, id).snapshot();
          expect(snap.openHolds).toBe(0);
          expect(snap.currentSpendNanos).toBeLessThanOrEqual(limitNanos);
          expect(rows.filter((r) => r.overage)).toEqual([]);
          expect(rows.reduce((sum, r) => sum + r.costNanos, 0)).toBe(snap.totalSpendNanos);
          expect(rows.length).toBe(results.filter((s) => s === 200).length);
        },
      ),
      { numRuns: 60 },
    );
  }, 240_000);

  it("billing past the hold is charged in full and flagged, and the key refuses until its limit rises", async () => {
    const { key, id, wallet } = await setupKey({ spend_limit: { amount: "0.01", cycle: "total" } });
    const res = await chat(key, {
      max_tokens: 100,
      messages: [{ role: "user", content: "[[fault:worst]] [overbill:100000]" }],
    });
    expect(res.status).toBe(200);
    const [row] = await ledgerOf(id);
    expect(row).toMatchObject({ overage: true, outputTokens: 100_100 });
    const snap = await keyGuard(env, id).snapshot();
    expect(snap.currentSpendNanos).toBeGreaterThan(10_000_000);
    const refused = await chat(key, { max_tokens: 1 });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: "spend_limit_exceeded" } });
    await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { spend_limit: { amount: "1", cycle: "total" } }),
      200,
    );
    expect((await chat(key, { max_tokens: 1 })).status).toBe(200);
  });

  it("output: the largest field sent, never the catalog's max; pulled-in input: the context window", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "0.015", cycle: "total" }, clamp_output: false });
    // gpt-4o-mini: 16,384 max output in the catalog; 50,000 asked → $0.03 of output alone does not fit $0.015.
    const big = await chat(key, { max_tokens: 50_000 });
    expect(big.status).toBe(429);
    expect(((await big.json()) as any).error.message).toContain("worst-case cost");
    const mixed = await chat(key, { max_tokens: 50_000, max_completion_tokens: 1 });
    expect(mixed.status).toBe(429);
    expect((await chat(key, { max_tokens: 100 })).status).toBe(200);
    // An image by URL may bill up to 128k input tokens ($0.0192) + 100 output: more than what is left.
    const content = [
      { type: "text", text: "What is this?" },
      { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
    ];
    const pulled = await chat(key, { max_tokens: 100, messages: [{ role: "user", content }] });
    expect(pulled.status).toBe(429);
    expect(((await pulled.json()) as any).error.message).toContain("context window");
  });

  it("server tools billed outside the reported usage: refused on a spend-limited key, served on others", async () => {
    const limited = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    const responses = (key: string, type: string) =>
      call("POST", "/v1/responses", {
        headers: { authorization: `Bearer ${key}` },
        body: { model: "gpt-4o-mini", input: "hi", max_output_tokens: 100, tools: [{ type }] },
      });
    const before = (await fakeRequests()).length;
    for (const type of ["code_interpreter", "image_generation"]) {
      const refused = await responses(limited.key, type);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as any).error.message).toContain(`server tool '${type}'`);
    }
    const anthropic = await setupKey({ spend_limit: { amount: "5", cycle: "total" }, request_shape: "anthropic" });
    const messages = await call("POST", "/v1/messages", {
      headers: { "x-api-key": anthropic.key, "anthropic-version": "2023-06-01" },
      body: {
        model: "claude-haiku-4-5-20251001",
        max_tokens: 100,
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "code_execution_20250825", name: "code_execution" }],
      },
    });
    expect(messages.status).toBe(400);
    expect(await messages.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: expect.stringContaining("container time") },
    });
    // Chat Completions' web search: its search models bill every search, and the answer's usage counts none.
    for (const body of [{ web_search_options: {} }, { model: "gpt-4o-search-preview" }]) {
      const refused = await chat(limited.key, { max_tokens: 100, ...body });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as any).error.message).toContain("web search in Chat Completions");
    }
    // A tool the gateway does not know the billing of (another provider's, or a newer one) is not guessed at.
    const unknown = await responses(limited.key, "x_search");
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as any).error.message).toContain("does not know how the provider bills");
    for (const tool of [{ type: "google_search" }, { google_search: {} }]) {
      const chatTool = await chat(limited.key, { max_tokens: 100, tools: [tool] });
      expect(chatTool.status).toBe(400);
    }
    // Per-call fees the catalog has no price for (o3-deep-research's web searches): neither held nor charged.
    const research = await call("POST", "/v1/responses", {
      headers: { authorization: `Bearer ${limited.key}` },
      body: { model: "o3-deep-research", input: "hi", max_output_tokens: 100, tools: [{ type: "web_search_preview" }] },
    });
    expect(research.status).toBe(400);
    expect(((await research.json()) as any).error.message).toContain("no price for those calls by 'o3-deep-research'");
    expect((await fakeRequests()).length).toBe(before);
    const unlimited = await setupKey();
    expect((await responses(unlimited.key, "code_interpreter")).status).toBe(200);
  });

  it("an operator model without a max output is refused on a spend-limited key without max_tokens", async () => {
    const put = await call("PUT", "/admin/models/house-model", {
      headers: { authorization: "Bearer test-admin-token" },
      body: { provider: "openai", input_price: "1", output_price: "2" },
    });
    expect(put.status).toBe(200);
    const limited = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    const refused = await chat(limited.key, { model: "house-model" });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as any).error.message).toContain("set max_tokens");
    expect((await chat(limited.key, { model: "house-model", max_tokens: 20_000 })).status).toBe(200);
    const unlimited = await setupKey();
    expect((await chat(unlimited.key, { model: "house-model" })).status).toBe(200);
    await call("DELETE", "/admin/models/house-model", { headers: { authorization: "Bearer test-admin-token" } });
  });
});
