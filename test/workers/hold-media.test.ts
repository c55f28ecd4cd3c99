import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AgentRequest,
  anthropicImage,
  anthropicPdf,
  CLAUDE_CODE_BETAS,
  CONTEXT_1M,
  claudeCode,
  codex,
  responsesImage,
} from "../../scripts/lib/agent-requests.ts";
import { builtinCatalog, pricesAt } from "../../src/catalog/catalog.ts";
import { worstCaseNanos } from "../../src/catalog/pricing.ts";
import { holdBounds } from "../../src/gateway/hold.ts";
import { parseBody } from "../../src/gateway/request-body.ts";
import { parseUsd } from "../../src/lib/money.ts";
import type { RouteKind } from "../../src/providers/registry.ts";
import { base64, dataUrl, gif, jpeg, pdf, png, truncated, webp } from "../images.ts";
import { call, settled, setupKey } from "./helpers.ts";

/**
 * Holds that fit what coding agents send (docs/holds.md): `context-1m` raises the window but leaves text bounded by
 * its bytes; an image holds its family's documented tokens (its ceiling when the gateway cannot vouch for its
 * size); PDFs, files and server tools without a documented bound a call still hold the context window.
 */

const KIND: Record<AgentRequest["path"], RouteKind> = {
  "/v1/messages": "messages",
  "/v1/responses": "responses",
  "/v1/chat/completions": "chat",
};

/** The hold's bounds for a request as the gateway sizes them (hold.ts), and the hold they give. */
function hold(req: AgentRequest) {
  const bytes = new TextEncoder().encode(JSON.stringify(req.body));
  const body = parseBody(bytes.buffer as ArrayBuffer);
  const entry = builtinCatalog.resolve(body.model)!.entry;
  const bounds = holdBounds(KIND[req.path], body, bytes.byteLength, new Headers(req.headers), entry);
  const prices = pricesAt(entry, new Date())!;
  return { nanos: worstCaseNanos(bounds, prices), input: bounds.inputTokens, prices };
}

/** The hold the gateway names when it refuses the request on a key with one nano-dollar left. */
async function refusedHold(req: AgentRequest): Promise<{ nanos: number; message: string }> {
  const anthropic = req.path === "/v1/messages";
  const { key } = await setupKey({
    spend_limit: { amount: "0.000000001", cycle: "total" },
    clamp_output: false,
    ...(anthropic ? { request_shape: "anthropic" } : {}),
  });
  const auth: Record<string, string> = anthropic ? { "x-api-key": key } : { authorization: `Bearer ${key}` };
  const res = await call("POST", req.path, { headers: { ...auth, ...req.headers }, body: req.body });
  const message = ((await res.json()) as any).error.message as string;
  expect(res.status, message).toBe(anthropic ? 402 : 429);
  return { nanos: parseUsd(/worst-case cost \(\$([\d.]+)/.exec(message)![1]!)!, message };
}

const screenshot = base64(png(1568, 882, { idatBytes: 100_000 }));
/** A hold of the whole context window (and the few bytes a lowered output limit may add to the body). */
const expectWindow = (input: number, window: number, what = "") => {
  expect(input, what).toBeGreaterThanOrEqual(window);
  expect(input, what).toBeLessThan(window + 100);
};
const withBetas = (req: AgentRequest, ...betas: string[]): AgentRequest => ({
  ...req,
  headers: { ...req.headers, "anthropic-beta": [CLAUDE_CODE_BETAS, ...betas].join(",") },
});

describe("holds that fit coding agents", () => {
  it("Claude Code with context-1m holds what it holds without: its text is bounded by its bytes", async () => {
    const plain = await refusedHold(claudeCode());
    const million = await refusedHold(claudeCode({ betas: [CLAUDE_CODE_BETAS, CONTEXT_1M] }));
    // The measured case of the issue: $0.71 without the beta, $12.72 with it (the whole 1M window) before.
    expect(plain.nanos).toBeGreaterThan(650_000_000);
    expect(plain.nanos).toBeLessThan(750_000_000);
    expect(million.nanos).toBeLessThanOrEqual(plain.nanos * 1.1);
    expect(million.message).not.toContain("context window");
    // A body past 200k bytes with the beta is held at Sonnet's long-context prices (2× input, 1.5× output).
    const long = claudeCode({ betas: [CLAUDE_CODE_BETAS, CONTEXT_1M], historyBytes: 400_000 });
    const { input, prices } = hold(long);
    expect(input).toBeGreaterThan(400_000);
    expect(input).toBeLessThan(1_000_000);
    const at = (rate: unknown) =>
      typeof rate === "number" ? rate : (rate as { tiers: [number, number][] }).tiers.at(-1)![1];
    const rates = prices.rates;
    const expected = (input * at(rates.cache_write_1h_mtok) + 32_000 * at(rates.output_mtok)) / 1e6;
    expect(hold(long).nanos).toBe(Math.ceil(expected));
  });

  it("one pasted screenshot adds at most its family's per-image ceiling, not the context window", async () => {
    const plain = hold(claudeCode());
    const shot = hold(claudeCode({ attach: [anthropicImage(screenshot)] }));
    // Sonnet 4.5 (before Opus 4.7): at most 1,600 tokens an image; the image block's JSON around its data is text.
    expect(shot.input - plain.input).toBeGreaterThan(1_600);
    expect(shot.input - plain.input).toBeLessThanOrEqual(1_600 + 120);
    // Through the gateway: the screenshot's hold, and the same with context-1m.
    const viaGateway = await refusedHold(claudeCode({ attach: [anthropicImage(screenshot)] }));
    expect(viaGateway.nanos).toBe(shot.nanos);
    const both = await refusedHold(claudeCode({ attach: [anthropicImage(screenshot)], betas: [CONTEXT_1M] }));
    expect(both.nanos).toBeLessThanOrEqual(shot.nanos * 1.1);
    // Codex on gpt-5.4: 2,500 patches × 1.2 at most; a 1568×882 screenshot is 49 × 28 = 1,372 patches.
    const codexPlain = hold(codex());
    const codexShot = hold(codex({ attach: [responsesImage(`data:image/png;base64,${screenshot}`)] }));
    expect(codexShot.input - codexPlain.input).toBeGreaterThanOrEqual(Math.ceil(1_372 * 1.2));
    expect(codexShot.input - codexPlain.input).toBeLessThanOrEqual(Math.ceil(1_372 * 1.2) + 120);
  });

  it("images hold their size per family, the ceiling when unseen; detail low is the base on tile models", () => {
    const chat = (model: string, parts: unknown[]): AgentRequest => ({
      path: "/v1/chat/completions",
      headers: {},
      body: { model, max_tokens: 10, messages: [{ role: "user", content: [{ type: "text", text: "x" }, ...parts] }] },
    });
    const part = (url: string, detail?: string) => ({ type: "image_url", image_url: { url, detail } });
    /** The part's hold less its JSON text, plus the inline data the hold took off that text. */
    const imageTokens = (model: string, p: ReturnType<typeof part>) => {
      const added = hold(chat(model, [p])).input - hold(chat(model, [])).input;
      const inline = p.image_url.url.startsWith("data:") ? p.image_url.url.length : 0;
      return added - (JSON.stringify(p).length + 1) + inline;
    };
    const small = dataUrl(png(512, 512));
    const url = "https://example.com/a.png";
    // gpt-4o: 512×512 is one tile (85 + 170); by URL 85 + 8 × 170; low detail 85 whatever the size.
    expect(imageTokens("gpt-4o", part(small))).toBe(255);
    expect(imageTokens("gpt-4o", part(url))).toBe(85 + 8 * 170);
    expect(imageTokens("gpt-4o", part(url, "low"))).toBe(85);
    expect(imageTokens("gpt-4o", part(dataUrl(png(2048, 4096))))).toBe(85 + 6 * 170);
    // gpt-4o-mini bills the same tiles at 2,833 + 5,667 each.
    expect(imageTokens("gpt-4o-mini", part(small))).toBe(2_833 + 5_667);
    // gpt-4.1-mini: 16 × 16 patches × 1.62, detail or not; by URL its 1,536-patch ceiling.
    expect(imageTokens("gpt-4.1-mini", part(small, "low"))).toBe(Math.ceil(256 * 1.62));
    expect(imageTokens("gpt-4.1-mini", part(url))).toBe(Math.ceil(1_536 * 1.62));
    // Images whose ceilings pass the window are held at the window: a longer prompt is refused, not billed.
    expectWindow(hold(chat("gpt-4o-mini", Array(5).fill(part(url)))).input, 128_000);
    // A family with no documented rule (gpt-5.2) holds the context window.
    expect(hold(chat("gpt-5.2", [part(small)])).input).toBeGreaterThanOrEqual(400_000);
  });

  it("crafted images hold the family's ceiling, never less", () => {
    const crafted: Record<string, Uint8Array> = {
      "small header, large data (PNG)": png(8, 8, { idatBytes: 500_000 }),
      "small header, large data (JPEG)": jpeg(8, 8, { scanBytes: 500_000 }),
      "small header, large data (WebP)": webp(16, 16, { bitstreamBytes: 500_000 }),
      "size stated twice": png(16, 16, { secondSize: [4000, 4000] }),
      "truncated header": truncated(png(1000, 1000), 20),
      "truncated chunk": truncated(png(1000, 1000), 200),
      "animated GIF": gif(32, 32, { frames: 5 }),
      APNG: png(32, 32, { animated: true }),
      "animated WebP": webp(32, 32, { canvas: [32, 32], animated: true }),
      "huge dimensions": png(60_000, 60_000, { idatBytes: 1_000 }),
      "not an image": new TextEncoder().encode("%PDF-1.4 pretending"),
    };
    for (const [model, ceiling] of [
      ["claude-haiku-4-5", 1_600],
      ["claude-opus-4-7", 5_000],
    ] as const) {
      const base = hold(claudeCode({ model })).input;
      for (const [name, bytes] of Object.entries(crafted)) {
        const data = base64(bytes);
        const input = hold(claudeCode({ model, attach: [anthropicImage(data)] })).input;
        // The block's JSON beyond its data is about 80 bytes of text.
        expect(input - base, `${model}: ${name}`).toBeGreaterThanOrEqual(ceiling);
        expect(input - base, `${model}: ${name}`).toBeLessThan(ceiling + 100);
      }
      // Base64 a lenient decoder reads differently (a line break inside) is not vouched for either.
      const broken = `${screenshot.slice(0, 100)}\n${screenshot.slice(100)}`;
      expect(hold(claudeCode({ model, attach: [anthropicImage(broken)] })).input - base).toBeGreaterThanOrEqual(
        ceiling,
      );
    }
  });

  it("a PDF holds the context window whatever page count it claims; a plain-text document its bytes", () => {
    const base = hold(claudeCode()).input;
    for (const doc of [pdf(3), pdf(40, { claims: 1 }), pdf(1, { claims: 1_000 })]) {
      const req = claudeCode({ attach: [anthropicPdf(base64(doc))] });
      expectWindow(hold(req).input, 200_000);
      expectWindow(hold(withBetas(req, CONTEXT_1M)).input, 1_000_000);
    }
    const text = { type: "document", source: { type: "text", media_type: "text/plain", data: "notes ".repeat(500) } };
    expect(hold(claudeCode({ attach: [text] })).input - base).toBeLessThan(3_200);
  });

  it("each beta: context-1m raises only the window; betas that fetch content hold it; others add nothing", () => {
    const base = claudeCode({ betas: [] });
    const bytes = hold(base).input;
    for (const beta of [
      CLAUDE_CODE_BETAS,
      "interleaved-thinking-2025-05-14",
      "fine-grained-tool-streaming-2025-05-14",
      "token-efficient-tools-2025-02-19",
      "output-128k-2025-02-19",
      "prompt-caching-2024-07-31",
      CONTEXT_1M,
    ]) {
      expect(hold(withBetas(base, beta)).input - bytes, beta).toBeLessThan(200);
    }
    for (const beta of [
      "files-api-2025-04-14",
      "mcp-client-2025-04-04",
      "web-fetch-2025-09-10",
      "web-search-2025-03-05",
      "code-execution-2025-08-25",
      "skills-2025-10-02",
    ]) {
      expectWindow(hold(withBetas(base, beta)).input, 200_000, beta);
      expectWindow(hold(withBetas(base, beta, CONTEXT_1M)).input, 1_000_000, `${beta} + 1M`);
    }
  });

  it("server tools: a web fetch is held at max_uses × max_content_tokens; web search at the window", async () => {
    const base = hold(claudeCode()).input;
    const fetch = { type: "web_fetch_20250910", name: "web_fetch", max_uses: 3, max_content_tokens: 10_000 };
    const fetched = hold(claudeCode({ serverTools: [fetch] })).input;
    // 3 × (10,000 × 1.1 + 1,000), the definition's bytes and its schema-less tool allowance.
    expect(fetched - base).toBeGreaterThan(36_000 + 1_024);
    expect(fetched - base).toBeLessThan(36_000 + 1_024 + 200);
    const unbounded = { type: "web_fetch_20250910", name: "web_fetch", max_uses: 3 };
    expectWindow(hold(claudeCode({ serverTools: [unbounded] })).input, 200_000);
    const search = { type: "web_search_20250305", name: "web_search", max_uses: 5 };
    const refused = await refusedHold(claudeCode({ serverTools: [search] }));
    expect(refused.message).toContain("no documented size a search");
    expect(refused.message).toContain("context window of 200000 tokens");
  });
});

/** One generated request's image, in the route's own shape. */
const IMAGE = fc.oneof(
  fc.record({
    kind: fc.constantFrom("png", "jpeg", "gif", "webp"),
    width: fc.integer({ min: 1, max: 5_000 }),
    height: fc.integer({ min: 1, max: 5_000 }),
  }),
  fc.record({
    kind: fc.constantFrom(
      "lying-png",
      "lying-jpeg",
      "lying-webp",
      "two-sizes",
      "animated-gif",
      "apng",
      "truncated",
      "huge",
      "url",
      "stray-newline",
    ),
    width: fc.constant(16),
    height: fc.constant(16),
  }),
);

function imageBytes(i: { kind: string; width: number; height: number }): Uint8Array | null {
  const { width: w, height: h } = i;
  switch (i.kind) {
    case "png":
      return png(w, h, { idatBytes: 200 });
    case "jpeg":
      return jpeg(w, h, { scanBytes: 200 });
    case "gif":
      return gif(Math.min(w, 2_000), Math.min(h, 2_000), { dataBytes: 64 });
    case "webp":
      return webp(Math.min(w, 16_000), Math.min(h, 16_000), { bitstreamBytes: 200 });
    case "lying-png":
      return png(8, 8, { idatBytes: 200_000 });
    case "lying-jpeg":
      return jpeg(8, 8, { scanBytes: 200_000 });
    case "lying-webp":
      return webp(8, 8, { bitstreamBytes: 200_000 });
    case "two-sizes":
      return jpeg(16, 16, { secondSize: [4_000, 3_000] });
    case "animated-gif":
      return gif(64, 64, { frames: 4 });
    case "apng":
      return png(64, 64, { animated: true });
    case "truncated":
      return truncated(jpeg(3_000, 2_000), 150);
    case "huge":
      return png(100_000, 100_000, { idatBytes: 500 });
    default:
      return null;
  }
}

describe("holds bound what the provider can bill: crafted images, PDFs and betas (property)", () => {
  it("the fake provider, billing each request's documented worst case, never bills past its hold", async () => {
    const { key: openaiKey, id: openaiId } = await setupKey({ name: "media-openai" });
    const { key: anthropicKey, id: anthropicId } = await setupKey({
      name: "media-anthropic",
      request_shape: "anthropic",
    });
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<"messages" | "chat" | "responses">("messages", "chat", "responses"),
        fc.nat(),
        fc.array(IMAGE, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.subarray(["context-1m-2025-08-07", "files-api-2025-04-14", "interleaved-thinking-2025-05-14"]),
        fc.boolean(),
        fc.constantFrom("auto", "low", "high"),
        async (route, pick, images, withPdf, betas, stream, detail) => {
          const models = {
            messages: ["claude-haiku-4-5-20251001", "claude-opus-4-7"],
            chat: ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-5.2"],
            responses: ["gpt-4o-mini", "gpt-5.4", "gpt-5.5"],
          }[route];
          const model = models[pick % models.length]!;
          const entry = builtinCatalog.resolve(model)!.entry;
          // Betas travel as Anthropic's header: only the Messages requests send them.
          const million = route === "messages" && betas.includes(CONTEXT_1M);
          const window = million ? Math.max(1_000_000, entry.contextWindow!) : entry.contextWindow!;
          const text = `Look [[fault:worst]] [maxout:${entry.maxOutputTokens}] [pulled:${window}]`;
          const parts: unknown[] = [];
          for (const image of images) {
            const bytes = imageBytes(image);
            const url = bytes ? dataUrl(bytes) : "https://example.com/screen.png";
            const b64 = bytes ? base64(bytes) : null;
            const data = image.kind === "stray-newline" && b64 ? `${b64.slice(0, 8)}\n${b64.slice(8)}` : b64;
            if (route === "messages") {
              parts.push(data ? anthropicImage(data) : { type: "image", source: { type: "url", url } });
            } else if (route === "chat") {
              parts.push({ type: "image_url", image_url: { url, detail } });
            } else {
              parts.push(responsesImage(url, detail));
            }
          }
          if (withPdf && route === "messages") parts.push(anthropicPdf(base64(pdf(12, { claims: 1 }))));
          const body: Record<string, unknown> = { model, stream, max_tokens: 64 };
          const headers: Record<string, string> = {};
          if (route === "messages") {
            body.messages = [{ role: "user", content: [...parts, { type: "text", text }] }];
            headers["anthropic-version"] = "2023-06-01";
            if (betas.length) headers["anthropic-beta"] = betas.join(",");
          } else if (route === "chat") {
            body.messages = [{ role: "user", content: [{ type: "text", text }, ...parts] }];
          } else {
            delete body.max_tokens;
            body.max_output_tokens = 64;
            body.input = [{ role: "user", content: [{ type: "input_text", text }, ...parts] }];
          }
          const auth: Record<string, string> =
            route === "messages" ? { "x-api-key": anthropicKey } : { authorization: `Bearer ${openaiKey}` };
          const res = await call("POST", `/v1/${route === "chat" ? "chat/completions" : route}`, {
            headers: { ...auth, ...headers },
            body,
          });
          const answer = await res.text();
          expect(res.status, answer).toBe(200);
          sent++;
        },
      ),
      { numRuns: 120 },
    );
    const rows = [...(await settled(openaiId)).ledger, ...(await settled(anthropicId)).ledger];
    expect(rows).toHaveLength(sent);
    expect(rows.filter((r) => r.costNanos <= 0)).toEqual([]);
    // Every bill within its hold: no row needed the overage flag.
    expect(rows.filter((r) => r.overage).map((r) => `${r.model}: ${r.costNanos}`)).toEqual([]);
  }, 240_000);
});
