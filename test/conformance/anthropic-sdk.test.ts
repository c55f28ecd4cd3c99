import Anthropic from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/** The official `@anthropic-ai/sdk` client with only baseURL and apiKey changed. */
describe("@anthropic-ai/sdk through Spendgate", () => {
  it("messages JSON, streaming helpers and count_tokens", async () => {
    const { key } = await newSpendKey({ request_shape: "anthropic" });
    const client = new Anthropic({ baseURL: gatewayUrl(), apiKey: key });
    const msg = await client.messages.create({
      model: "claude-sonnet-4-20250514",
      max_tokens: 100,
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(msg.content[0]!.type).toBe("text");
    expect(msg.usage.output_tokens).toBe(12);
    const stream = client.messages.stream({
      model: "claude-sonnet-4-20250514",
      max_tokens: 100,
      messages: [{ role: "user", content: "Say hello" }],
    });
    let text = "";
    stream.on("text", (t) => (text += t));
    const final = await stream.finalMessage();
    expect(final.usage.output_tokens).toBe(12);
    expect(text.split(" ")).toHaveLength(12);
    const count = await client.messages.countTokens({
      model: "claude-sonnet-4-20250514",
      messages: [{ role: "user", content: "count me" }],
    });
    expect(count.input_tokens).toBe(5);
  });

  it("raises the SDK's own error classes and does not retry terminal ones", async () => {
    const bad = new Anthropic({ baseURL: gatewayUrl(), apiKey: "sk-sg-wrong", maxRetries: 0 });
    await expect(
      bad.messages.create({ model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const paused = await newSpendKey({ request_shape: "anthropic", status: "paused" });
    const p = new Anthropic({ baseURL: gatewayUrl(), apiKey: paused.key, maxRetries: 0 });
    await expect(
      p.messages.create({ model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);

    const capped = await newSpendKey({
      request_shape: "anthropic",
      spend_limit: { amount: "0.000001", cycle: "total" },
    });
    let n = 0;
    const c = new Anthropic({
      baseURL: gatewayUrl(),
      apiKey: capped.key,
      maxRetries: 3,
      fetch: (i, init) => (n++, fetch(i, init)),
    });
    const err = await c.messages
      .create({ model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(402);
    expect(n).toBe(1);

    const quota = await newSpendKey({ request_shape: "anthropic", request_limit: { count: 1, cycle: "total" } });
    let m = 0;
    const q = new Anthropic({
      baseURL: gatewayUrl(),
      apiKey: quota.key,
      maxRetries: 3,
      fetch: (i, init) => (m++, fetch(i, init)),
    });
    await q.messages.create({ model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] });
    m = 0;
    await expect(
      q.messages.create({ model: "claude-sonnet-4-20250514", max_tokens: 5, messages: [] }),
    ).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    expect(m).toBe(1);
  });
});
