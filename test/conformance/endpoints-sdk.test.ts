import Anthropic from "@anthropic-ai/sdk";
import OpenAI, { toFile } from "openai";
import { describe, expect, inject, it } from "vitest";
import { wav } from "../audio.ts";
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

describe("openai SDK: images and audio", () => {
  it("images.generate, audio.transcriptions.create (a real WAV), audio.speech.create (provider's bytes)", async () => {
    const { key, id, walletKey } = await newSpendKey({ spend_limit: { amount: "5", cycle: "total" } });
    const client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key });
    const image = await client.images.generate({ model: "dall-e-3", prompt: "a lighthouse", size: "1024x1024" });
    expect(image.data).toHaveLength(1);
    const transcript = await client.audio.transcriptions.create({
      model: "whisper-1",
      file: await toFile(wav(2, 440), "tone.wav", { type: "audio/wav" }),
    });
    expect(transcript.text.length).toBeGreaterThan(0);
    const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "Spendgate speaks" });
    const bytes = new Uint8Array(await speech.arrayBuffer());
    const fromProvider = await fetch(`${inject("fakeUrl")}/openai/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tts-1", voice: "alloy", input: "Spendgate speaks" }),
    });
    expect(bytes).toEqual(new Uint8Array(await fromProvider.arrayBuffer()));
    // $0.04 (one standard 1024² image) + 2 s × $0.0001 + 16 characters × $0.000015.
    const view = await (
      await fetch(`${gatewayUrl()}/v1/spend_keys/${id}`, { headers: { authorization: `Bearer ${walletKey}` } })
    ).json();
    expect(view.total_spend).toBe("0.04044");
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
