import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../env.ts";
import { ApiError, renderError } from "../lib/errors.ts";
import { keyRoutes } from "./key-routes.ts";
import { proxy, type RouteSpec } from "./proxy.ts";

/** The gateway API: the proxied routes (spend key), plus `GET /v1/models` and `GET /v1/key`. */
const ROUTES: RouteSpec[] = [
  { kind: "chat", shape: "openai", endpoint: "/v1/chat/completions" },
  { kind: "responses", shape: "openai", endpoint: "/v1/responses" },
  { kind: "embeddings", shape: "openai", endpoint: "/v1/embeddings" },
  { kind: "messages", shape: "anthropic", endpoint: "/v1/messages" },
  { kind: "count_tokens", shape: "anthropic", endpoint: "/v1/messages/count_tokens" },
];

export const gatewayRoutes = new Hono<AppEnv>();

for (const route of ROUTES) {
  gatewayRoutes.post(
    route.endpoint,
    // The body limit is configurable per deployment; it counts streamed (chunked) bodies too.
    (c, next) =>
      bodyLimit({
        maxSize: Number(c.env.MAX_BODY_BYTES) || 32 * 1024 * 1024,
        onError: (c) =>
          renderError(
            new ApiError("request_too_large", `The request body exceeds the gateway's limit of ${c.env.MAX_BODY_BYTES} bytes.`),
            route.shape,
            c.get("requestId"),
          ),
      })(c, next),
    (c) => proxy(c, route),
  );
}

gatewayRoutes.route("/", keyRoutes);
