import type { Context } from "hono";
import { getCatalog, type ModelEntry } from "../catalog/catalog.ts";
import { keyGuard, type AppEnv } from "../env.ts";
import type { AdmitResult, RequestShape, SettleInput } from "../guard/types.ts";
import { ApiError, renderError, toApiError, type Dialect, type ErrorCode } from "../lib/errors.ts";
import { hashSecret, parseKey } from "../lib/keys.ts";
import { formatUsd, worstCaseNanos } from "../lib/money.ts";
import { PROVIDERS, resolveUpstream, upstreamUrlAllowed, type RouteKind } from "../providers/registry.ts";
import { spendKeyFrom } from "./credential.ts";
import { BUDGET_HEADER, COST_HEADER, downstreamHeaders, requestIdHeader, setRateHeaders, upstreamHeaders } from "./headers.ts";
import { SseScanner } from "./sse.ts";
import { usageReader } from "./usage.ts";

export interface RouteSpec {
  kind: RouteKind;
  shape: RequestShape;
  /** the path as the ledger records it */
  endpoint: string;
}

/** After a client disconnects, how long the gateway keeps reading upstream to learn the usage. */
const DRAIN_MS = 30_000;

interface ParsedBody {
  json: Record<string, unknown>;
  model: string;
  stream: boolean;
  maxOutput: number | null;
}

function parseBody(bytes: ArrayBuffer): ParsedBody {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError("invalid_request", "We could not parse the JSON body of your request.", { param: "body" });
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new ApiError("invalid_request", "The request body must be a JSON object.", { param: "body" });
  }
  const body = json as Record<string, unknown>;
  if (typeof body.model !== "string" || body.model === "") {
    throw new ApiError("invalid_request", "model: you must provide a model parameter.", { param: "model" });
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    throw new ApiError("invalid_request", "stream: must be a boolean.", { param: "stream" });
  }
  let maxOutput: number | null = null;
  for (const field of ["max_tokens", "max_completion_tokens", "max_output_tokens"]) {
    const v = body[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new ApiError("invalid_request", `${field}: must be a non-negative integer.`, { param: field });
    }
    maxOutput = maxOutput === null ? v : Math.min(maxOutput, v);
  }
  return { json: body, model: body.model, stream: body.stream === true, maxOutput };
}

function metadataFrom(headers: Headers): Record<string, string> {
  const raw = headers.get("x-spendgate-metadata");
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const entries = Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string");
      if (entries.length <= 16 && entries.every(([k, v]) => k.length <= 64 && v.length <= 512)) return Object.fromEntries(entries);
    }
  } catch {
    // fall through
  }
  throw new ApiError("invalid_request", "x-spendgate-metadata: must be a JSON object of at most 16 string values.", { param: "x-spendgate-metadata" });
}

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

async function forward(
  c: Context<AppEnv>,
  route: RouteSpec,
  started: number,
  requestId: string,
  speak: (d: Dialect) => void,
): Promise<Response> {
  const env = c.env;
  // 1. The credential: a malformed key or a bad checksum is refused here, with no I/O.
  const key = spendKeyFrom(c.req.raw.headers);
  const spendKeyId = key ? parseKey("spend", key) : null;
  if (!key || !spendKeyId) {
    throw new ApiError("invalid_api_key", "Incorrect API key provided. You can create and manage spend keys with the Spendgate management API.");
  }

  // 2. The body (already size-limited by the route's middleware).
  const bytes = await c.req.arrayBuffer();
  const body = parseBody(bytes);
  const metadata = metadataFrom(c.req.raw.headers);
  const catalog = await getCatalog(env.DB, (p) => c.executionCtx.waitUntil(p));
  const entry: ModelEntry | undefined = catalog.get(body.model);
  const provider = entry ? PROVIDERS[entry.provider] : undefined;
  const upstream = provider ? resolveUpstream(env as unknown as Record<string, unknown>, provider, route.kind) : undefined;
  const production = env.SPENDGATE_ENV === "production";
  let unavailable: { code: ErrorCode; message: string } | undefined;
  if (upstream === "unsupported") {
    unavailable = { code: "invalid_request", message: `The model '${body.model}' (${entry!.provider}) is not served on ${route.endpoint}.` };
  } else if (upstream === "not_configured") {
    unavailable = { code: "provider_not_configured", message: `The provider '${entry!.provider}' is not configured on this gateway (set ${provider!.apiKeyVar}).` };
  } else if (upstream && !upstreamUrlAllowed(upstream.url, production)) {
    unavailable = { code: "provider_not_configured", message: `The provider '${entry!.provider}' has no valid base URL configured.` };
  }

  const modelMax = entry?.maxOutputTokens ?? 0;
  const maxOutput = route.kind === "embeddings" ? 0 : Math.min(body.maxOutput ?? modelMax, modelMax);
  // Tokens never outnumber the UTF-8 bytes of their text, so the body's size bounds the input tokens.
  const inputBound = bytes.byteLength;
  const worstCase = entry?.prices ? worstCaseNanos(inputBound, maxOutput, entry.prices) : 0;

  // 3. One RPC: authentication, the key's rules and limits, and the spend hold.
  const guard = keyGuard(env, spendKeyId);
  const admission: AdmitResult = await guard.admit({
    requestId,
    endpoint: route.endpoint,
    stream: body.stream,
    metadata,
    secretHash: await hashSecret(key),
    routeShape: route.shape,
    model: body.model,
    target: entry ? { provider: entry.provider, prices: entry.prices, worstCaseNanos: worstCase } : null,
    unavailable,
    metered: route.kind !== "count_tokens",
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
  const dialect: Dialect = admission.shape;
  const target = upstream as Exclude<typeof upstream, string | undefined>;

  // 4. Forward with the provider's key. OpenAI-shaped streams are asked for usage if the client did not.
  let outBody: BodyInit = bytes;
  let stripUsageChunk = false;
  if (route.kind === "chat" && body.stream) {
    const opts = body.json.stream_options as Record<string, unknown> | undefined;
    if (opts?.include_usage !== true) {
      stripUsageChunk = true;
      outBody = JSON.stringify({ ...body.json, stream_options: { ...(opts ?? {}), include_usage: true } });
    }
  }
  const metered = route.kind !== "count_tokens";
  const settle = (input: Omit<SettleInput, "requestId" | "latencyMs">) =>
    metered ? guard.settle({ ...input, requestId, latencyMs: Date.now() - started }) : Promise.resolve(null);
  /** What a response that ended without usage is charged: input bound + the output bytes seen, capped by the hold. */
  const partialCost = (outputBytes: number) =>
    entry?.prices ? worstCaseNanos(inputBound, Math.min(maxOutput, outputBytes), entry.prices) : 0;

  const timeoutMs = Number(env.UPSTREAM_TIMEOUT_MS) || 600_000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new ApiError("upstream_timeout", "The provider did not answer in time.")), timeoutMs);
  let res: Response;
  try {
    res = await fetch(target.url, {
      method: "POST",
      headers: upstreamHeaders(c.req.raw.headers, provider!, target.apiKey),
      body: outBody,
      signal: abort.signal,
      redirect: "manual",
    });
  } catch (err) {
    clearTimeout(timer);
    const timedOut = abort.signal.aborted;
    await settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: null });
    if (timedOut) throw new ApiError("upstream_timeout", "The provider did not answer in time.");
    console.error("upstream unreachable", target.url, err instanceof Error ? err.message : String(err));
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
  const isStream = (res.headers.get("content-type") ?? "").includes("text/event-stream") && res.body !== null;

  if (!isStream) {
    // 5a. JSON: read it whole, settle, then answer — the cost is counted before the client sees the body.
    let payload: ArrayBuffer;
    try {
      payload = await res.arrayBuffer();
    } catch {
      clearTimeout(timer);
      await settle({ status: "error", usage: null, fallbackNanos: partialCost(0), responseId: null, httpStatus: res.status });
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
    const usage = reader.usage();
    const settled = await settle({
      status: res.ok ? "completed" : "error",
      usage,
      // A success without usage is charged as its worst case: an unmetered success must never be free.
      fallbackNanos: res.ok ? partialCost(payload.byteLength) : 0,
      responseId: reader.responseId(),
      httpStatus: res.status,
    });
    if (settled) {
      headers.set(COST_HEADER, formatUsd(settled.costNanos));
      headers.set(BUDGET_HEADER, settled.remainingNanos === null ? "unlimited" : formatUsd(settled.remainingNanos));
    }
    return new Response(payload, { status: res.status, headers });
  }

  // 5b. A stream: forwarded event by event as it arrives; settled in the stream's end, before it closes.
  headers.set(BUDGET_HEADER, admission.budget.remainingNanos === null ? "unlimited" : formatUsd(admission.budget.remainingNanos));
  const scanner = new SseScanner((event) => {
    reader.read(event.data);
    const d = event.data as { choices?: unknown[]; usage?: unknown } | undefined;
    // The usage-only chunk we asked for on the client's behalf is removed again.
    return !(stripUsageChunk && d?.usage && Array.isArray(d.choices) && d.choices.length === 0);
  });
  const upstreamReader = res.body!.getReader();
  let outputBytes = 0;
  let finished = false;
  let inflight: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  const finish = async (status: SettleInput["status"]) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    await settle({
      status,
      usage: reader.usage(),
      fallbackNanos: partialCost(outputBytes),
      responseId: reader.responseId(),
      httpStatus: res.status,
    });
  };
  /** Client gone: keep reading upstream (bounded) to learn the usage, then settle. */
  const drain = async () => {
    const deadline = setTimeout(() => abort.abort(), DRAIN_MS);
    try {
      for (;;) {
        // The stream's own read may still be pending (one read at a time): its chunk is ours to meter.
        const pending = inflight;
        inflight = null;
        const { done, value } = await (pending ?? upstreamReader.read());
        if (done) break;
        outputBytes += value.byteLength;
        scanner.push(value);
      }
      scanner.end();
    } catch {
      // upstream cut too: charged from what was seen
    } finally {
      clearTimeout(deadline);
      await upstreamReader.cancel().catch(() => undefined);
      await finish("aborted");
    }
  };

  const encoder = new TextEncoder();
  let clientGone = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            inflight = upstreamReader.read();
            chunk = await inflight;
            inflight = null;
          } catch {
            if (clientGone) return;
            // The provider's stream broke after it started: say so in-band, as the provider would.
            await finish("error");
            controller.enqueue(encoder.encode(inBandError(dialect, abort.signal.aborted)));
            controller.close();
            return;
          }
          // After a cancel the drain owns the upstream reader; a read already in flight just lands here.
          if (clientGone) return;
          if (chunk.done) {
            const rest = scanner.end();
            if (rest) controller.enqueue(rest);
            if (res.ok && !reader.usage()) {
              // Ended before the provider's final usage: the connection was cut. Say so in-band.
              await finish("error");
              controller.enqueue(encoder.encode(inBandError(dialect, false)));
            } else {
              await finish(res.ok ? "completed" : "error");
            }
            controller.close();
            return;
          }
          outputBytes += chunk.value.byteLength;
          const parts = scanner.push(chunk.value);
          if (parts.length) {
            for (const p of parts) controller.enqueue(p);
            return;
          }
        }
      },
      cancel() {
        clientGone = true;
        c.executionCtx.waitUntil(drain());
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(stream, { status: res.status, headers });
}

function inBandError(dialect: Dialect, timedOut: boolean): string {
  const message = timedOut ? "The provider's stream exceeded the gateway's time limit." : "The provider's stream was interrupted.";
  if (dialect === "anthropic") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code: timedOut ? "upstream_timeout" : "upstream_interrupted" } })}\n\n`;
}

