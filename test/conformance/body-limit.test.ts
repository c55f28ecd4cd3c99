import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/**
 * Over real HTTP, as `npm run dev` serves it: a chunked body (no content-length) over MAX_BODY_BYTES (32 MiB by
 * default) gets its 413 `request_too_large` in the route's dialect, not a connection reset while still sending
 * (24 MiB past the limit: more than the sockets buffer, so a gateway answering early resets the connection).
 */
const LIMIT = 32 * 1024 * 1024;

/** Sends `total` bytes, chunked as a streaming client does (or with their length declared); what came back. */
function sendChunked(path: string, headers: Record<string, string>, total: number, declared = false) {
  return new Promise<{ status?: number; body?: string; error?: string }>((resolve) => {
    const req = request(new URL(path, gatewayUrl()), {
      method: "POST",
      headers: {
        ...headers,
        "content-type": "application/json",
        ...(declared ? { "content-length": String(total) } : { "transfer-encoding": "chunked" }),
      },
    });
    // Everything that happened, once the exchange is over: an error while sending counts even after an answer.
    const got: { status?: number; body?: string; error?: string } = {};
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => Object.assign(got, { status: res.statusCode ?? 0, body }));
    });
    req.on("error", (e) => {
      got.error = e.message;
    });
    req.on("close", () => setTimeout(() => resolve(got), 50));
    const chunk = Buffer.alloc(16 * 1024, "x");
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!req.write(piece)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

describe("a chunked body over the limit, over HTTP", () => {
  it("is answered 413 in the OpenAI and the Anthropic dialect, never a reset", { timeout: 60_000 }, async () => {
    const { key } = await newSpendKey();
    const openai = await sendChunked(
      "/v1/chat/completions",
      { authorization: `Bearer ${key}` },
      LIMIT + 24 * 1024 * 1024,
    );
    expect(openai.error).toBeUndefined();
    expect(openai.status).toBe(413);
    expect(JSON.parse(openai.body!)).toMatchObject({
      error: { type: "invalid_request_error", code: "request_too_large" },
    });
    const anthropic = await sendChunked(
      "/v1/messages",
      { "x-api-key": key, "anthropic-version": "2023-06-01" },
      LIMIT + 24 * 1024 * 1024,
    );
    expect(anthropic.error).toBeUndefined();
    expect(anthropic.status).toBe(413);
    expect(JSON.parse(anthropic.body!)).toMatchObject({ type: "error", error: { type: "request_too_large" } });
  });

  it("a declared content-length over the limit gets its 413 too", { timeout: 60_000 }, async () => {
    const { key } = await newSpendKey();
    const auth = { authorization: `Bearer ${key}` };
    const got = await sendChunked("/v1/chat/completions", auth, LIMIT + 24 * 1024 * 1024, true);
    expect(got.error).toBeUndefined();
    expect(got.status).toBe(413);
    expect(JSON.parse(got.body!)).toMatchObject({ error: { code: "request_too_large" } });
  });
});
