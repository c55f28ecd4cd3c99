import type { RateState } from "../guard/types.ts";
import type { Dialect } from "../lib/errors.ts";
import type { Provider } from "../providers/registry.ts";

/**
 * Outbound headers are rebuilt from an allowlist: the provider sees its own key and the protocol headers
 * the SDKs send, never the spend key, cookies, `cf-*` or anything else of the client's.
 */
const FORWARDED = ["content-type", "accept", "openai-beta", "anthropic-beta", "anthropic-version", "idempotency-key"];

/** A plain record (lower-case names), not a `Headers`: fetch builds its own from it, one runtime object fewer. */
export function upstreamHeaders(incoming: Headers, auth: Provider["auth"], apiKey: string): Record<string, string> {
  const out: Record<string, string> = { "content-type": "application/json" };
  for (const name of FORWARDED) {
    const v = incoming.get(name)?.trim();
    if (v) out[name] = v;
  }
  out["user-agent"] = "spendgate/0.1";
  if (auth === "x-api-key") {
    out["x-api-key"] = apiKey;
    out["anthropic-version"] ??= "2023-06-01";
  } else {
    out.authorization = `Bearer ${apiKey}`;
  }
  return out;
}

/**
 * Response headers: the provider's, minus what describes the operator's provider account (its rate limits,
 * organisation), cookies, hop-by-hop and encoding headers (fetch already decoded the body).
 */
const DROPPED = new RegExp(
  "^(set-cookie|content-length|content-encoding|transfer-encoding|connection|keep-alive|" +
    "openai-organization|openai-project|cf-.*|x-ratelimit-.*|anthropic-ratelimit-.*|anthropic-organization-id|" +
    "x-request-id|request-id|retry-after|retry-after-ms|server|alt-svc|report-to|nel)$",
  "i",
);

export function downstreamHeaders(upstream: Headers): Headers {
  const out = new Headers();
  upstream.forEach((value, name) => {
    if (!DROPPED.test(name)) out.append(name, value);
  });
  const upstreamId = upstream.get("x-request-id") ?? upstream.get("request-id");
  if (upstreamId) out.set(UPSTREAM_ID_HEADER, upstreamId);
  return out;
}

/** The provider's own request id, passed on under our name (ours takes the dialect's request-id header). */
const UPSTREAM_ID_HEADER = "x-upstream-request-id";
const REQUEST_ID_HEADERS = { anthropic: "request-id", openai: "x-request-id" } as const;

export function requestIdHeader(dialect: Dialect): string {
  return REQUEST_ID_HEADERS[dialect];
}

/** Go-style durations as OpenAI sends them: `1s`, `6m0s`, `120ms`. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** The rate-limit headers each dialect's SDKs read. */
const RATE_HEADERS = {
  anthropic: {
    limit: "anthropic-ratelimit-requests-limit",
    remaining: "anthropic-ratelimit-requests-remaining",
    reset: "anthropic-ratelimit-requests-reset",
  },
  openai: {
    limit: "x-ratelimit-limit-requests",
    remaining: "x-ratelimit-remaining-requests",
    reset: "x-ratelimit-reset-requests",
  },
} as const;

export function setRateHeaders(h: Headers, dialect: Dialect, rate: RateState | null, now = Date.now()): void {
  if (!rate) return;
  const names = RATE_HEADERS[dialect];
  h.set(names.limit, String(rate.limit));
  h.set(names.remaining, String(rate.remaining));
  // Anthropic: the reset instant (RFC 3339, whole seconds); OpenAI: the time until it, Go-style.
  const reset =
    dialect === "anthropic"
      ? new Date(now + rate.resetMs).toISOString().replace(/\.\d{3}Z$/, "Z")
      : duration(rate.resetMs);
  h.set(names.reset, reset);
}

export const COST_HEADER = "x-spendgate-cost";
export const BUDGET_HEADER = "x-spendgate-budget-remaining";
/** Set when the spend limit afforded less output than the request asked for: the output limit sent upstream. */
export const CLAMP_HEADER = "x-spendgate-output-limit";

/**
 * What a browser page may read of a gateway answer (CORS exposes only a few headers unless told): the request
 * id, the cost and budget, the rate limit and retry advice, the provider's request id.
 */
export const BROWSER_READABLE = [
  ...Object.values(REQUEST_ID_HEADERS),
  UPSTREAM_ID_HEADER,
  COST_HEADER,
  BUDGET_HEADER,
  CLAMP_HEADER,
  ...Object.values(RATE_HEADERS.openai),
  ...Object.values(RATE_HEADERS.anthropic),
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
];
