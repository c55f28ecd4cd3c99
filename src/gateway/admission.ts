import type { Context } from "hono";
import { getCatalog } from "../catalog/catalog.ts";
import { gatewayConfig } from "../config.ts";
import { type AppEnv, keyGuard } from "../env.ts";
import type { AdmitResult, RequestShape } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashSecret, parseKey } from "../lib/keys.ts";
import { type Prices, type TokenUsage, worstCaseNanos } from "../lib/money.ts";
import type { RouteKind } from "../providers/registry.ts";
import { holdBounds } from "./hold.ts";
import { mediaPlan } from "./media.ts";
import { metadataFrom, parseBody, parseForm } from "./request-body.ts";
import { Settlement, sleep } from "./settlement.ts";
import { resolveTarget, type Target } from "./target.ts";

export interface RouteSpec {
  kind: RouteKind;
  shape: RequestShape;
  /** the path as the ledger records it */
  endpoint: string;
  /** the model when the body names none (the API's own default) */
  defaultModel?: string;
}

/** An admitted request: its hold is placed, and it must be settled whatever happens next. */
export interface Admitted {
  target: Extract<Target, { kind: "ready" }>;
  /** what goes upstream: the client's bytes, or its JSON with `stream_options.include_usage` set */
  outBody: BodyInit;
  /** remove the usage-only chunk the gateway asked for on the client's behalf */
  stripUsageChunk: boolean;
  /** false for count_tokens: never counted or charged */
  metered: boolean;
  admission: Extract<AdmitResult, { ok: true }>;
  /** the most `outputTokens` of output can cost with this request's input bound (a cut answer's charge) */
  boundCost: (outputTokens: number) => number;
  /** this request's prices (the model's, with an image's size/quality price where it applies) */
  prices: Prices | null;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: TokenUsage | null;
  settlement: Settlement;
}

/**
 * Steps 1–3 of a proxied request: the credential (refused with no I/O when malformed), the body, the model's
 * target and the hold's bounds, then one RPC to the key's KeyGuard that authenticates, applies every rule and
 * places the hold. Refusals are thrown as ApiErrors in the key's dialect (set on the context once known).
 */
export async function admit(c: Context<AppEnv>, route: RouteSpec): Promise<Admitted> {
  const started = Date.now();
  const env = c.env;
  const config = gatewayConfig(env);
  const key = spendKeyFrom(c.req.raw.headers);
  const spendKeyId = key ? parseKey("spend", key) : null;
  if (!key || !spendKeyId) throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

  const bytes = await c.req.arrayBuffer();
  const contentType = c.req.header("content-type") ?? "";
  const body = contentType.startsWith("multipart/form-data")
    ? await parseForm(bytes, contentType, route.defaultModel)
    : parseBody(bytes, route.defaultModel);
  const metadata = metadataFrom(c.req.raw.headers);
  const entry = (await getCatalog(env.DB, (p) => c.executionCtx.waitUntil(p))).get(body.model);
  const target = resolveTarget(env as unknown as Record<string, unknown>, entry, route);

  let outBody: BodyInit = bytes;
  let outBytes = bytes.byteLength;
  let stripUsageChunk = false;
  const streamOptions = body.json.stream_options as Record<string, unknown> | undefined;
  const asksUsage = target.kind === "ready" && target.provider.streamUsage === "ask";
  const usageOption = route.kind === "chat" || route.kind === "completions";
  if (usageOption && body.stream && asksUsage && streamOptions?.include_usage !== true) {
    stripUsageChunk = true;
    const text = JSON.stringify({ ...body.json, stream_options: { ...(streamOptions ?? {}), include_usage: true } });
    outBody = text;
    outBytes = new TextEncoder().encode(text).byteLength;
  }
  const entryOf = target.kind === "unknown" ? null : target.entry;
  // Images and audio: priced by the request's units where the provider reports no tokens (media.ts).
  const plan = entryOf ? mediaPlan(route.kind, body, entryOf) : null;
  const prices = plan ? plan.prices : (entryOf?.prices ?? null);
  // An uploaded file is not text input: only the form's text fields count toward the input bound.
  const textBytes = outBytes - (body.file?.size ?? 0);
  const bounds = entryOf ? holdBounds(route.kind, body, textBytes, c.req.raw.headers, entryOf) : null;
  if (bounds && plan) {
    bounds.inputTokens += plan.mediaInputTokens;
    if (plan.unpriced) bounds.unbounded ??= plan.unpriced;
  }
  const units = plan?.units ?? 0;
  const boundCost = (outputTokens: number) =>
    prices && bounds
      ? worstCaseNanos(bounds.inputTokens, Math.min(bounds.outputTokens, outputTokens), prices, units)
      : 0;

  const guard = keyGuard(env, spendKeyId);
  const metered = route.kind !== "count_tokens";
  if (config.guardDelayMs) await sleep(config.guardDelayMs);
  const admission = await guard.admit({
    requestId: c.get("requestId"),
    endpoint: route.endpoint,
    stream: body.stream,
    metadata,
    secretHash: await hashSecret(key),
    routeShape: route.shape,
    model: body.model,
    target:
      entryOf && bounds
        ? {
            provider: entryOf.provider,
            prices,
            worstCaseNanos: boundCost(bounds.outputTokens),
            ...(bounds.note ? { holdNote: bounds.note } : {}),
            ...(bounds.unbounded ? { unbounded: bounds.unbounded } : {}),
          }
        : null,
    ...(target.kind === "unavailable" ? { unavailable: { code: target.code, message: target.message } } : {}),
    metered,
    maxInflight: config.maxInflightPerKey,
    holdTtlMs: config.holdTtlMs,
  });
  if (admission.shape) c.set("dialect", admission.shape);
  if (!admission.ok) {
    const headers: Record<string, string> = {};
    if (admission.terminal) headers["x-should-retry"] = "false";
    if (admission.retryAfterMs !== undefined) {
      headers["retry-after"] = String(Math.ceil(admission.retryAfterMs / 1000));
      if (!admission.terminal) headers["retry-after-ms"] = String(admission.retryAfterMs);
    }
    throw new ApiError(admission.code, admission.message, {
      headers,
      ...(admission.details ? { details: admission.details } : {}),
    });
  }
  const settlement = new Settlement(guard, c.get("requestId"), started, config.guardDelayMs);
  // The guard refuses unknown and unavailable targets, so an admitted request has a ready one; were it not so,
  // the hold is released rather than left to expire.
  if (target.kind !== "ready") {
    await settlement.settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: null });
    throw new ApiError("internal_error", "The gateway hit an internal error. Try again.");
  }
  const knownUsage = plan?.knownUsage ?? null;
  return { target, outBody, stripUsageChunk, metered, admission, boundCost, settlement, prices, knownUsage };
}
