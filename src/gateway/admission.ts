import type { Context } from "hono";
import { getCatalog, pricesAt } from "../catalog/catalog.ts";
import { type Prices, type Usage, worstCaseNanos } from "../catalog/pricing.ts";
import { gatewayConfig } from "../config.ts";
import { controlD1 } from "../db/client.ts";
import type { AppEnv } from "../env.ts";
import { keyGuard } from "../guard/stub.ts";
import type { AdmitResult, RequestShape } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashSecret, parseKey } from "../lib/keys.ts";
import type { RouteKind } from "../providers/registry.ts";
import { type HoldBounds, holdBounds } from "./hold.ts";
import { mediaPlan } from "./media.ts";
import { metadataFrom, parseBody, parseForm } from "./request-body.ts";
import { DEFAULT_TOOL_CALL_LIMIT, unpricedCallFee } from "./server-tools.ts";
import { Settlement, sleep } from "./settlement.ts";
import { resolveTarget, type Target } from "./target.ts";

const encoder = new TextEncoder();

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
  /** what goes upstream: the client's bytes, or its JSON with the gateway's changes (below) */
  outBody: BodyInit;
  /** remove the usage-only chunk the gateway asked for on the client's behalf */
  stripUsageChunk: boolean;
  /** false for count_tokens: never counted or charged */
  metered: boolean;
  admission: Extract<AdmitResult, { ok: true }>;
  /** the most a cut answer with `outputTokens` of output can cost, everything else at its worst case */
  boundCost: (outputTokens: number) => number;
  /** this request's prices (the model's in force at admission, with a picture's size/quality price) */
  prices: Prices | null;
  /** the service tier the request asked for */
  serviceTier: string | null;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: Usage | null;
  settlement: Settlement;
}

/**
 * Steps 1–3 of a proxied request: the credential (refused with no I/O when malformed), the body, the model's
 * target and the hold's bounds, then one RPC to the key's KeyGuard that authenticates, applies every rule and
 * places the hold. Refusals are thrown as ApiErrors in the key's dialect (set on the context once known).
 * The JSON sent upstream is the client's, changed only where the gateway must: usage asked for in a stream,
 * the model id without a `provider/` prefix, an output limit the budget lowered, tool-call limits a
 * spend-limited key's hold relies on.
 */
export async function admit(c: Context<AppEnv>, route: RouteSpec): Promise<Admitted> {
  const started = Date.now();
  const env = c.env;
  const config = gatewayConfig(env);
  const key = spendKeyFrom(c.req.raw.headers);
  const spendKeyId = key ? parseKey("spend", key) : null;
  if (!key || !spendKeyId) throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

  // The secret's hash is computed while the body arrives.
  const secretHash = hashSecret(key);
  const bytes = await c.req.raw.arrayBuffer();
  const contentType = c.req.header("content-type") ?? "";
  const body = contentType.startsWith("multipart/form-data")
    ? await parseForm(bytes, contentType, route.defaultModel)
    : parseBody(bytes, route.defaultModel);
  // Audio is measured in the form; a transcription sent any other way would be held for none.
  if (route.kind === "transcriptions" && !body.file) {
    throw new ApiError("invalid_request", "file: a file is required, sent as multipart/form-data.", { param: "file" });
  }
  const metadata = metadataFrom(c.req.raw.headers);
  const catalog = await getCatalog(controlD1(env), (p) => c.executionCtx.waitUntil(p));
  // A multipart body is forwarded byte for byte: its model must be named as the provider names it.
  const resolved = catalog.resolve(body.model);
  const resolution = body.file && resolved && resolved.upstreamModel !== body.model ? undefined : resolved;
  const target = resolveTarget(env, resolution?.entry, route);

  const edits: Record<string, unknown> = {};
  let stripUsageChunk = false;
  const streamOptions = body.streamOptions;
  const asksUsage = target.kind === "ready" && target.provider.streamUsage === "ask";
  const usageOption = route.kind === "chat" || route.kind === "completions";
  if (usageOption && body.stream && asksUsage && streamOptions?.include_usage !== true) {
    stripUsageChunk = true;
    edits.stream_options = { ...(streamOptions ?? {}), include_usage: true };
  }
  if (resolution && resolution.upstreamModel !== body.model) edits.model = resolution.upstreamModel;
  const entry = target.kind === "unknown" ? null : target.entry;
  const modelPrices = entry ? pricesAt(entry, new Date(started)) : null;
  // Images and audio: priced by the request's units where the provider reports no tokens (media.ts).
  const plan = entry ? mediaPlan(route.kind, body, entry, modelPrices) : null;
  const prices = plan ? plan.prices : modelPrices;
  // The body as sent upstream so far (the client's bytes, or its JSON with the edits above), serialized once.
  const edited = Object.keys(edits).length ? JSON.stringify({ ...body.json, ...edits }) : null;
  const forwardedBytes = edited === null ? bytes.byteLength : encoder.encode(edited).byteLength;
  // An uploaded file is not text input: only the form's text fields count toward the input bound.
  const textBytes = forwardedBytes - (body.file?.size ?? 0);
  const bounds = entry ? holdBounds(route.kind, body, textBytes, c.req.raw.headers, entry) : null;
  if (bounds && plan) {
    bounds.inputTokens += plan.mediaInputTokens;
    bounds.counts = { ...bounds.counts, ...plan.counts };
    if (plan.unmetered && plan.unpriced) bounds.unbounded ??= plan.unpriced;
  }
  const unpricedTool = bounds && prices ? unpricedCallFee(bounds.counts, prices.rates) : null;
  if (bounds && unpricedTool && entry) {
    bounds.unbounded ??=
      `The request may call ${unpricedTool}, billed per call, and no price for those calls by '${entry.id}' is ` +
      "known, so the gateway cannot hold or charge them. This spend key has a spend limit: remove the tool, or use " +
      "a key without one.";
  }
  const unpricedNote = plan?.unpriced ?? (entry && !prices ? `The model '${entry.id}' has no price.` : undefined);

  const guard = keyGuard(env, spendKeyId);
  const metered = route.kind !== "count_tokens";
  if (config.guardDelayMs) await sleep(config.guardDelayMs);
  const admission = await guard.admit({
    requestId: c.get("requestId"),
    endpoint: route.endpoint,
    stream: body.stream,
    metadata,
    secretHash: await secretHash,
    routeShape: route.shape,
    model: body.model,
    target:
      entry && bounds
        ? {
            provider: entry.provider,
            pricedModel: entry.id,
            prices,
            worst: worstOf(bounds),
            clampable: bounds.clampFields.length > 0,
            ...(unpricedNote ? { unpricedNote } : {}),
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
  if (target.kind !== "ready" || !bounds) {
    await settlement.settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: null });
    throw new ApiError("internal_error", "The gateway hit an internal error. Try again.");
  }
  const granted = admission.clampedOutputTokens;
  const before = Object.keys(edits).length;
  if (granted !== undefined) for (const field of bounds.clampFields) edits[field] = granted;
  // The hold counted every server tool's calls up to a limit: a spend-limited key's request carries it.
  if (admission.budget.limitNanos !== null) applyToolCallLimits(body.json, bounds, edits);
  // Serialized again only when the admission added edits (or changed one: a clamped field the client sent).
  const changed = Object.keys(edits).length !== before || granted !== undefined;
  const outBody = changed ? JSON.stringify({ ...body.json, ...edits }) : (edited ?? bytes);
  const output = granted ?? bounds.outputTokens;
  const boundCost = (outputTokens: number) =>
    prices
      ? worstCaseNanos(
          {
            ...worstOf(bounds),
            choices: 1,
            extraOutputTokens: 0,
            outputTokens: Math.min(outputTokens, output * bounds.choices + bounds.extraOutputTokens),
          },
          prices,
        )
      : 0;
  const knownUsage = plan?.knownUsage ?? null;
  const serviceTier = bounds.serviceTier;
  return {
    target,
    outBody,
    stripUsageChunk,
    metered,
    admission,
    boundCost,
    settlement,
    prices,
    serviceTier,
    knownUsage,
  };
}

const worstOf = (b: HoldBounds) => ({
  inputTokens: b.inputTokens,
  outputTokens: b.outputTokens,
  choices: b.choices,
  extraOutputTokens: b.extraOutputTokens,
  counts: b.counts,
  serviceTier: b.serviceTier,
});

function applyToolCallLimits(json: Record<string, unknown>, bounds: HoldBounds, edits: Record<string, unknown>) {
  if (!bounds.toolCallLimits.length) return;
  const tools = Array.isArray(json.tools) ? [...json.tools] : [];
  for (const limit of bounds.toolCallLimits) {
    if (limit.field === "max_tool_calls") edits.max_tool_calls = DEFAULT_TOOL_CALL_LIMIT;
    else tools[limit.tool] = { ...(tools[limit.tool] as object), max_uses: DEFAULT_TOOL_CALL_LIMIT };
  }
  if (bounds.toolCallLimits.some((l) => l.field === "max_uses")) edits.tools = tools;
}
