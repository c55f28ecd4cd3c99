import { Hono } from "hono";
import { getCatalog, type ModelEntry } from "../catalog/catalog.ts";
import { type AppEnv, keyGuard } from "../env.ts";
import type { KeyConfig } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashSecret, keyKindOf, parseKey } from "../lib/keys.ts";
import { walletOf } from "../management/auth.ts";
import { liveKeyView } from "../management/spend-key-view.ts";
import { providerOf, type RouteKind, resolveUpstream } from "../providers/registry.ts";
import { requestIdHeader } from "./headers.ts";

/** What a caller may learn about the gateway and about its own key: `GET /v1/models` and `GET /v1/key`. */
export const keyRoutes = new Hono<AppEnv>();

const invalidKey = () => new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

/** Authenticates a spend key through its KeyGuard; null when the key is not good. */
async function describeKey(env: AppEnv["Bindings"], key: string) {
  const id = parseKey("spend", key);
  if (!id) return null;
  const described = await keyGuard(env, id).describe(await hashSecret(key));
  return described.ok ? described : null;
}

function callable(env: AppEnv["Bindings"], cfg: KeyConfig, m: ModelEntry): boolean {
  const provider = providerOf(m.provider);
  if (!provider) return false;
  const routes: RouteKind[] = cfg.requestShape === "anthropic" ? ["messages"] : ["chat", "responses", "embeddings"];
  const vars = env as unknown as Record<string, unknown>;
  const configured = routes.some((r) => typeof resolveUpstream(vars, provider, r) === "object");
  return (
    configured &&
    (!cfg.allowedModels || cfg.allowedModels.includes(m.id)) &&
    (!cfg.allowedProviders || cfg.allowedProviders.includes(m.provider)) &&
    (!cfg.spendLimit || m.prices !== null)
  );
}

/** `GET /v1/models`: with a spend key, only what that key may call; with a wallet key or none, the catalog. */
keyRoutes.get("/v1/models", async (c) => {
  const key = spendKeyFrom(c.req.raw.headers);
  let filter: ((m: ModelEntry) => boolean) | null = null;
  if (key && keyKindOf(key) === "wallet") {
    if (!(await walletOf(c.env.DB, key))) throw new ApiError("unauthorized", "Invalid wallet secret key.");
  } else if (key) {
    const described = await describeKey(c.env, key);
    if (!described) throw invalidKey();
    c.set("dialect", described.config.requestShape);
    filter = (m) => callable(c.env, described.config, m);
  }
  const catalog = await getCatalog(c.env.DB, (p) => c.executionCtx.waitUntil(p));
  const data = [...catalog.values()]
    .filter((m) => !filter || filter(m))
    .map((m) => ({ id: m.id, object: "model" as const, created: m.created, owned_by: m.provider }));
  c.header(requestIdHeader(c.get("dialect") ?? "openai"), c.get("requestId"));
  return c.json({ object: "list" as const, data });
});

/** `GET /v1/key`: the calling key's own view — limits, usage, what is left and when it resets (never its secret). */
keyRoutes.get("/v1/key", async (c) => {
  const key = spendKeyFrom(c.req.raw.headers);
  const described = key ? await describeKey(c.env, key) : null;
  if (!described) throw invalidKey();
  c.set("dialect", described.config.requestShape);
  c.header(requestIdHeader(described.config.requestShape), c.get("requestId"));
  return c.json(liveKeyView(described.record, described.snapshot));
});
