import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtinCatalog, pricesAt } from "../../src/catalog/catalog.ts";
import { type WorstCase, worstCaseNanos } from "../../src/catalog/pricing.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { parseUsd } from "../../src/lib/money.ts";
import { call, chat, fakeRequests, json, mgmt, settled, setupKey } from "./helpers.ts";

/**
 * The hold must bound everything the provider can bill. The fake provider bills the worst case each request
 * allows ([[fault:worst]]): the largest output field it reads (or the model's max), the body's bytes plus a
 * tool-use prompt, or the whole context window when the request pulls content in. Fired concurrently, recorded
 * spend must never pass the limit and no row may need the overage flag — and the cap must not be kept by
 * refusing: every request that fits beside the others' holds is served, and a refusal is the spend limit's.
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

/** The output-limit fields each route's provider reads (README, "How holds are sized" › Output). */
const READS: Record<Route, string[]> = {
  chat: ["max_tokens", "max_completion_tokens"],
  responses: ["max_output_tokens"],
  messages: ["max_tokens"],
};
/** README: 1,024 tokens when tools are sent, 1,024 more per schema-less tool. */
const TOOL_PROMPT_TOKENS = 1_024;
/** README: a per-call tool without its own limit is held at the gateway's default of 10 calls. */
const TOOL_CALLS = 10;
/** README: "the few bytes the gateway may add to the body" (a lowered output limit, tool-call limits). */
const ADDED_BYTES = 128;

/**
 * The band the README's rules put a generated request's hold in, worked out here from the request itself (not by
 * `hold.ts`): at least its body's bytes (plus the tool allowance) at the dearest input rate with its output bound
 * and per-call fees; at most that with the whole context window as input, when the request can pull content in,
 * plus the bytes the gateway may write into the body. Null for what a spend-limited key refuses whatever its
 * budget (web search in Chat Completions bills searches its usage does not report).
 */
function holdBand(route: Route, feature: Feature, fields: Record<string, number>, n: number, body: object) {
  if (route === "chat" && (feature === "server_tool" || feature === "state")) return null;
  const entry = builtinCatalog.resolve(MODEL[route])!.entry;
  const sent = Object.values(fields);
  const largest = sent.length ? Math.max(...sent) : 0;
  // The largest field sent; at least the model's max when the provider's own field is missing.
  const readsOne = READS[route].some((f) => fields[f] !== undefined);
  const output = readsOne ? largest : Math.max(largest, entry.maxOutputTokens!);
  const tools = ((body as { tools?: { type?: unknown }[] }).tools ?? []).map((t) => t.type);
  const schemaless = tools.filter((t) => typeof t === "string" && t !== "function" && t !== "custom").length;
  const bodyInput =
    new TextEncoder().encode(JSON.stringify(body)).byteLength +
    (tools.length ? TOOL_PROMPT_TOKENS * (1 + schemaless) : 0);
  const pulls = PULLS.includes(feature) && !(feature === "beta" && route !== "messages");
  const worst = (inputTokens: number): WorstCase => ({
    inputTokens,
    outputTokens: output,
    choices: route === "chat" ? n : 1,
    extraOutputTokens: 0,
    counts: feature === "server_tool" ? { web_searches: TOOL_CALLS } : {},
    serviceTier: null,
  });
  const prices = pricesAt(entry, new Date())!;
  const most = (pulls ? Math.max(bodyInput, entry.contextWindow!) : bodyInput) + ADDED_BYTES;
  return { low: worstCaseNanos(worst(bodyInput), prices), high: worstCaseNanos(worst(most), prices) };
}

/** USD with all nine decimals, so a limit can sit a nano-dollar either side of a hold. */
const usd = (nanos: number) => `${Math.floor(nanos / 1e9)}.${String(nanos % 1e9).padStart(9, "0")}`;

type Request = ReturnType<typeof request>;
const send = (route: Route, key: string, req: Request) =>
  call("POST", req.path, {
    headers: { ...(route === "messages" ? { "x-api-key": key } : { authorization: `Bearer ${key}` }), ...req.headers },
    body: req.body,
  });

/** A spend refusal in the key's dialect (OpenAI: 429 spend_limit_exceeded; Anthropic: 402 billing_error). */
function expectSpendRefusal(route: Route, status: number, text: string, ctx: string) {
  expect(status, `${ctx}: ${text}`).toBe(route === "messages" ? 402 : 429);
  const body = JSON.parse(text);
  if (route === "messages") expect(body.error.type, ctx).toBe("billing_error");
  else expect(body.error.code, ctx).toBe("spend_limit_exceeded");
  expect(body.details.limit, ctx).toBe("spend");
  return body.error.message as string;
}

/** The hold a refusal names ("This request's worst-case cost ($…) does not fit"), in nano-dollars. */
const namedHold = (message: string) => {
  const usdText = /worst-case cost \(\$([\d.]+)/.exec(message)?.[1];
  return usdText === undefined ? null : parseUsd(usdText);
};

describe("holds bound what the provider can bill", () => {
  it("concurrent worst-case requests: what fits is served, only what does not is refused, the cap holds", async () => {
    // A key with a one-nano-dollar limit refuses every metered request and names its hold: the probe that tells
    // this property, before each run, what the request holds (checked against the README's band).
    const probes = {
      openai: (await setupKey({ spend_limit: { amount: "0.000000001", cycle: "total" }, clamp_output: false })).key,
      anthropic: (
        await setupKey({
          request_shape: "anthropic",
          spend_limit: { amount: "0.000000001", cycle: "total" },
          clamp_output: false,
        })
      ).key,
    };
    let run = 0;
    const seen = { allFit: 0, someFit: 0, noneFit: 0 };
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
        fc.integer({ min: 2, max: 6 }),
        // The budget: small fixed totals (the original property), or a share of what all the concurrent
        // requests' holds need together — from a tenth (most refused) to three times (every one fits).
        fc.oneof(
          fc.record({ cents: fc.integer({ min: 1, max: 150 }) }),
          fc.record({ percent: fc.integer({ min: 10, max: 300 }) }),
        ),
        fc.boolean(),
        async (route, feature, fields, n, stream, concurrent, budget, clamp) => {
          const req = request(route, feature, fields, n, stream);
          const band = holdBand(route, feature, fields, n, req.body);
          let ctx = `${route} ${feature} ${JSON.stringify(fields)} n=${n} ×${concurrent}`;

          // Step 1: the request's hold, as the gateway names it to the probe key.
          let hold = 0;
          if (band) {
            const probe = await send(route, route === "messages" ? probes.anthropic : probes.openai, req);
            const named = namedHold(expectSpendRefusal(route, probe.status, await probe.text(), `${ctx} (probe)`));
            expect(named, `${ctx}: the probe's refusal names no hold`).not.toBeNull();
            hold = named!;
            expect(hold, `${ctx}: hold outside the README's band ${band.low}–${band.high}`).toBeGreaterThanOrEqual(
              band.low,
            );
            expect(hold, `${ctx}: hold outside the README's band ${band.low}–${band.high}`).toBeLessThanOrEqual(
              band.high,
            );
          }

          // Step 2: the same request, fired concurrently at a key with the generated budget.
          const limitNanos =
            "cents" in budget
              ? budget.cents * 10_000_000
              : Math.ceil(((hold || 1e9) * concurrent * budget.percent) / 100);
          ctx += ` limit=${usd(limitNanos)} hold=${usd(hold)} clamp=${clamp}`;
          const { key, id } = await setupKey({
            name: `bound-${run++}`,
            request_shape: route === "messages" ? "anthropic" : "openai",
            spend_limit: { amount: usd(limitNanos), cycle: "total" },
            clamp_output: clamp,
          });
          const answers = await Promise.all(
            Array.from({ length: concurrent }, async () => {
              const res = await send(route, key, req);
              const text = await res.text();
              return { status: res.status, clamped: res.headers.has("x-spendgate-output-limit"), text };
            }),
          );
          const served = answers.filter((a) => a.status === 200);
          const statuses = answers.map((a) => a.status).join(",");

          // Step 3: who was served and who refused, against what fits.
          if (!band) {
            // Refused whatever the budget, before any provider call: a 400 that names why.
            for (const a of answers) {
              expect(a.status, ctx).toBe(400);
              expect(a.text, ctx).toContain("web search in Chat Completions");
            }
          } else {
            // Every refusal is the spend limit's, and names this request's hold.
            for (const a of answers.filter((x) => x.status !== 200)) {
              const named = namedHold(expectSpendRefusal(route, a.status, a.text, ctx));
              if (named !== null) expect(named, ctx).toBe(hold);
            }
            // Each answer costs at most its hold, so however the admissions interleave, the first
            // floor(limit / hold) of them fit beside the others' holds: those must be served.
            const fit = Math.min(concurrent, Math.floor(limitNanos / hold));
            expect(served.length, `${ctx}: ${statuses}`).toBeGreaterThanOrEqual(fit);
            // When all of them fit at once, every one is served as sent (no output limit lowered).
            if (fit === concurrent) expect(answers.filter((a) => a.clamped).length, ctx).toBe(0);
            // A hold larger than the whole limit is refused — unless the key lowers the output limit instead.
            if (hold > limitNanos) {
              if (clamp) for (const a of served) expect(a.clamped, ctx).toBe(true);
              else expect(served.length, `${ctx}: ${statuses}`).toBe(0);
            }
            seen[fit === concurrent ? "allFit" : fit > 0 ? "someFit" : "noneFit"]++;
          }

          // Step 4: the hard cap — nothing held, nothing past the limit, nothing billed past a hold.
          const rows = await ledgerOf(id);
          const snap = await keyGuard(env, id).snapshot();
          expect(snap.openHolds, ctx).toBe(0);
          expect(snap.currentSpendNanos, ctx).toBeLessThanOrEqual(limitNanos);
          expect(
            rows.filter((r) => r.overage),
            ctx,
          ).toEqual([]);
          expect(
            rows.reduce((sum, r) => sum + r.costNanos, 0),
            ctx,
          ).toBe(snap.totalSpendNanos);
          expect(rows.length, ctx).toBe(served.length);
        },
      ),
      { numRuns: 80 },
    );
    // The generator must reach every region, or the property proves less than it says.
    expect(
      Object.values(seen).every((count) => count > 0),
      JSON.stringify(seen),
    ).toBe(true);
  }, 300_000);

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
    // A file by id may bill up to 128k input tokens ($0.0192) + 100 output: more than what is left. (An image
    // by URL holds its family's per-image ceiling instead: hold-media.test.ts.)
    const content = [
      { type: "text", text: "What is this?" },
      { type: "file", file: { file_id: "file-abc" } },
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
