import { type Catalog, type ModelEntry, pricesAt } from "../catalog/catalog.ts";
import type { Prices, Usage } from "../catalog/pricing.ts";
import type { GatewayConfig } from "../config.ts";
import type { AdmitInput, RequestShape } from "../guard/types.ts";
import type { RouteKind } from "../providers/registry.ts";
import { type HoldBounds, holdBounds } from "./hold.ts";
import { mediaPlan } from "./media.ts";
import type { ParsedBody } from "./request-body.ts";
import { unpricedCallFee } from "./server-tools.ts";
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

/** What the gateway decides about a request before asking the key's KeyGuard: no I/O, no clock but `now`. */
export interface AdmissionPlan {
  target: Target;
  /** changes to the client's JSON the gateway must make whatever the guard says (usage asked for, model id) */
  edits: Record<string, unknown>;
  /** the body with those edits, serialized once (null: the client's bytes go as they are) */
  edited: string | null;
  /** remove the usage-only chunk the gateway asked for on the client's behalf */
  stripUsageChunk: boolean;
  /** this request's prices (the model's in force now, with a picture's size/quality price) */
  prices: Prices | null;
  /** the most the provider can bill (null when the catalog does not know the model) */
  bounds: HoldBounds | null;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: Usage | null;
  /** what the guard is asked to admit against */
  guardTarget: AdmitInput["target"];
  unavailable: AdmitInput["unavailable"];
}

/**
 * Steps 2–3 of a proxied request as one pure function: the model's target, the JSON edits the gateway owes the
 * provider or the client, the prices in force, and the hold's bounds (hold.ts, media.ts, server-tools.ts).
 */
export function planAdmission(
  config: Pick<GatewayConfig, "providers" | "production">,
  route: RouteSpec,
  body: ParsedBody,
  byteLength: number,
  headers: Headers,
  catalog: Catalog,
  now: number,
): AdmissionPlan {
  // A multipart body is forwarded byte for byte: its model must be named as the provider names it.
  const resolved = catalog.resolve(body.model);
  const resolution = body.file && resolved && resolved.upstreamModel !== body.model ? undefined : resolved;
  const target = resolveTarget(config, resolution?.entry, route);
  const edits: Record<string, unknown> = {};
  const stripUsageChunk = asksForUsage(route, body, target);
  if (stripUsageChunk) edits.stream_options = { ...(body.streamOptions ?? {}), include_usage: true };
  if (resolution && resolution.upstreamModel !== body.model) edits.model = resolution.upstreamModel;
  const edited = Object.keys(edits).length ? JSON.stringify({ ...body.json, ...edits }) : null;

  const entry = target.kind === "unknown" ? null : target.entry;
  const forwardedBytes = edited === null ? byteLength : encoder.encode(edited).byteLength;
  const held = entry ? holdOf(route, body, forwardedBytes, headers, entry, now) : null;
  const unavailable = target.kind === "unavailable" ? { code: target.code, message: target.message } : undefined;
  return {
    target,
    edits,
    edited,
    stripUsageChunk,
    prices: held?.prices ?? null,
    bounds: held?.bounds ?? null,
    knownUsage: held?.knownUsage ?? null,
    guardTarget: held?.guardTarget ?? null,
    unavailable,
  };
}

/**
 * A known model's prices in force and the hold's bounds: the text's (hold.ts), its media's (media.ts), and the
 * per-call fees no price covers (server-tools.ts), with what the guard needs to admit against them.
 */
function holdOf(
  route: RouteSpec,
  body: ParsedBody,
  forwardedBytes: number,
  headers: Headers,
  entry: ModelEntry,
  now: number,
) {
  const modelPrices = pricesAt(entry, new Date(now));
  // Images and audio: priced by the request's units where the provider reports no tokens (media.ts).
  const media = mediaPlan(route.kind, body, entry, modelPrices);
  const prices = media ? media.prices : modelPrices;
  // An uploaded file is not text input: only the form's text fields count toward the input bound.
  const bounds = holdBounds(route.kind, body, forwardedBytes - (body.file?.size ?? 0), headers, entry);
  if (media) {
    bounds.inputTokens += media.mediaInputTokens;
    bounds.counts = { ...bounds.counts, ...media.counts };
    if (media.unmetered && media.unpriced) bounds.unbounded ??= media.unpriced;
  }
  const unpricedTool = prices ? unpricedCallFee(bounds.counts, prices.rates) : null;
  if (unpricedTool) {
    bounds.unbounded ??=
      `The request may call ${unpricedTool}, billed per call, and no price for those calls by '${entry.id}' is ` +
      "known, so the gateway cannot hold or charge them. This spend key has a spend limit: remove the tool, or use " +
      "a key without one.";
  }
  const unpricedNote = media?.unpriced ?? (prices ? undefined : `The model '${entry.id}' has no price.`);
  const guardTarget = {
    provider: entry.provider,
    pricedModel: entry.id,
    prices,
    worst: worstOf(bounds),
    clampable: bounds.clampFields.length > 0,
    ...(unpricedNote ? { unpricedNote } : {}),
    ...(bounds.note ? { holdNote: bounds.note } : {}),
    ...(bounds.unbounded ? { unbounded: bounds.unbounded } : {}),
    ...(bounds.tokensUnbounded ? { tokensUnbounded: bounds.tokensUnbounded } : {}),
  };
  return { prices, bounds, knownUsage: media?.knownUsage ?? null, guardTarget };
}

/** A chat or completions stream whose provider reports usage only when asked, and whose client did not ask. */
function asksForUsage(route: RouteSpec, body: ParsedBody, target: Target): boolean {
  const asks = target.kind === "ready" && target.provider.streamUsage === "ask";
  const usageOption = route.kind === "chat" || route.kind === "completions";
  return usageOption && body.stream && asks && body.streamOptions?.include_usage !== true;
}

/** The worst case a hold covers, from the bounds. */
export const worstOf = (b: HoldBounds) => ({
  inputTokens: b.inputTokens,
  outputTokens: b.outputTokens,
  choices: b.choices,
  extraOutputTokens: b.extraOutputTokens,
  counts: b.counts,
  serviceTier: b.serviceTier,
});
