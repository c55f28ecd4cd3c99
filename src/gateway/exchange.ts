import type { Context } from "hono";
import { chargeFor, costOf } from "../catalog/pricing.ts";
import { gatewayConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../lib/errors.ts";
import { formatUsd } from "../lib/money.ts";
import type { Admitted, RouteSpec } from "./admission.ts";
import {
  BUDGET_HEADER,
  CLAMP_HEADER,
  COST_HEADER,
  downstreamHeaders,
  requestIdHeader,
  setRateHeaders,
  upstreamHeaders,
} from "./headers.ts";
import { meteredStream } from "./metered-stream.ts";
import { usageReader } from "./usage.ts";

/** One decoder for the isolate (a whole-buffer decode keeps no state). */
const decoder = new TextDecoder();
const usd = (nanos: number | null) => (nanos === null ? "unlimited" : formatUsd(nanos));

/**
 * Steps 4–6: forward with the provider's key, answer the client, settle the hold. Every path settles through
 * `a.settlement` exactly once: errors release the hold, a cut answer is charged what was seen.
 */
export async function exchange(c: Context<AppEnv>, route: RouteSpec, a: Admitted): Promise<Response> {
  const config = gatewayConfig(c.env);
  const { upstream, provider } = a.target;
  const { settlement, admission, boundCost } = a;
  const dialect = admission.shape;
  const setCostHeaders = (headers: Headers, cost: number) => {
    if (!a.metered) return;
    const left = admission.budget.remainingNanos;
    headers.set(COST_HEADER, formatUsd(cost));
    headers.set(BUDGET_HEADER, usd(left === null ? null : Math.max(0, left + admission.holdNanos - cost)));
  };
  const abort = new AbortController();
  // One deadline for the whole exchange: first byte and, for streams, the longest a stream may run.
  const timer = setTimeout(() => abort.abort(), config.upstreamTimeoutMs);
  const release = async (httpStatus: number | null) => {
    clearTimeout(timer);
    await settlement.settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus });
  };
  let res: Response;
  try {
    res = await fetch(upstream.url, {
      method: "POST",
      headers: upstreamHeaders(c.req.raw.headers, provider.auth, upstream.apiKey),
      body: a.outBody,
      signal: abort.signal,
      redirect: "manual",
    });
  } catch (err) {
    await release(null);
    if (abort.signal.aborted) throw new ApiError("upstream_timeout", "The provider did not answer in time.");
    console.error("upstream unreachable", upstream.url, err instanceof Error ? err.message : String(err));
    throw new ApiError("upstream_unreachable", "The provider could not be reached.");
  }
  if (res.status >= 300 && res.status < 400) {
    // Provider APIs do not redirect; following (or relaying) one could point a client anywhere.
    await res.body?.cancel();
    await release(res.status);
    throw new ApiError(
      "upstream_unreachable",
      "The provider answered with a redirect, which the gateway does not follow.",
    );
  }

  const headers = downstreamHeaders(res.headers);
  headers.set(requestIdHeader(dialect), c.get("requestId"));
  setRateHeaders(headers, dialect, admission.rate);
  if (admission.clampedOutputTokens !== undefined) headers.set(CLAMP_HEADER, String(admission.clampedOutputTokens));
  const reader = usageReader(provider.id, route.kind);
  const tier = () => reader.serviceTier() ?? a.serviceTier;
  const body = res.body;
  if (body && (res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    // 5b. Forwarded as it arrives; settled in the stream's end, before the client sees it close. Its cost is
    // not known yet: the budget after its hold is.
    headers.set(BUDGET_HEADER, usd(admission.budget.remainingNanos));
    const stream = meteredStream({
      upstream: body,
      ok: res.ok,
      dialect,
      reader,
      stripUsageChunk: a.stripUsageChunk,
      abort,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
      drainMs: config.disconnectDrainMs,
      settle: async (status) => {
        clearTimeout(timer);
        const usage = reader.usage() ?? a.knownUsage;
        // Cut before the final usage: the input the provider already reported (else the hold's bound) and
        // the output estimated from the text delivered; never more than the hold.
        const estimate = reader.estimate();
        const fallbackNanos =
          estimate.inputKnown && a.prices
            ? costOf(estimate.usage, a.prices, tier()).totalNanos
            : boundCost(estimate.usage.output_tokens ?? 0);
        await settlement.settle({
          status,
          usage,
          ...(usage ? {} : { estimate: estimate.usage }),
          fallbackNanos,
          responseId: reader.responseId(),
          httpStatus: res.status,
          serviceTier: tier(),
        });
      },
    });
    return new Response(stream, { status: res.status, headers });
  }

  const json = (res.headers.get("content-type") ?? "").includes("json");
  if (body && res.ok && !json && (route.kind === "speech" || route.kind === "transcriptions")) {
    // 5c. Speech audio, or a transcription as plain text/srt/vtt: passed through as it arrives, byte for byte.
    // Speech is priced by its request (characters), so it settles at once, in the background; a plain-text
    // transcription carries no usage and is charged its bound. The deadline (timer) still bounds the stream.
    const usage = a.knownUsage;
    void settlement.afterAnswer({
      status: "completed",
      usage,
      fallbackNanos: boundCost(0),
      responseId: null,
      httpStatus: res.status,
    });
    const cost = chargeFor(usage, a.prices, admission.holdNanos, boundCost(0), a.serviceTier).totalNanos;
    setCostHeaders(headers, cost);
    return new Response(body, { status: res.status, headers });
  }

  // 5a. JSON: read it whole, then answer at once. The settle follows in the background (the request's
  // waitUntil): the hold stays open until it lands, so the cap is as hard as if the answer had waited for it.
  let payload: ArrayBuffer;
  try {
    payload = await res.arrayBuffer();
  } catch {
    clearTimeout(timer);
    const fallbackNanos = boundCost(0);
    await settlement.settle({ status: "error", usage: null, fallbackNanos, responseId: null, httpStatus: res.status });
    throw new ApiError(
      abort.signal.aborted ? "upstream_timeout" : "upstream_unreachable",
      "The provider's response was cut off.",
    );
  }
  clearTimeout(timer);
  if (res.ok) {
    try {
      reader.read(JSON.parse(decoder.decode(payload)));
    } catch {
      // not JSON: no usage
    }
  }
  const usage = reader.usage() ?? a.knownUsage;
  // A success without usage is charged its bound: an unmetered success is never free. Errors release.
  const fallbackNanos = res.ok ? boundCost(payload.byteLength) : 0;
  void settlement.afterAnswer({
    status: res.ok ? "completed" : "error",
    usage,
    fallbackNanos,
    responseId: reader.responseId(),
    httpStatus: res.status,
    serviceTier: tier(),
  });
  // The same charge the KeyGuard applies, computed here from the same prices and usage.
  setCostHeaders(headers, chargeFor(usage, a.prices, admission.holdNanos, fallbackNanos, tier()).totalNanos);
  return new Response(payload, { status: res.status, headers });
}
