import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { formatUsd } from "../../src/lib/money.ts";
import { wav } from "../audio.ts";
import { call, callWith, direct, fakeRequests, json, lastFakeRequest, mgmt, settled, setupKey } from "./helpers.ts";

const post = (key: string, path: string, body: unknown) =>
  call("POST", path, { headers: { authorization: `Bearer ${key}` }, body });
const lastRow = async (id: string) => (await settled(id)).ledger.at(-1);

async function transcribe(key: string, fields: Record<string, string>, audio = wav(3)) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  form.set("file", new File([audio], "speech.wav", { type: "audio/wav" }));
  return sendForm(key, form);
}

async function sendForm(key: string, form: FormData) {
  const request = new Request("http://x/", { method: "POST", body: form });
  const bytes = new Uint8Array(await request.arrayBuffer());
  const contentType = request.headers.get("content-type") ?? "";
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha = [...digest].map((x) => x.toString(16).padStart(2, "0")).join("");
  const res = await exports.default.fetch(
    new Request("http://gateway.test/v1/audio/transcriptions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": contentType },
      body: bytes,
    }),
  );
  return { res, sha };
}

describe("images", () => {
  it("DALL·E is charged per image at its size and quality; gpt-image-1 by its reported tokens", async () => {
    const { key, id } = await setupKey({ spend_limit: { amount: "5", cycle: "total" } });
    const hd = await post(key, "/v1/images/generations", {
      model: "dall-e-3",
      prompt: "a cat",
      size: "1792x1024",
      quality: "hd",
    });
    expect((await json(hd, 200)).data).toHaveLength(1);
    expect(hd.headers.get("x-spendgate-cost")).toBe("0.12");
    expect(await lastRow(id)).toMatchObject({ units: 1, costNanos: 120_000_000, endpoint: "/v1/images/generations" });
    const three = await post(key, "/v1/images/generations", {
      model: "dall-e-2",
      prompt: "a dog",
      n: 3,
      size: "512x512",
    });
    expect(three.status).toBe(200);
    expect(await lastRow(id)).toMatchObject({ units: 3, costNanos: 54_000_000 });
    const odd = await post(key, "/v1/images/generations", { model: "dall-e-3", prompt: "x", size: "640x480" });
    expect(odd.status).toBe(400);
    expect(((await odd.json()) as any).error.message).toContain("no price for size '640x480'");

    const img = await json(
      await post(key, "/v1/images/generations", { model: "gpt-image-1", prompt: "a red fox", n: 2 }),
      200,
    );
    const u = img.usage;
    // gpt-image-1: text input $5, image output $40 per 1M tokens.
    const cost = Math.ceil(
      (u.input_tokens_details.text_tokens * 5_000_000_000 + u.output_tokens * 40_000_000_000) / 1e6,
    );
    expect(await lastRow(id)).toMatchObject({ outputTokens: 2_112, costNanos: cost });
  });
});

describe("image holds", () => {
  it("gpt-image-1's partial images are held on top of the picture (100 output tokens each)", async () => {
    // $40 per 1M image output tokens: one picture's 6,240 tokens ($0.2496) fit $0.255, plus three partials not.
    const { key } = await setupKey({ spend_limit: { amount: "0.255", cycle: "total" } });
    const body = { model: "gpt-image-1", prompt: "a red fox", size: "1024x1536", quality: "high" };
    const partials = await post(key, "/v1/images/generations", { ...body, stream: true, partial_images: 3 });
    expect(partials.status).toBe(429);
    // 6,540 output tokens ($0.2616) and the body's bytes at the dearest input rate.
    expect(((await partials.json()) as any).error.message).toMatch(/worst-case cost \(\$0\.262\d+\)/);
    expect((await post(key, "/v1/images/generations", body)).status).toBe(200);
  });
});

describe("audio", () => {
  it("transcriptions: multipart forwarded byte for byte; whisper-1 per second, 4o-transcribe by tokens", async () => {
    const { key, id } = await setupKey({ spend_limit: { amount: "1", cycle: "total" } });
    const whisper = await transcribe(key, { model: "whisper-1" });
    expect(await json(whisper.res, 200)).toMatchObject({ usage: { type: "duration", seconds: 3 } });
    expect((await lastFakeRequest()).bodySha256).toBe(whisper.sha);
    // whisper-1: $0.006 a minute = $0.0001 a second.
    expect(await lastRow(id)).toMatchObject({ units: 3, costNanos: 300_000, endpoint: "/v1/audio/transcriptions" });

    const tokens = await json((await transcribe(key, { model: "gpt-4o-transcribe" })).res, 200);
    const audio = tokens.usage.input_token_details.audio_tokens;
    const cost = Math.ceil((audio * 6_000_000_000 + tokens.usage.output_tokens * 10_000_000_000) / 1e6);
    expect(await lastRow(id)).toMatchObject({ mediaInputTokens: audio, costNanos: cost });

    const streamed = await transcribe(key, { model: "gpt-4o-mini-transcribe", stream: "true" });
    expect(await streamed.res.text()).toContain("transcript.text.done");
    expect(await lastRow(id)).toMatchObject({ stream: true, usageKnown: true, mediaInputTokens: 30 });

    const text = await transcribe(key, { model: "whisper-1", response_format: "text" });
    expect(text.res.status).toBe(400);
    expect(((await text.res.json()) as any).error.message).toContain("response_format 'text'");
    const free = await setupKey();
    const plain = await transcribe(free.key, { model: "whisper-1", response_format: "text" });
    expect(plain.res.headers.get("content-type")).toContain("text/plain");
    expect(await plain.res.text()).toContain("Spendgate");
  });

  it("a WAV is held for the frames a decoder plays, whatever its byte-rate and data-size fields say", async () => {
    // 20 s of 8 kHz 16-bit mono whose header claims 16 MB a second and a data chunk of one second.
    const crafted = wav(20);
    const header = new DataView(crafted.buffer);
    header.setUint32(28, 16_000_000, true);
    header.setUint32(40, 16_000, true);
    // whisper-1 at $0.0001 a second: $0.001 covers 10 s, not the 20 the provider decodes.
    const small = await setupKey({ spend_limit: { amount: "0.001", cycle: "total" } });
    const before = (await fakeRequests()).length;
    const refused = await transcribe(small.key, { model: "whisper-1" }, crafted);
    expect(refused.res.status).toBe(429);
    expect(await refused.res.json()).toMatchObject({ error: { code: "spend_limit_exceeded" } });
    expect((await fakeRequests()).length).toBe(before);
    expect((await settled(small.id)).counters.currentSpendNanos).toBe(0);
    // With room for it, it is charged the 20 s the provider reports, within its hold.
    const large = await setupKey({ spend_limit: { amount: "1", cycle: "total" } });
    expect((await transcribe(large.key, { model: "whisper-1" }, crafted)).res.status).toBe(200);
    expect(await lastRow(large.id)).toMatchObject({ units: 20, costNanos: 2_000_000, overage: false });

    // A compressed format inside a WAV (0x55, MP3) has no frames to count: bounded by its size at 1,000 B/s,
    // 33 s — held once, though whisper-1 prices both seconds of audio and seconds of input audio.
    const mp3 = wav(2);
    new DataView(mp3.buffer).setUint16(20, 0x55, true);
    const sized = await setupKey({ spend_limit: { amount: "0.003", cycle: "total" } });
    const bySize = await transcribe(sized.key, { model: "whisper-1" }, mp3);
    expect(bySize.res.status).toBe(429);
    expect(((await bySize.res.json()) as any).error.message).toContain("0.0033");
  });

  it("a transcription sent as JSON (no file to measure) is refused before any provider", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "1", cycle: "total" } });
    const before = (await fakeRequests()).length;
    const res = await post(key, "/v1/audio/transcriptions", { model: "whisper-1", file: "https://example.com/a.wav" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_request", param: "file" } });
    expect((await fakeRequests()).length).toBe(before);
  });

  it("a form field or file sent twice is refused before any provider; array fields may repeat", async () => {
    const { key, id } = await setupKey({ allowed_models: ["whisper-1"] });
    const before = (await fakeRequests()).length;
    const file = () => new File([wav(1)], "a.wav", { type: "audio/wav" });
    const twice = (name: string, first: string | File, second: string | File) => {
      const form = new FormData();
      if (name !== "model") form.append("model", "whisper-1");
      if (name !== "file") form.append("file", file());
      form.append(name, first);
      form.append(name, second);
      return sendForm(key, form);
    };
    for (const res of [
      (await twice("model", "gpt-4o-transcribe", "whisper-1")).res,
      (await twice("file", new File([wav(60)], "long.wav"), file())).res,
    ]) {
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: "invalid_request", message: /sent twice/ } });
    }
    expect((await fakeRequests()).length).toBe(before);
    const granular = await twice("timestamp_granularities[]", "word", "segment");
    expect(granular.res.status).toBe(200);
    expect((await settled(id)).ledger).toHaveLength(1);
  });

  it("a multipart body over MAX_BODY_BYTES is refused with 413 and reaches no provider", async () => {
    const { key } = await setupKey();
    const form = new FormData();
    form.set("model", "whisper-1");
    form.set("file", new File([wav(2)], "big.wav", { type: "audio/wav" }));
    const request = new Request("http://x/", { method: "POST", body: form });
    const before = (await fakeRequests()).length;
    const res = await callWith({ MAX_BODY_BYTES: "10000" }, "POST", "/v1/audio/transcriptions", {
      headers: { authorization: `Bearer ${key}`, "content-type": request.headers.get("content-type") ?? "" },
      body: await request.arrayBuffer(),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "request_too_large" } });
    expect((await fakeRequests()).length).toBe(before);
  });

  it("speech: the provider's bytes unchanged, charged per character", async () => {
    const { key, id } = await setupKey({ spend_limit: { amount: "1", cycle: "total" } });
    const body = { model: "tts-1", input: "Hello, world", voice: "alloy" };
    const res = await post(key, "/v1/audio/speech", body);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("audio/mpeg");
    const bytes = new Uint8Array(await res.arrayBuffer());
    const provider = new Uint8Array(await (await direct("https://api.openai.com/v1/audio/speech", body)).arrayBuffer());
    expect(bytes).toEqual(provider);
    // tts-1: $15 per 1M characters; 12 characters.
    expect(res.headers.get("x-spendgate-cost")).toBe(formatUsd(180_000));
    expect(await lastRow(id)).toMatchObject({ units: 12, costNanos: 180_000, endpoint: "/v1/audio/speech" });
    // Charged by the characters sent, so the text must be text: anything else is refused before any provider.
    const before = (await fakeRequests()).length;
    for (const input of [["Hello"], { text: "Hello" }, undefined]) {
      const refused = await post(key, "/v1/audio/speech", { ...body, input });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ error: { code: "invalid_request", param: "input" } });
    }
    expect((await fakeRequests()).length).toBe(before);
    const unpriced = await post(key, "/v1/audio/speech", { ...body, model: "gpt-4o-mini-tts" });
    expect(unpriced.status).toBe(403);
    expect(await unpriced.json()).toMatchObject({ error: { code: "model_not_priced" } });
  });
});

describe("every new route gets the key's rules", () => {
  const routes: [string, (key: string) => Promise<Response>][] = [
    [
      "/v1/images/generations",
      (k) => post(k, "/v1/images/generations", { model: "dall-e-2", prompt: "x", size: "256x256" }),
    ],
    ["/v1/audio/speech", (k) => post(k, "/v1/audio/speech", { model: "tts-1", input: "hi", voice: "alloy" })],
    ["/v1/audio/transcriptions", async (k) => (await transcribe(k, { model: "whisper-1" })).res],
    ["/v1/completions", (k) => post(k, "/v1/completions", { model: "babbage-002", prompt: "x", max_tokens: 5 })],
    ["/v1/moderations", (k) => post(k, "/v1/moderations", { input: "x" })],
  ];
  for (const [path, send] of routes) {
    it(`${path}: paused, disallowed model, exhausted spend (terminal), rpm`, async () => {
      const { key, id, wallet } = await setupKey({ rate_limit: { rpm: 60, burst: 2 } });
      expect((await send(key)).status).toBe(200);
      await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
      expect((await send(key)).status).toBe(403);
      await json(
        await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active", allowed_models: ["gpt-4o-mini"] }),
        200,
      );
      const disallowed = await send(key);
      expect(disallowed.status).toBe(403);
      expect(await disallowed.json()).toMatchObject({ error: { code: "model_not_allowed" } });
      await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { allowed_models: null, rate_limit: null }), 200);
      if (path !== "/v1/moderations") {
        const spent = await setupKey({ spend_limit: { amount: "0.000000001", cycle: "total" } });
        const refused = await send(spent.key);
        expect(refused.status).toBe(429);
        expect(refused.headers.get("x-should-retry")).toBe("false");
        expect(await refused.json()).toMatchObject({ error: { code: "spend_limit_exceeded" } });
      }
      const limited = await setupKey({ rate_limit: { rpm: 1, burst: 1 } });
      expect((await send(limited.key)).status).toBe(200);
      const rate = await send(limited.key);
      expect(rate.status).toBe(429);
      expect(await rate.json()).toMatchObject({ error: { code: "rate_limit_exceeded" } });
    });
  }
});
