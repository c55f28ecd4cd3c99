import { Hono, type MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { type GatewayConfig, gatewayConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../lib/errors.ts";
import type { RouteSpec } from "./admission.ts";
import { BROWSER_READABLE } from "./headers.ts";
import { keyRoutes } from "./key-routes.ts";
import { proxy } from "./proxy.ts";

/** The gateway API: the proxied routes (spend key), plus `GET /v1/models` and `GET /v1/key`. */
const ROUTES: RouteSpec[] = [
  { kind: "chat", shape: "openai", endpoint: "/v1/chat/completions" },
  { kind: "responses", shape: "openai", endpoint: "/v1/responses" },
  { kind: "embeddings", shape: "openai", endpoint: "/v1/embeddings" },
  { kind: "completions", shape: "openai", endpoint: "/v1/completions" },
  { kind: "fim", shape: "openai", endpoint: "/v1/fim/completions" },
  { kind: "moderations", shape: "openai", endpoint: "/v1/moderations", defaultModel: "omni-moderation-latest" },
  { kind: "images", shape: "openai", endpoint: "/v1/images/generations", defaultModel: "dall-e-2" },
  { kind: "transcriptions", shape: "openai", endpoint: "/v1/audio/transcriptions" },
  { kind: "speech", shape: "openai", endpoint: "/v1/audio/speech" },
  { kind: "messages", shape: "anthropic", endpoint: "/v1/messages" },
  { kind: "count_tokens", shape: "anthropic", endpoint: "/v1/messages/count_tokens" },
];

export const gatewayRoutes = new Hono<AppEnv>();

/**
 * Browsers may call the gateway routes from any origin, as they may call OpenAI's and Anthropic's own APIs: the
 * spend key travels in a header, never in a cookie, so `*` gives a page nothing it does not already hold. Only
 * requests that carry an `Origin` (browsers') get the headers; SDKs on servers pay nothing for them. The
 * management API is left same-origin: wallet keys belong on servers, and the dashboard is served from here.
 */
const browserAccess = cors({
  origin: "*",
  allowMethods: ["GET", "POST"],
  exposeHeaders: BROWSER_READABLE,
  maxAge: 7200,
});
const crossOrigin: MiddlewareHandler = (c, next) => (c.req.header("origin") ? browserAccess(c, next) : next());
// (`/v1/models/*` matches `/v1/models` itself too.)
for (const path of [...ROUTES.map((r) => r.endpoint), "/v1/models/*", "/v1/key"]) {
  gatewayRoutes.use(path, crossOrigin);
}

for (const route of ROUTES) {
  gatewayRoutes.post(
    route.endpoint,
    (c, next) => {
      // Until the key is known, errors speak the route's dialect; every error answer is logged with this.
      c.set("dialect", route.shape);
      c.set("log", { request_id: c.get("requestId"), route: route.endpoint });
      return limitBody(gatewayConfig(c.env))(c, next);
    },
    (c) => proxy(c, route),
  );
}

/**
 * The body limit is configurable per deployment; it counts streamed (chunked) bodies too. A body over it is
 * refused with 413 `request_too_large` in the route's dialect — but only once the client has finished sending
 * (what is left is read and thrown away, up to DRAIN_BYTES more or DRAIN_MS): answering while a client is still
 * writing makes the runtime close the connection, which the client sees as a reset (EPIPE/ECONNRESET) instead of
 * the answer. A client that sends more than that still gets the reset.
 */
const DRAIN_BYTES = 64 * 1024 * 1024;
const DRAIN_MS = 10_000;

const limits = new WeakMap<GatewayConfig, MiddlewareHandler>();
function limitBody(config: GatewayConfig): MiddlewareHandler {
  let limit = limits.get(config);
  if (!limit) {
    const maxSize = config.maxBodyBytes;
    const tooLarge = () =>
      new ApiError("request_too_large", `The request body exceeds the gateway's limit of ${maxSize} bytes.`);
    limit = async (c, next) => {
      const body = c.req.raw.body;
      if (!body) return next();
      const declared = c.req.header("content-length");
      if (declared !== undefined && Number(declared) <= maxSize) return next();
      const reader = body.getReader();
      if (declared !== undefined) {
        await drain(reader);
        throw tooLarge();
      }
      // No length: read up to the limit here, and keep the bytes for the routes.
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxSize) {
          await drain(reader);
          throw tooLarge();
        }
        chunks.push(value);
      }
      const whole = new Uint8Array(size);
      let at = 0;
      for (const chunk of chunks) {
        whole.set(chunk, at);
        at += chunk.byteLength;
      }
      c.req.raw = new Request(c.req.raw, { body: whole });
      return next();
    };
    limits.set(config, limit);
  }
  return limit;
}

/** Reads and discards what the client still sends (bounded), so it is listening when the 413 comes. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const until = Date.now() + DRAIN_MS;
  let left = DRAIN_BYTES;
  try {
    while (left > 0 && Date.now() < until) {
      const { done, value } = await reader.read();
      if (done) return;
      left -= value.byteLength;
    }
    await reader.cancel();
  } catch {
    // A client that went away: nothing to answer.
  }
}

gatewayRoutes.route("/", keyRoutes);
