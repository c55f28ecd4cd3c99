/**
 * The providers the gateway can forward to, declared as data. The upstream URL is always
 * `<NAME>_BASE_URL` (a var, official URL by default) + the route's fixed path: it never comes from a request.
 */

/** The gateway routes a request can take; `chat` etc. are OpenAI-shaped, `messages` Anthropic-shaped. */
export type RouteKind = "chat" | "responses" | "embeddings" | "messages" | "count_tokens";

export interface Provider {
  id: string;
  /** env var names */
  baseUrlVar: string;
  apiKeyVar: string;
  auth: "bearer" | "x-api-key";
  /** upstream path per route, appended to the base URL */
  paths: Partial<Record<RouteKind, string>>;
  /**
   * How an OpenAI-shaped chat stream reports usage: `ask` — only when the request sets
   * `stream_options.include_usage` (the gateway sets it and strips the chunk again); `always` — the last chunk
   * carries it and the API refuses unknown fields, so nothing is added.
   */
  streamUsage: "ask" | "always";
}

const openaiCompatible = (id: string, extra: Partial<Record<RouteKind, string>> = {}, streamUsage: Provider["streamUsage"] = "ask"): Provider => ({
  id,
  baseUrlVar: `${id.toUpperCase()}_BASE_URL`,
  apiKeyVar: `${id.toUpperCase()}_API_KEY`,
  auth: "bearer",
  paths: { chat: "/chat/completions", ...extra },
  streamUsage,
});

export const PROVIDERS: Record<string, Provider> = {
  openai: openaiCompatible("openai", { responses: "/responses", embeddings: "/embeddings" }),
  anthropic: {
    id: "anthropic",
    baseUrlVar: "ANTHROPIC_BASE_URL",
    apiKeyVar: "ANTHROPIC_API_KEY",
    auth: "x-api-key",
    // Anthropic's base URL has no /v1 (as in its SDK); it also serves an OpenAI-compatible chat endpoint.
    paths: { messages: "/v1/messages", count_tokens: "/v1/messages/count_tokens", chat: "/v1/chat/completions" },
    streamUsage: "ask",
  },
  google: openaiCompatible("google", { embeddings: "/embeddings" }),
  mistral: openaiCompatible("mistral", { embeddings: "/embeddings" }, "always"),
  groq: openaiCompatible("groq"),
  deepseek: openaiCompatible("deepseek"),
  xai: openaiCompatible("xai", { responses: "/responses" }),
  together: openaiCompatible("together", { embeddings: "/embeddings" }),
  fireworks: openaiCompatible("fireworks", { embeddings: "/embeddings" }),
};

export const PROVIDER_IDS = Object.keys(PROVIDERS);

export interface Upstream {
  url: string;
  apiKey: string;
}

/**
 * Where a route goes for a provider, or why it cannot go: `unsupported` (no such route), `not_configured` (no key
 * or base URL), `bad_url` (a base URL the SSRF guard refuses).
 */
export function resolveUpstream(
  env: Record<string, unknown>,
  provider: Provider,
  route: RouteKind,
): Upstream | "unsupported" | "not_configured" | "bad_url" {
  const path = provider.paths[route];
  if (!path) return "unsupported";
  const apiKey = env[provider.apiKeyVar];
  const base = env[provider.baseUrlVar];
  if (typeof apiKey !== "string" || apiKey === "" || typeof base !== "string" || base === "") return "not_configured";
  const url = base.replace(/\/+$/, "") + path;
  return upstreamUrlAllowed(url, env.SPENDGATE_ENV === "production") ? { url, apiKey } : "bad_url";
}

/** SSRF guard: in production only https provider URLs are used; loopback http only in development. */
function upstreamUrlAllowed(url: string, production: boolean): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === "https:") return true;
  if (production || u.protocol !== "http:") return false;
  return u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.hostname === "[::1]";
}
