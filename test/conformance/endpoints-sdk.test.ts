import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/** The official clients' own methods for the endpoints beyond chat, through a spend key. */
describe("openai SDK: models, legacy completions, moderations", () => {
  it("models.retrieve, completions.create (JSON, stream, suffix) and moderations.create", async () => {
    const { key } = await newSpendKey();
    const client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key });
    const model = await client.models.retrieve("gpt-3.5-turbo-instruct");
    expect(model).toMatchObject({ id: "gpt-3.5-turbo-instruct", object: "model", owned_by: "openai" });
    await expect(client.models.retrieve("no-such-model")).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const done = await client.completions.create({
      model: "gpt-3.5-turbo-instruct",
      prompt: "function add(a, b) {",
      suffix: "}",
      max_tokens: 6,
    });
    expect(done.choices[0]?.text.split(" ")).toHaveLength(6);
    expect(done.usage?.completion_tokens).toBe(6);
    const stream = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "hi", stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text.split(" ")).toHaveLength(12);

    const moderation = await client.moderations.create({ input: "a calm sentence" });
    expect(moderation.results[0]?.flagged).toBe(false);
  });
});

describe("@anthropic-ai/sdk: models", () => {
  it("models.list auto-pages and models.retrieve answers Anthropic's model object", async () => {
    const { key } = await newSpendKey({ request_shape: "anthropic" });
    const client = new Anthropic({ baseURL: gatewayUrl(), apiKey: key });
    const ids: string[] = [];
    for await (const m of client.models.list({ limit: 2 })) ids.push(m.id);
    expect(ids.length).toBeGreaterThan(4);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => id.startsWith("claude"))).toBe(true);
    const one = await client.models.retrieve("claude-haiku-4-5-20251001");
    expect(one).toMatchObject({ type: "model", id: "claude-haiku-4-5-20251001", display_name: "Claude Haiku 4.5" });
    await expect(client.models.retrieve("gpt-4o-mini")).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });
});
