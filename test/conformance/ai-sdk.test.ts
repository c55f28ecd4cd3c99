import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/** The Vercel AI SDK with only the provider's baseURL and apiKey changed. */
describe("Vercel AI SDK through Spendgate", () => {
  it("@ai-sdk/openai: generateText and streamText (Responses and Chat APIs)", async () => {
    const { key } = await newSpendKey();
    const openai = createOpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key });
    const a = await generateText({ model: openai("gpt-4o-mini"), prompt: "Say hello" });
    expect(a.text.split(" ")).toHaveLength(12);
    expect(a.usage.outputTokens).toBe(12);
    const b = streamText({ model: openai.chat("gpt-4o-mini"), prompt: "Say hello" });
    let text = "";
    for await (const t of b.textStream) text += t;
    expect(text.split(" ")).toHaveLength(12);
    expect((await b.usage).outputTokens).toBe(12);
  });

  it("@ai-sdk/anthropic: generateText and streamText", async () => {
    const { key } = await newSpendKey({ request_shape: "anthropic" });
    const anthropic = createAnthropic({ baseURL: `${gatewayUrl()}/v1`, apiKey: key });
    const a = await generateText({ model: anthropic("claude-sonnet-4-20250514"), prompt: "Say hello" });
    expect(a.usage.outputTokens).toBe(12);
    const b = streamText({ model: anthropic("claude-sonnet-4-20250514"), prompt: "Say hello" });
    let text = "";
    for await (const t of b.textStream) text += t;
    expect(text.split(" ")).toHaveLength(12);
  });
});
