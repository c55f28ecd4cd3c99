import { type Context, Hono } from "hono";
import * as z from "zod/mini";
import { getCatalog, type NamedModel } from "../catalog/catalog.ts";
import { allowsModel, ownModels } from "../catalog/scope.ts";
import { gatewayConfig } from "../config.ts";
import { controlD1 } from "../db/client.ts";
import type { AppEnv } from "../env.ts";
import { keyGuard } from "../guard/stub.ts";
import type { KeyConfig } from "../guard/types.ts";
import { liveKeyView, runView } from "../keys/view.ts";
import { RUN_ID, RUN_ID_RULE } from "../lib/api-schemas.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashSecret, keyKindOf, parseKey } from "../lib/keys.ts";
import { validationError } from "../lib/openapi.ts";
import { providerOf, type RouteKind, resolveUpstream } from "../providers/registry.ts";
import { walletOf } from "../wallets/auth.ts";
import { requestIdHeader } from "./headers.ts";

/** What a caller may learn about the gateway and about its own key: `GET /v1/models` and `GET /v1/key`. */
export const keyRoutes = new Hono<AppEnv>();

const invalidKey = () => new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

/** Authenticates a spend key through its KeyGuard (with a run's figures when `run` is given); null when not good. */
async function describeKey(env: AppEnv["Bindings"], key: string, run?: string) {
  const id = parseKey("spend", key);
  if (!id) return null;
  const described = await keyGuard(env, id).describe(await hashSecret(key), run);
  return described.ok ? described : null;
}

/**
 * Whether a key may call a model by this id: a provider configured for a route of the key's shape, the id in the
 * key's model scope as admission decides it (catalog/scope.ts), its provider allowed, and a price if the key has a
 * spend limit. The list and admission share the scope rule, so every listed id is admitted.
 */
function callable(env: AppEnv["Bindings"], cfg: KeyConfig, { id, entry }: NamedModel): boolean {
  const provider = providerOf(entry.provider);
  if (!provider) return false;
  const routes: RouteKind[] =
    cfg.requestShape === "anthropic" ? ["messages"] : ["chat", "responses", "embeddings", ...entry.serves];
  const { providers, production } = gatewayConfig(env);
  const configured = routes.some(
    (r) => typeof resolveUpstream(providers[provider.id], production, provider, r) === "object",
  );
  return (
    configured &&
    allowsModel(cfg.allowedModels, id) &&
    (!cfg.allowedProviders || cfg.allowedProviders.includes(entry.provider)) &&
    (!cfg.spendLimit || entry.schedule !== null)
  );
}

/** Who asks about models: which ids it may call, and a spend key's `allowed_models` (its own models listed too). */
interface Asker {
  accepts: (m: NamedModel) => boolean;
  allowed: readonly string[] | null;
}

/**
 * A spend key sees only what it may call, in its own dialect; a wallet key or no key sees the whole catalog in
 * the OpenAI shape.
 */
async function askerOf(c: Context<AppEnv>): Promise<Asker> {
  const key = spendKeyFrom(c.req.raw.headers);
  if (key && keyKindOf(key) === "wallet") {
    if (!(await walletOf(controlD1(c.env), key))) throw new ApiError("unauthorized", "Invalid wallet secret key.");
    return { accepts: () => true, allowed: null };
  }
  if (!key) return { accepts: () => true, allowed: null };
  const described = await describeKey(c.env, key);
  if (!described) throw invalidKey();
  c.set("dialect", described.config.requestShape);
  return { accepts: (m) => callable(c.env, described.config, m), allowed: described.config.allowedModels };
}

const openaiModel = ({ id, entry }: NamedModel) => ({
  id,
  object: "model" as const,
  created: entry.created,
  owned_by: entry.provider,
});
/** Anthropic's model object: `display_name` as Anthropic writes them ("Claude Sonnet 4.5"). */
const anthropicModel = ({ id, entry }: NamedModel) => ({
  type: "model" as const,
  id,
  display_name: displayName(id),
  created_at: new Date(entry.created * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
});

/** `claude-sonnet-4-5-20250929` → `Claude Sonnet 4.5`; `gpt-4o-mini` → `Gpt 4o Mini`. */
export function displayName(id: string): string {
  const words = id
    .replace(/-\d{8}$/, "")
    .split(/[-_/]/)
    .filter(Boolean);
  const out: string[] = [];
  for (const w of words) {
    const last = out[out.length - 1];
    if (/^\d+$/.test(w) && last && /^\d+(\.\d+)*$/.test(last)) out[out.length - 1] = `${last}.${w}`;
    else out.push(w.charAt(0).toUpperCase() + w.slice(1));
  }
  return out.join(" ");
}

const AnthropicPage = z.object({
  limit: z._default(
    z.pipe(
      z.string().check(z.regex(/^([1-9][0-9]{0,2}|1000)$/, "must be a whole number from 1 to 1000")),
      z.transform(Number),
    ),
    20,
  ),
  before_id: z.optional(z.string()),
  after_id: z.optional(z.string()),
});

/** `GET /v1/models`: the OpenAI list, or for an Anthropic-shaped key the Anthropic list with its paging. */
keyRoutes.get("/v1/models", async (c) => {
  const asker = await askerOf(c);
  const catalog = await getCatalog(controlD1(c.env), (p) => c.executionCtx.waitUntil(p));
  const models = [...catalog.models(), ...ownModels(catalog, asker.allowed)].filter(asker.accepts);
  c.header(requestIdHeader(c.get("dialect") ?? "openai"), c.get("requestId"));
  if (c.get("dialect") !== "anthropic") return c.json({ object: "list" as const, data: models.map(openaiModel) });
  const parsed = z.safeParse(AnthropicPage, c.req.query());
  if (!parsed.success) throw validationError(parsed.error.issues, "query");
  const { limit, before_id: before, after_id: after } = parsed.data;
  const at = (id: string | undefined) => (id === undefined ? -1 : models.findIndex((m) => m.id === id));
  let start = 0;
  let end = models.length;
  if (after !== undefined) start = at(after) + 1;
  if (before !== undefined) end = Math.max(0, at(before));
  // Before an id, a page is the `limit` models just before it; otherwise the `limit` from the start.
  const slice =
    before !== undefined ? models.slice(Math.max(start, end - limit), end) : models.slice(start, end).slice(0, limit);
  const first = slice[0];
  const last = slice[slice.length - 1];
  const hasMore = before !== undefined ? models.indexOf(first as NamedModel) > start : start + slice.length < end;
  return c.json({
    data: slice.map(anthropicModel),
    has_more: slice.length > 0 && hasMore,
    first_id: first?.id ?? null,
    last_id: last?.id ?? null,
  });
});

/**
 * `GET /v1/models/{id}` (ids may hold slashes): one model the caller may use, in its dialect, under the id asked
 * for (an alias or snapshot resolves as a request's would); else 404.
 */
keyRoutes.get("/v1/models/:id{.+}", async (c) => {
  const { accepts } = await askerOf(c);
  const id = c.req.param("id");
  const resolved = (await getCatalog(controlD1(c.env), (p) => c.executionCtx.waitUntil(p))).resolve(id);
  const model = resolved && { id, entry: resolved.entry };
  if (!model || !accepts(model)) {
    throw new ApiError("model_not_found", `The model '${id}' does not exist or this key may not use it.`, {
      param: "model",
    });
  }
  c.header(requestIdHeader(c.get("dialect") ?? "openai"), c.get("requestId"));
  return c.json(c.get("dialect") === "anthropic" ? anthropicModel(model) : openaiModel(model));
});

/**
 * `GET /v1/key`: the calling key's own view — limits, usage, what is left and when it resets (never its secret);
 * with `?run=<id>`, that run's figures too (a malformed id is a 400 in the key's dialect, once the key is known).
 */
keyRoutes.get("/v1/key", async (c) => {
  const key = spendKeyFrom(c.req.raw.headers);
  const run = c.req.query("run");
  const valid = run === undefined || RUN_ID.test(run);
  const described = key ? await describeKey(c.env, key, valid ? run : undefined) : null;
  if (!described) throw invalidKey();
  c.set("dialect", described.config.requestShape);
  c.header(requestIdHeader(described.config.requestShape), c.get("requestId"));
  if (!valid) {
    throw new ApiError("invalid_request", `run: ${RUN_ID_RULE}`, { param: "run" });
  }
  // A key its own status calls active may still be stopped by an ancestor's pause: say so where its holder looks.
  const view = { ...liveKeyView(described.record, described.snapshot), stopped_by: described.stoppedBy ?? null };
  if (run === undefined) return c.json(view);
  return c.json({ ...view, run: described.run ? runView(described.record, described.run) : null });
});
