import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { builtinCatalog } from "../../src/catalog/catalog.ts";
import { gatewayConfig } from "../../src/config.ts";
import { planAdmission, type RouteSpec } from "../../src/gateway/admission-plan.ts";
import { parseBody } from "../../src/gateway/request-body.ts";

/** The admission's plan is a pure function of the request: tested here without a KeyGuard, D1 or a clock. */
const CHAT: RouteSpec = { kind: "chat", shape: "openai", endpoint: "/v1/chat/completions" };
const plan = (json: Record<string, unknown>, headers = new Headers()) => {
  const bytes = new TextEncoder().encode(JSON.stringify(json)).buffer as ArrayBuffer;
  return planAdmission(
    gatewayConfig(env),
    CHAT,
    parseBody(bytes),
    bytes.byteLength,
    headers,
    builtinCatalog,
    Date.now(),
  );
};

describe("the admission plan", () => {
  it("asks a stream's provider for usage the client did not ask for, and says to strip it again", () => {
    const p = plan({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });
    expect(p.stripUsageChunk).toBe(true);
    expect(p.edits.stream_options).toEqual({ include_usage: true });
    expect(JSON.parse(p.edited ?? "{}").stream_options).toEqual({ include_usage: true });
    const asked = plan({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [] });
    expect(asked.stripUsageChunk).toBe(false);
    expect(asked.edited).toBeNull();
  });

  it("sends a provider-prefixed model upstream by its own id, and holds what it can bill", () => {
    const p = plan({ model: "openai/gpt-4o-mini", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    expect(p.edits.model).toBe("gpt-4o-mini");
    expect(p.target.kind).toBe("ready");
    expect(p.guardTarget).toMatchObject({ provider: "openai", pricedModel: "gpt-4o-mini", clampable: true });
    expect(p.bounds?.outputTokens).toBe(100);
    expect(p.prices?.rates.input_mtok).toBeGreaterThan(0);
  });

  it("leaves an unknown model for the guard to refuse", () => {
    const p = plan({ model: "no-such-model", messages: [] });
    expect(p.target.kind).toBe("unknown");
    expect(p.guardTarget).toBeNull();
    expect(p.bounds).toBeNull();
  });
});
