import type { ModelEntry } from "../catalog/catalog.ts";
import type { GatewayConfig } from "../config.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { type Provider, providerOf, type RouteKind, resolveUpstream, type Upstream } from "../providers/registry.ts";

/**
 * Where a request for `model` on `route` goes: `ready` (an upstream to call), `unavailable` (a known model this
 * gateway cannot serve here: told only to a key that may use it) or `unknown` (not in the catalog).
 */
export type Target =
  | { kind: "ready"; entry: ModelEntry; provider: Provider; upstream: Upstream }
  | { kind: "unavailable"; entry: ModelEntry; provider: Provider | undefined; code: ErrorCode; message: string }
  | { kind: "unknown" };

const SPECIAL_ROUTES: RouteKind[] = ["completions", "fim", "moderations", "images", "transcriptions", "speech"];

export function resolveTarget(
  config: Pick<GatewayConfig, "providers" | "production">,
  entry: ModelEntry | undefined,
  route: { kind: RouteKind; endpoint: string },
): Target {
  if (!entry) return { kind: "unknown" };
  const provider = providerOf(entry.provider);
  if (!provider) {
    return {
      kind: "unavailable",
      entry,
      provider,
      code: "provider_not_configured",
      message: `The provider '${entry.provider}' is not supported.`,
    };
  }
  // Legacy completions, fill-in-the-middle and moderations are served by the models made for them only.
  if (SPECIAL_ROUTES.includes(route.kind) && !entry.serves.includes(route.kind)) {
    const message = `The model '${entry.id}' is not served on ${route.endpoint}.`;
    return { kind: "unavailable", entry, provider, code: "invalid_request", message };
  }
  const upstream = resolveUpstream(config.providers[provider.id], config.production, provider, route.kind);
  switch (upstream) {
    case "unsupported":
      return {
        kind: "unavailable",
        entry,
        provider,
        code: "invalid_request",
        message: `The model '${entry.id}' (${entry.provider}) is not served on ${route.endpoint}.`,
      };
    case "not_configured":
      return {
        kind: "unavailable",
        entry,
        provider,
        code: "provider_not_configured",
        message: `The provider '${entry.provider}' is not configured on this gateway (set ${provider.apiKeyVar}).`,
      };
    case "bad_url":
      return {
        kind: "unavailable",
        entry,
        provider,
        code: "provider_not_configured",
        message: `The provider '${entry.provider}' has no valid base URL configured.`,
      };
    default:
      return { kind: "ready", entry, provider, upstream };
  }
}
