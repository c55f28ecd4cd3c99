import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
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

/** The body limit is configurable per deployment; it counts streamed (chunked) bodies too. */
const limits = new WeakMap<GatewayConfig, MiddlewareHandler>();
function limitBody(config: GatewayConfig): MiddlewareHandler {
  let limit = limits.get(config);
  if (!limit) {
    const maxSize = config.maxBodyBytes;
    limit = bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError("request_too_large", `The request body exceeds the gateway's limit of ${maxSize} bytes.`);
      },
    });
    limits.set(config, limit);
  }
  return limit;
}

gatewayRoutes.route("/", keyRoutes);
