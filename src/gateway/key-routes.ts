import { Hono, type Context } from "hono";
import { getCatalog, type ModelEntry } from "../catalog/catalog.ts";
import { keyGuard, type AppEnv } from "../env.ts";
import type { KeyConfig, KeySnapshot } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { periodEnd } from "../lib/cycles.ts";
import { ApiError, INVALID_API_KEY_MESSAGE, renderError, toApiError, type Dialect } from "../lib/errors.ts";
import { hashSecret, keyKindOf, parseKey } from "../lib/keys.ts";
import { formatUsd } from "../lib/money.ts";
import { isoOrNull as iso } from "../lib/time.ts";
import { walletOf } from "../management/auth.ts";
import { PROVIDERS, resolveUpstream, type RouteKind } from "../providers/registry.ts";
import { requestIdHeader } from "./headers.ts";

/** What a caller may learn about the gateway and about its own key: `GET /v1/models` and `GET /v1/key`. */
export const keyRoutes = new Hono<AppEnv>();

const INVALID_KEY = new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

/** Authenticates a spend key through its KeyGuard; null when the key is not good. */
async function describeKey(c: Context<AppEnv>, key: string) {
  const id = parseKey("spend", key);
  if (!id) return null;
  const described = await keyGuard(c.env, id).describe(await hashSecret(key));
  return described.ok ? { id, config: described.config, snapshot: described.snapshot } : null;
}

function callable(env: AppEnv["Bindings"], cfg: KeyConfig, m: ModelEntry): boolean {
  const provider = PROVIDERS[m.provider];
  if (!provider) return false;
  const routes: RouteKind[] = cfg.requestShape === "anthropic" ? ["messages"] : ["chat", "responses", "embeddings"];
  const configured = routes.some((r) => typeof resolveUpstream(env as unknown as Record<string, unknown>, provider, r) === "object");
  return (
    configured &&
    (!cfg.allowedModels || cfg.allowedModels.includes(m.id)) &&
    (!cfg.allowedProviders || cfg.allowedProviders.includes(m.provider)) &&
    (!cfg.spendLimit || m.prices !== null)
  );
}


/**
 * `GET /v1/models`: with a spend key, only what that key may call; with a wallet key or none, the catalog.
 */
keyRoutes.get("/v1/models", async (c) => {
  const requestId = c.get("requestId");
  const key = spendKeyFrom(c.req.raw.headers);
  let filter: ((m: ModelEntry) => boolean) | null = null;
  let dialect: Dialect = "openai";
  try {
    if (key && keyKindOf(key) === "wallet") {
      if (!(await walletOf(c.env.DB, key))) throw new ApiError("unauthorized", "Invalid wallet secret key.");
    } else if (key) {
      const described = await describeKey(c, key);
      if (!described) throw INVALID_KEY;
      dialect = described.config.requestShape;
      const cfg = described.config;
      filter = (m) => callable(c.env, cfg, m);
    }
    const catalog = await getCatalog(c.env.DB, (p) => c.executionCtx.waitUntil(p));
    const data = [...catalog.values()]
      .filter((m) => !filter || filter(m))
      .map((m) => ({ id: m.id, object: "model" as const, created: m.created, owned_by: m.provider }));
    c.header(requestIdHeader(dialect), requestId);
    return c.json({ object: "list" as const, data });
  } catch (err) {
    return renderError(toApiError(err), dialect, requestId);
  }
});

/** `GET /v1/key`: the calling key's own limits, usage, remaining amounts and reset times (never its secret). */
keyRoutes.get("/v1/key", async (c) => {
  const requestId = c.get("requestId");
  try {
    const key = spendKeyFrom(c.req.raw.headers);
    const described = key ? await describeKey(c, key) : null;
    if (!described) throw INVALID_KEY;
    c.header(requestIdHeader(described.config.requestShape), requestId);
    return c.json(keyView(described.id, described.config, described.snapshot));
  } catch (err) {
    return renderError(toApiError(err), "openai", requestId);
  }
});

function keyView(id: string, cfg: KeyConfig, s: KeySnapshot, now = Date.now()) {
  const spend = cfg.spendLimit;
  const reqs = cfg.requestLimit;
  return {
    spend_key_id: id,
    status: cfg.status,
    request_shape: cfg.requestShape,
    allowed_models: cfg.allowedModels,
    allowed_providers: cfg.allowedProviders,
    expires_at: iso(cfg.expiresAt),
    last_used_at: iso(s.lastUsedAt),
    spend: {
      limit: spend ? { amount: formatUsd(spend.nanos), cycle: spend.cycle } : null,
      current: formatUsd(s.currentSpendNanos),
      total: formatUsd(s.totalSpendNanos),
      held: formatUsd(s.heldNanos),
      remaining: s.remainingSpendNanos === null ? null : formatUsd(s.remainingSpendNanos),
      resets_at: spend ? iso(periodEnd(spend.cycle, now)) : null,
    },
    requests: {
      limit: reqs ? { count: reqs.count, cycle: reqs.cycle } : null,
      current: s.currentRequests,
      total: s.totalRequests,
      remaining: reqs ? Math.max(0, reqs.count - s.currentRequests) : null,
      resets_at: reqs ? iso(periodEnd(reqs.cycle, now)) : null,
      in_flight: s.openHolds,
    },
    rate_limit: cfg.rateLimit
      ? {
          rpm: cfg.rateLimit.rpm,
          burst: cfg.rateLimit.burst,
          remaining: s.rate?.remaining ?? cfg.rateLimit.burst,
          resets_at: iso(now + (s.rate?.resetMs ?? 0)),
        }
      : null,
  };
}
