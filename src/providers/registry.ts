/**
 * The providers the gateway can forward to, declared as data: the one place that names them. The upstream URL
 * is always `<NAME>_BASE_URL` (a var; the official URL below by default) + the route's fixed path: it never
 * comes from a request. The env types (env.ts), the dev stack and the fake provider's paths derive from it.
 */

/** The gateway routes a request can take; `chat` etc. are OpenAI-shaped, `messages` Anthropic-shaped. */
export type RouteKind =
  | "chat"
  | "responses"
  | "embeddings"
  | "completions"
  | "fim"
  | "moderations"
  | "images"
  | "transcriptions"
  | "speech"
  | "messages"
  | "count_tokens";

interface ProviderSpec {
  /** the official base URL, exactly as the provider's own SDK uses it */
  defaultBaseUrl: string;
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

const openaiCompatible = (
  defaultBaseUrl: string,
  extra: Partial<Record<RouteKind, string>> = {},
  streamUsage: ProviderSpec["streamUsage"] = "ask",
): ProviderSpec => ({ defaultBaseUrl, auth: "bearer", paths: { chat: "/chat/completions", ...extra }, streamUsage });

const SPECS = {
  openai: openaiCompatible("https://api.openai.com/v1", {
    responses: "/responses",
    embeddings: "/embeddings",
    completions: "/completions",
    moderations: "/moderations",
    images: "/images/generations",
    transcriptions: "/audio/transcriptions",
    speech: "/audio/speech",
  }),
  anthropic: {
    // Anthropic's base URL has no /v1 (as in its SDK); it also serves an OpenAI-compatible chat endpoint.
    defaultBaseUrl: "https://api.anthropic.com",
    auth: "x-api-key",
    paths: { messages: "/v1/messages", count_tokens: "/v1/messages/count_tokens", chat: "/v1/chat/completions" },
    streamUsage: "ask",
  },
  google: openaiCompatible("https://generativelanguage.googleapis.com/v1beta/openai", { embeddings: "/embeddings" }),
  mistral: openaiCompatible(
    "https://api.mistral.ai/v1",
    { embeddings: "/embeddings", fim: "/fim/completions" },
    "always",
  ),
  groq: openaiCompatible("https://api.groq.com/openai/v1"),
  deepseek: openaiCompatible("https://api.deepseek.com/v1"),
  xai: openaiCompatible("https://api.x.ai/v1", { responses: "/responses" }),
  together: openaiCompatible("https://api.together.xyz/v1", { embeddings: "/embeddings", completions: "/completions" }),
  fireworks: openaiCompatible("https://api.fireworks.ai/inference/v1", {
    embeddings: "/embeddings",
    completions: "/completions",
  }),
} satisfies Record<string, ProviderSpec>;

export type ProviderId = keyof typeof SPECS;
export type ApiKeyVar = `${Uppercase<ProviderId>}_API_KEY`;
export type BaseUrlVar = `${Uppercase<ProviderId>}_BASE_URL`;

export interface Provider extends ProviderSpec {
  id: ProviderId;
  apiKeyVar: ApiKeyVar;
  baseUrlVar: BaseUrlVar;
}

export const PROVIDER_IDS = Object.keys(SPECS) as ProviderId[];

export const PROVIDERS: Readonly<Record<ProviderId, Provider>> = Object.fromEntries(
  PROVIDER_IDS.map((id) => {
    const name = id.toUpperCase() as Uppercase<ProviderId>;
    return [id, { id, ...SPECS[id], apiKeyVar: `${name}_API_KEY`, baseUrlVar: `${name}_BASE_URL` }];
  }),
) as Record<ProviderId, Provider>;

/** The provider of a catalog entry, when the gateway knows it. */
export function providerOf(id: string): Provider | undefined {
  return Object.hasOwn(PROVIDERS, id) ? PROVIDERS[id as ProviderId] : undefined;
}

/** The vars providers are configured by (part of the Worker's bindings, env.ts › Secrets). */
export type ProviderVars = Partial<Record<ApiKeyVar | BaseUrlVar, string>> & { SPENDGATE_ENV?: string };

export interface Upstream {
  url: string;
  apiKey: string;
}

/**
 * Where a route goes for a provider, or why it cannot go: `unsupported` (no such route), `not_configured` (no key
 * or base URL), `bad_url` (a base URL the SSRF guard refuses).
 */
export function resolveUpstream(
  settings: { apiKey: string | null; baseUrl: string },
  production: boolean,
  provider: Provider,
  route: RouteKind,
): Upstream | "unsupported" | "not_configured" | "bad_url" {
  const path = provider.paths[route];
  if (!path) return "unsupported";
  const { apiKey, baseUrl } = settings;
  if (apiKey === null || baseUrl === "") return "not_configured";
  const url = baseUrl.replace(/\/+$/, "") + path;
  return upstreamUrlAllowed(url, production) ? { url, apiKey } : "bad_url";
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
