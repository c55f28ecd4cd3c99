import type { Context } from "hono";
import { getCatalog } from "../catalog/catalog.ts";
import { keyGuard, type AppEnv } from "../env.ts";
import type { AdmitResult, RequestShape, SettleInput, SettleResult } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE, renderError, toApiError, type Dialect, type ErrorCode } from "../lib/errors.ts";
import { hashSecret, parseKey } from "../lib/keys.ts";
import { formatUsd, worstCaseNanos } from "../lib/money.ts";
import { PROVIDERS, resolveUpstream, type Provider, type RouteKind, type Upstream } from "../providers/registry.ts";
import { BUDGET_HEADER, COST_HEADER, downstreamHeaders, requestIdHeader, setRateHeaders, upstreamHeaders } from "./headers.ts";
import { meteredStream } from "./metered-stream.ts";
import { holdBounds } from "./hold.ts";
import { metadataFrom, parseBody, type ParsedBody } from "./request-body.ts";
import { usageReader } from "./usage.ts";

export interface RouteSpec {
  kind: RouteKind;
  shape: RequestShape;
  /** the path as the ledger records it */
  endpoint: string;
}

/** One proxied request, step by step (README "Architecture"). Errors speak the key's dialect. */
export async function proxy(c: Context<AppEnv>, route: RouteSpec): Promise<Response> {
  const started = Date.now();
  const requestId = c.get("requestId");
  let dialect: Dialect = route.shape;
  try {
    return await forward(c, route, started, requestId, (d) => (dialect = d));
  } catch (err) {
    return renderError(toApiError(err), dialect, requestId);
  }
}

async function forward(c: Context<AppEnv>, route: RouteSpec, started: number, requestId: string, speak: (d: Dialect) => void): Promise<Response> {
  const env = c.env;
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);

  // 1. The credential: a malformed key or a bad checksum is refused here, with no I/O.
  const key = spendKeyFrom(c.req.raw.headers);
  const spendKeyId = key ? parseKey("spend", key) : null;
  if (!key || !spendKeyId) throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE);

  // 2. The body (size-limited by the route's middleware), the model's catalog entry and its upstream.
  const bytes = await c.req.arrayBuffer();
  const body = parseBody(bytes);
  const metadata = metadataFrom(c.req.raw.headers);
  const entry = (await getCatalog(env.DB, waitUntil)).get(body.model);
  const provider = entry ? PROVIDERS[entry.provider] : undefined;
  const upstream = provider ? resolveUpstream(env as unknown as Record<string, unknown>, provider, route.kind) : undefined;
  let unavailable: { code: ErrorCode; message: string } | undefined;
  if (upstream === "unsupported") {
    unavailable = { code: "invalid_request", message: `The model '${body.model}' (${entry!.provider}) is not served on ${route.endpoint}.` };
  } else if (upstream === "not_configured") {
    unavailable = { code: "provider_not_configured", message: `The provider '${entry!.provider}' is not configured on this gateway (set ${provider!.apiKeyVar}).` };
  } else if (upstream === "bad_url") {
    unavailable = { code: "provider_not_configured", message: `The provider '${entry!.provider}' has no valid base URL configured.` };
  }
  // What goes upstream: the client's bytes, or — for OpenAI-shaped streams whose client did not ask for usage —
  // the body with `stream_options.include_usage` set (the usage chunk is removed again on the way back).
  let outBody: BodyInit = bytes;
  let outBytes = bytes.byteLength;
  let stripUsageChunk = false;
  const streamOptions = body.json.stream_options as Record<string, unknown> | undefined;
  if (route.kind === "chat" && body.stream && provider?.streamUsage === "ask" && streamOptions?.include_usage !== true) {
    stripUsageChunk = true;
    const text = JSON.stringify({ ...body.json, stream_options: { ...(streamOptions ?? {}), include_usage: true } });
    outBody = text;
    outBytes = new TextEncoder().encode(text).byteLength;
  }
  const bounds = entry ? holdBounds(route.kind, body, outBytes, c.req.raw.headers, entry) : null;
  /** The hold for `outputTokens` of output: the worst case at admission, a cut response's charge later. */
  const boundCost = (outputTokens: number) =>
    entry?.prices && bounds ? worstCaseNanos(bounds.inputTokens, Math.min(bounds.outputTokens, outputTokens), entry.prices) : 0;

  // 3. One RPC: authentication, the key's rules and limits, and the spend hold.
  const guard = keyGuard(env, spendKeyId);
  const metered = route.kind !== "count_tokens";
  const admission: AdmitResult = await guard.admit({
    requestId,
    endpoint: route.endpoint,
    stream: body.stream,
    metadata,
    secretHash: await hashSecret(key),
    routeShape: route.shape,
    model: body.model,
    target:
      entry && bounds
        ? {
            provider: entry.provider,
            prices: entry.prices,
            worstCaseNanos: boundCost(bounds.outputTokens),
            ...(bounds.note ? { holdNote: bounds.note } : {}),
            ...(bounds.unbounded ? { unbounded: bounds.unbounded } : {}),
          }
        : null,
    unavailable,
    metered,
    maxInflight: Number(env.MAX_INFLIGHT_PER_KEY) || 256,
    holdTtlMs: Number(env.HOLD_TTL_MS) || 900_000,
  });
  if (admission.shape) speak(admission.shape);
  if (!admission.ok) {
    const headers: Record<string, string> = {};
    if (admission.terminal) headers["x-should-retry"] = "false";
    if (admission.retryAfterMs !== undefined) {
      headers["retry-after"] = String(Math.ceil(admission.retryAfterMs / 1000));
      if (!admission.terminal) headers["retry-after-ms"] = String(admission.retryAfterMs);
    }
    throw new ApiError(admission.code, admission.message, { headers, ...(admission.details ? { details: admission.details } : {}) });
  }
  const dialect = admission.shape;

  let settledOnce: Promise<SettleResult | null> | undefined;
  const settle = (input: Omit<SettleInput, "requestId" | "latencyMs">) => {
    settledOnce ??= settleWithRetry(guard, { ...input, requestId, latencyMs: Date.now() - started });
    return settledOnce;
  };
  // From here the hold must be settled whatever happens to the client: waitUntil keeps the exchange (and
  // its settlement) running if the client disconnects before the answer.
  const work = exchange({ c, route, body, outBody, stripUsageChunk, metered, upstream: upstream as Upstream, provider: provider!, admission, dialect, requestId, boundCost, settle });
  waitUntil(work.then(() => settledOnce, () => settledOnce));
  return await work;
}

/**
 * Settles once more if the first RPC fails (settle is idempotent). If both fail the answer still goes out: the
 * hold stays open and its alarm charges it in full when it expires, so a lost settle never undercharges.
 */
async function settleWithRetry(guard: ReturnType<typeof keyGuard>, input: SettleInput): Promise<SettleResult | null> {
  try {
    return await guard.settle(input);
  } catch {
    try {
      return await guard.settle(input);
    } catch (err) {
      console.error("settle failed; the hold will expire and be charged", input.requestId, err instanceof Error ? err.message : String(err));
      return null;
    }
  }
}

interface Exchange {
  c: Context<AppEnv>;
  route: RouteSpec;
  body: ParsedBody;
  /** the client's request body, forwarded as is unless usage must be asked for */
  outBody: BodyInit;
  stripUsageChunk: boolean;
  /** false for count_tokens: its settle only frees its in-flight place, and it has no cost */
  metered: boolean;
  upstream: Upstream;
  provider: Provider;
  admission: Extract<AdmitResult, { ok: true }>;
  dialect: Dialect;
  requestId: string;
  boundCost: (outputTokens: number) => number;
  settle: (input: Omit<SettleInput, "requestId" | "latencyMs">) => Promise<SettleResult | null>;
}

/** 4–6: forward with the provider's key, answer the client, settle the hold before the answer ends. */
async function exchange(x: Exchange): Promise<Response> {
  const { c, route, upstream, admission, dialect, requestId, boundCost, settle, outBody, stripUsageChunk } = x;

  const abort = new AbortController();
  // One deadline for the whole exchange: first byte and, for streams, the longest a stream may run.
  const timer = setTimeout(() => abort.abort(), Number(c.env.UPSTREAM_TIMEOUT_MS) || 600_000);
  let res: Response;
  try {
    res = await fetch(upstream.url, {
      method: "POST",
      headers: upstreamHeaders(c.req.raw.headers, x.provider.auth, upstream.apiKey),
      body: outBody,
      signal: abort.signal,
      redirect: "manual",
    });
  } catch (err) {
    clearTimeout(timer);
    await settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: null });
    if (abort.signal.aborted) throw new ApiError("upstream_timeout", "The provider did not answer in time.");
    console.error("upstream unreachable", upstream.url, err instanceof Error ? err.message : String(err));
    throw new ApiError("upstream_unreachable", "The provider could not be reached.");
  }
  if (res.status >= 300 && res.status < 400) {
    // Provider APIs do not redirect; following (or relaying) one could point a client anywhere.
    clearTimeout(timer);
    await res.body?.cancel();
    await settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: res.status });
    throw new ApiError("upstream_unreachable", "The provider answered with a redirect, which the gateway does not follow.");
  }

  const headers = downstreamHeaders(res.headers);
  headers.set(requestIdHeader(dialect), requestId);
  setRateHeaders(headers, dialect, admission.rate);
  const reader = usageReader(route.kind);
  const isStream = res.body !== null && (res.headers.get("content-type") ?? "").includes("text/event-stream");

  if (isStream) {
    // 5b. Forwarded as it arrives; settled in the stream's end. Its cost is not known yet: the budget is.
    headers.set(BUDGET_HEADER, admission.budget.remainingNanos === null ? "unlimited" : formatUsd(admission.budget.remainingNanos));
    const stream = meteredStream({
      upstream: res.body!,
      ok: res.ok,
      dialect,
      reader,
      stripUsageChunk,
      abort,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
      drainMs: Number(c.env.DISCONNECT_DRAIN_MS) || 30_000,
      settle: async (status, outputBytes) => {
        clearTimeout(timer);
        await settle({ status, usage: reader.usage(), fallbackNanos: boundCost(outputBytes), responseId: reader.responseId(), httpStatus: res.status });
      },
    });
    return new Response(stream, { status: res.status, headers });
  }

  // 5a. JSON: read it whole, settle, then answer — the cost is counted before the client sees the body.
  let payload: ArrayBuffer;
  try {
    payload = await res.arrayBuffer();
  } catch {
    clearTimeout(timer);
    await settle({ status: "error", usage: null, fallbackNanos: boundCost(0), responseId: null, httpStatus: res.status });
    throw new ApiError(abort.signal.aborted ? "upstream_timeout" : "upstream_unreachable", "The provider's response was cut off.");
  }
  clearTimeout(timer);
  if (res.ok) {
    try {
      reader.read(JSON.parse(new TextDecoder().decode(payload)));
    } catch {
      // not JSON: no usage
    }
  }
  const settled = await settle({
    status: res.ok ? "completed" : "error",
    usage: reader.usage(),
    // A success without usage is charged its bound: an unmetered success is never free. Errors release.
    fallbackNanos: res.ok ? boundCost(payload.byteLength) : 0,
    responseId: reader.responseId(),
    httpStatus: res.status,
  });
  if (settled && x.metered) {
    headers.set(COST_HEADER, formatUsd(settled.costNanos));
    headers.set(BUDGET_HEADER, settled.remainingNanos === null ? "unlimited" : formatUsd(settled.remainingNanos));
  }
  return new Response(payload, { status: res.status, headers });
}
