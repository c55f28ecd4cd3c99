import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/** The official `openai` client with only baseURL and apiKey changed. */
describe("openai SDK through Spendgate", () => {
  let client: OpenAI;
  let calls = 0;
  const counting: typeof fetch = (input, init) => {
    calls++;
    return fetch(input, init);
  };
  beforeAll(async () => {
    const { key } = await newSpendKey({ rate_limit: { rpm: 600 } });
    client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key, fetch: counting });
  });

  it("chat completions, JSON and streamed (with the SDK's stream helpers)", async () => {
    const res = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(res.choices[0]!.message.content).toContain("hello");
    expect(res.usage?.completion_tokens).toBe(12);
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: "Say hello" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text.split(" ")).toHaveLength(12);
    const withUsage = client.chat.completions.stream({
      model: "gpt-4o-mini",
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
    });
    const final = await withUsage.finalChatCompletion();
    expect(final.usage?.completion_tokens).toBe(12);
  });

  it("responses, JSON and streamed; embeddings; models", async () => {
    const r = await client.responses.create({ model: "gpt-4o-mini", input: "hello" });
    expect(r.output_text.split(" ")).toHaveLength(12);
    const s = client.responses.stream({ model: "gpt-4o-mini", input: "hello" });
    const done = await s.finalResponse();
    expect(done.usage?.output_tokens).toBe(12);
    const e = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(e.data).toHaveLength(2);
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toContain("gpt-4o-mini");
  });

  it("raises the SDK's own error classes", async () => {
    const bad = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: "sk-sg-wrong", maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const limited = await newSpendKey({ allowed_models: ["gpt-4o-mini"] });
    const c2 = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: limited.key, maxRetries: 0 });
    await expect(c2.chat.completions.create({ model: "gpt-4o", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
    await expect(c2.chat.completions.create({ model: "nope-1", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    await expect(
      c2.chat.completions.create({ model: "gpt-4o-mini", messages: [], max_tokens: -1 }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("does not retry terminal limit errors (x-should-retry: false), but does retry rate limits", async () => {
    for (const limits of [
      { request_limit: { count: 1, cycle: "daily" } },
      { spend_limit: { amount: "0.000001", cycle: "total" } },
    ]) {
      const { key } = await newSpendKey(limits);
      let n = 0;
      const c = new OpenAI({
        baseURL: `${gatewayUrl()}/v1`,
        apiKey: key,
        maxRetries: 3,
        fetch: (i, init) => (n++, fetch(i, init)),
      });
      if ("request_limit" in limits) await c.chat.completions.create({ model: "gpt-4o-mini", messages: [] });
      n = 0;
      const err = await c.chat.completions.create({ model: "gpt-4o-mini", messages: [] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toMatch(
        /request_limit_exceeded|spend_limit_exceeded/,
      );
      expect(n).toBe(1);
    }
    const { key } = await newSpendKey({ rate_limit: { rpm: 120, burst: 1 } });
    let n = 0;
    const c = new OpenAI({
      baseURL: `${gatewayUrl()}/v1`,
      apiKey: key,
      maxRetries: 2,
      fetch: (i, init) => (n++, fetch(i, init)),
    });
    await Promise.all([
      c.chat.completions.create({ model: "gpt-4o-mini", messages: [] }),
      c.chat.completions.create({ model: "gpt-4o-mini", messages: [] }),
    ]);
    expect(n).toBeGreaterThan(2);
    expect(calls).toBeGreaterThan(0);
  });
});
