import type { Context } from "hono";
import { chargeFor } from "../catalog/pricing.ts";
import { gatewayConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../lib/errors.ts";
import { errorText, log } from "../lib/log.ts";
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
import { type Ending, settleFacts } from "./settle-facts.ts";
import type { SettleFacts } from "./settlement.ts";
import { usageReader } from "./usage.ts";

/** One decoder for the isolate (a whole-buffer decode keeps no state). */
const decoder = new TextDecoder();
const usd = (nanos: number | null) => (nanos === null ? "unlimited" : formatUsd(nanos));

/**
 * Steps 5–6: forward with the provider's key, answer the client, settle the hold. Every path settles through
 * `a.settlement` exactly once, with the facts `settleFacts` makes of how the exchange ended.
 */
export async function exchange(c: Context<AppEnv>, route: RouteSpec, a: Admitted): Promise<Response> {
  const config = gatewayConfig(c.env);
  const abort = new AbortController();
  // One deadline for the whole exchange: first byte and, for streams, the longest a stream may run.
  const timer = setTimeout(() => abort.abort(), config.upstreamTimeoutMs);
  const reader = usageReader(a.target.provider.id, route.kind);
  const settle = (ending: Ending) => {
    clearTimeout(timer);
    return a.settlement.settle(settleFacts(ending, a, reader));
  };
  const res = await callUpstream(c, a, abort, settle);
  if (!res.ok) logRelayedError(a, res);
  const headers = answerHeaders(c, a, res);
  const body = res.body;
  const contentType = res.headers.get("content-type") ?? "";
  if (body && contentType.includes("text/event-stream")) {
    // 5b. Forwarded as it arrives; settled in the stream's end, before the client sees it close. Its cost is
    // not known yet: the budget after its hold is.
    headers.set(BUDGET_HEADER, usd(a.admission.budget.remainingNanos));
    const stream = meteredStream({
      upstream: body,
      ok: res.ok,
      dialect: a.admission.shape,
      reader,
      stripUsageChunk: a.stripUsageChunk,
      abort,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
      drainMs: config.disconnectDrainMs,
      settle: async (status) => void (await settle({ kind: "stream", status, httpStatus: res.status })),
      cut: (why) => log("error", "upstream.error", { ...a.log, status: res.status, error: why }),
    });
    return new Response(stream, { status: res.status, headers });
  }
  if (body && res.ok && !contentType.includes("json") && (route.kind === "speech" || route.kind === "transcriptions")) {
    // 5c. Speech audio, or a transcription as plain text/srt/vtt: passed through as it arrives, byte for byte,
    // settled at once in the background (the deadline still bounds the stream).
    const facts = settleFacts({ kind: "passthrough", httpStatus: res.status }, a, reader);
    void a.settlement.afterAnswer(facts);
    setCostHeaders(headers, a, facts);
    return new Response(body, { status: res.status, headers });
  }
  // 5a. JSON: read it whole, then answer at once. The settle follows in the background (the request's
  // waitUntil): the hold stays open until it lands, so the cap is as hard as if the answer had waited for it.
  let payload: ArrayBuffer;
  try {
    payload = await res.arrayBuffer();
  } catch (err) {
    await settle({ kind: "cut", httpStatus: res.status });
    const code = abort.signal.aborted ? "upstream_timeout" : "upstream_unreachable";
    throw new ApiError(code, "The provider's response was cut off.", { logText: `answer cut: ${errorText(err)}` });
  }
  clearTimeout(timer);
  if (res.ok) {
    try {
      reader.read(JSON.parse(decoder.decode(payload)));
    } catch {
      // not JSON: no usage
    }
  }
  const facts = settleFacts({ kind: "json", ok: res.ok, httpStatus: res.status, bytes: payload.byteLength }, a, reader);
  void a.settlement.afterAnswer(facts);
  setCostHeaders(headers, a, facts);
  return new Response(payload, { status: res.status, headers });
}

/** The provider's answer, or the error the client gets (the hold released) when there is none to relay. */
async function callUpstream(
  c: Context<AppEnv>,
  a: Admitted,
  abort: AbortController,
  settle: (ending: Ending) => Promise<unknown>,
): Promise<Response> {
  const { upstream, provider } = a.target;
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
    // app.onError logs these (upstream.error) with the reason; the URL is the operator's own setting.
    await settle({ kind: "released", httpStatus: null });
    if (abort.signal.aborted) {
      throw new ApiError("upstream_timeout", "The provider did not answer in time.", {
        logText: `no answer within UPSTREAM_TIMEOUT_MS from ${origin(upstream.url)}`,
      });
    }
    throw new ApiError("upstream_unreachable", "The provider could not be reached.", {
      logText: `${origin(upstream.url)} unreachable: ${errorText(err)}`,
    });
  }
  if (res.status >= 300 && res.status < 400) {
    // Provider APIs do not redirect; following (or relaying) one could point a client anywhere.
    await res.body?.cancel();
    await settle({ kind: "released", httpStatus: res.status });
    throw new ApiError(
      "upstream_unreachable",
      "The provider answered with a redirect, which the gateway does not follow.",
      { logText: `${origin(upstream.url)} answered ${res.status} (a redirect, not followed)` },
    );
  }
  return res;
}

/** A URL's scheme, host and port only: what the log may say of an upstream URL. */
const origin = (url: string) => new URL(url).origin;

/**
 * A provider's non-2xx answer, relayed to the client as it is: one `upstream.error` line with its status and the
 * provider's request id, never its body (which may quote the prompt).
 */
function logRelayedError(a: Admitted, res: Response): void {
  const upstreamId = res.headers.get("x-request-id") ?? res.headers.get("request-id");
  log(res.status >= 500 ? "error" : "warn", "upstream.error", {
    ...a.log,
    status: res.status,
    error: `the provider answered HTTP ${res.status}`,
    ...(upstreamId ? { upstream_request_id: upstreamId.slice(0, 200) } : {}),
  });
}

/** The provider's headers the client may see, with the gateway's own: request id, rate, a lowered output limit. */
function answerHeaders(c: Context<AppEnv>, a: Admitted, res: Response): Headers {
  const headers = downstreamHeaders(res.headers);
  headers.set(requestIdHeader(a.admission.shape), c.get("requestId"));
  setRateHeaders(headers, a.admission.shape, a.admission.rate);
  if (a.admission.clampedOutputTokens !== undefined) {
    headers.set(CLAMP_HEADER, String(a.admission.clampedOutputTokens));
  }
  return headers;
}

/** The cost and remaining budget of an answer returned whole: the same charge the KeyGuard applies to `facts`. */
function setCostHeaders(headers: Headers, a: Admitted, facts: SettleFacts): void {
  if (!a.metered) return;
  const { holdNanos, budget } = a.admission;
  const tier = facts.serviceTier ?? a.serviceTier;
  const cost = chargeFor(facts.usage, a.prices, holdNanos, facts.fallbackNanos, tier).totalNanos;
  const left = budget.remainingNanos;
  headers.set(COST_HEADER, formatUsd(cost));
  headers.set(BUDGET_HEADER, usd(left === null ? null : Math.max(0, left + holdNanos - cost)));
}
