import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { adminRoutes } from "./admin/routes.ts";
import { gatewayRoutes } from "./gateway/routes.ts";
import { ApiError, renderError, toApiError } from "./lib/errors.ts";
import { newId } from "./lib/keys.ts";
import { apiRouter } from "./lib/openapi.ts";
import { requireWallet } from "./management/auth.ts";
import { requestRoutes } from "./management/requests.ts";
import { secretKeyRoutes } from "./management/secret-keys.ts";
import { spendKeyRoutes } from "./management/spend-keys.ts";

/**
 * Three route families: operator (`/admin`, ADMIN_TOKEN), management (`/v1/spend_keys` …, wallet key) and
 * gateway (`/v1/chat/completions` …, spend key). Gateway routes render their own errors in the key's dialect;
 * everything else speaks the OpenAI-style error shape the Lava SDK reads.
 */
export const app = apiRouter();

// Our own ids only: a client-sent x-request-id is never trusted (it keys the ledger).
app.use(requestId({ headerName: "", generator: () => newId("req") }));
app.use(async (c, next) => {
  await next();
  if (!c.res.headers.has("x-request-id") && !c.res.headers.has("request-id")) {
    c.res.headers.set("x-request-id", c.get("requestId"));
  }
});

app.route("/", gatewayRoutes);
app.route("/admin", adminRoutes);
for (const path of ["/v1/spend_keys", "/v1/spend_keys/*", "/v1/secret_keys", "/v1/secret_keys/*", "/v1/requests", "/v1/requests/*"]) {
  app.use(path, requireWallet);
}
app.route("/v1", spendKeyRoutes);
app.route("/v1", secretKeyRoutes);
app.route("/v1", requestRoutes);

app.openAPIRegistry.registerComponent("securitySchemes", "walletKey", { type: "http", scheme: "bearer", description: "A wallet secret key (sgw_…)" });
app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN secret" });
app.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Spendgate operator and management API",
    version: "0.1.0",
    description:
      "Wallets, spend keys, wallet secret keys, the request ledger and model prices. Compatible with the @lavapayments/nodejs SDK's spendKeys, secretKeys, models and requests. The gateway routes (/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages) follow the OpenAI and Anthropic APIs.",
  },
});

app.notFound((c) => renderError(new ApiError("not_found", `Unknown route: ${c.req.method} ${c.req.path}`), "openai", c.get("requestId") ?? newId("req")));

app.onError((err, c) => {
  const id = c.get("requestId") ?? newId("req");
  if (err instanceof HTTPException) {
    // Hono's own refusals (malformed JSON body, oversized body) in our error shape.
    const code = err.status === 413 ? "request_too_large" : err.status === 400 ? "invalid_request" : "internal_error";
    const message = err.status === 400 ? "body: the request body is not valid JSON" : err.message;
    return renderError(new ApiError(code, message, { param: err.status === 400 ? "body" : undefined }), "openai", id);
  }
  return renderError(toApiError(err), "openai", id);
});
