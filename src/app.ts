import { Hono } from "hono";
import { adminRoutes } from "./admin/routes.ts";
import { gatewayConfig } from "./config.ts";
import { useManagementFetch } from "./dashboard/api.ts";
import { dashboard } from "./dashboard/routes.tsx";
import type { AppEnv } from "./env.ts";
import { gatewayRoutes } from "./gateway/routes.ts";
import { ApiError, renderError, toApiError } from "./lib/errors.ts";
import { newId } from "./lib/keys.ts";
import { logErrorAnswer } from "./lib/log.ts";
import { openApiDocument } from "./lib/openapi.ts";
import { childKeyRoutes } from "./management/children.ts";
import { requestRoutes } from "./management/requests.ts";
import { secretKeyRoutes } from "./management/secret-keys.ts";
import { spendKeyRoutes } from "./management/spend-keys.ts";
import { usageRoutes } from "./management/usage.ts";
import { requireWallet } from "./wallets/auth.ts";
import { webhookRoutes } from "./webhooks/routes.ts";

/**
 * Three route families: operator (`/admin`, ADMIN_TOKEN), management (`/v1/spend_keys` …, wallet key) and
 * gateway (`/v1/chat/completions` …, spend key). Gateway routes render their own errors in the key's dialect;
 * everything else speaks the OpenAI-style error shape the Lava SDK reads.
 */
export const app = new Hono<AppEnv>();

// Our own ids only: a client-sent x-request-id is never trusted (it keys the ledger).
app.use(async (c, next) => {
  c.set("requestId", newId("req"));
  await next();
  if (!c.res.headers.has("x-request-id") && !c.res.headers.has("request-id")) {
    c.res.headers.set("x-request-id", c.get("requestId"));
  }
});

/**
 * Liveness for uptime monitors and load balancers: touches no storage, so it says the Worker is up and its
 * configuration parses (when it does not, this answers 500 as every route then does, and the log says why).
 */
app.get("/health", (c) => {
  gatewayConfig(c.env);
  return c.json({ status: "ok" }, 200, { "cache-control": "no-store" });
});

app.route("/", gatewayRoutes);
app.route("/admin", adminRoutes.app);
for (const path of [
  "/v1/spend_keys",
  "/v1/spend_keys/*",
  "/v1/secret_keys",
  "/v1/secret_keys/*",
  "/v1/requests",
  "/v1/requests/*",
  "/v1/usage",
  "/v1/webhooks",
  "/v1/webhooks/*",
]) {
  app.use(path, requireWallet);
}
// `POST /v1/key/children` is authenticated by the parent spend key itself (no wallet key).
const managementRouters = [spendKeyRoutes, childKeyRoutes, secretKeyRoutes, requestRoutes, usageRoutes, webhookRoutes];
for (const router of managementRouters) app.route("/v1", router.app);

// The dashboard (signed-in pages at /keys, /requests, …) calls the management routes above in-process.
app.route("/", dashboard);
useManagementFetch((request, env, ctx) => app.fetch(request, env, ctx));

let openapi: unknown;
app.get("/openapi.json", (c) => {
  openapi ??= openApiDocument(
    [
      ["/admin", adminRoutes],
      ["/v1", spendKeyRoutes],
      ["/v1", childKeyRoutes],
      ["/v1", secretKeyRoutes],
      ["/v1", requestRoutes],
      ["/v1", usageRoutes],
      ["/v1", webhookRoutes],
    ],
    {
      title: "Spendgate operator and management API",
      version: "0.1.0",
      description:
        "Wallets, spend keys, wallet secret keys, the request ledger and model prices. Compatible with the " +
        "@lavapayments/nodejs SDK's spendKeys, secretKeys, models, requests and usage. The gateway routes " +
        "(/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions, /v1/fim/completions, " +
        "/v1/moderations, /v1/images/generations, /v1/audio/*, /v1/messages) follow the OpenAI, Mistral and " +
        "Anthropic APIs.",
    },
  );
  return c.json(openapi);
});

app.notFound((c) => {
  throw new ApiError("not_found", `Unknown route: ${c.req.method} ${c.req.path}`);
});

/**
 * The one place errors become responses: in the dialect the route (or the key, once known) set. Each also gets its
 * one log line here (lib/log.ts): every refusal of a proxied route, and what the operator must see elsewhere.
 */
app.onError((err, c) => {
  const answer = toApiError(err);
  const requestId = c.get("requestId") ?? newId("req");
  const res = renderError(answer, c.get("dialect") ?? "openai", requestId);
  logErrorAnswer(err, answer, res.status, c.get("log"), { request_id: requestId, route: c.req.path });
  return res;
});
