import { describe, expect, it } from "vitest";
import { callWith, chat, fakeRequests, setupKey } from "./helpers.ts";

/**
 * A body over MAX_BODY_BYTES without a content-length (chunked): 413 `request_too_large` in the route's dialect,
 * answered only after the client's stream has been read to its end (answering while a client still writes makes
 * the runtime close the connection: a reset instead of the answer). test/conformance/body-limit.test.ts sends
 * the same over real HTTP.
 */

/** A body of `chunks` pieces of 1,000 bytes, and how many pieces the gateway pulled. */
function streamed(chunks: number) {
  const state = { pulled: 0 };
  const piece = new TextEncoder().encode("x".repeat(1000));
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (state.pulled === chunks) return c.close();
      state.pulled++;
      c.enqueue(piece);
    },
  });
  return { body, state };
}

describe("an oversized streamed body", () => {
  it("is answered 413 in the OpenAI dialect once the client has sent it all", async () => {
    const { key } = await setupKey();
    const before = (await fakeRequests()).length;
    const { body, state } = streamed(300);
    const res = await callWith({ MAX_BODY_BYTES: "5000" }, "POST", "/v1/chat/completions", {
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({
      error: { type: "invalid_request_error", code: "request_too_large" },
    });
    expect(state.pulled).toBe(300);
    expect((await fakeRequests()).length).toBe(before);
  });

  it("is answered 413 in the Anthropic dialect, too", async () => {
    const { key } = await setupKey({ request_shape: "anthropic" });
    const { body, state } = streamed(50);
    const res = await callWith({ MAX_BODY_BYTES: "5000" }, "POST", "/v1/messages", {
      headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ type: "error", error: { type: "request_too_large" } });
    expect(state.pulled).toBe(50);
  });

  it("a streamed body within the limit still goes through whole", async () => {
    const { key } = await setupKey();
    const json = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "streamed hello" }] });
    const bytes = new TextEncoder().encode(json);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, 20));
        c.enqueue(bytes.slice(20));
        c.close();
      },
    });
    const res = await callWith({ MAX_BODY_BYTES: "5000" }, "POST", "/v1/chat/completions", {
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(200);
    expect((await fakeRequests()).at(-1)?.body.messages[0].content).toBe("streamed hello");
    expect((await chat(key)).status).toBe(200);
  });
});
