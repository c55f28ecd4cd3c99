import { UNITS } from "../catalog/units.ts";
import type { RouteKind } from "../providers/registry.ts";

/**
 * What server tools add to a request's bill beyond tokens: fees per call, which the hold covers (web and file
 * searches), and fees the provider bills outside the usage it reports, which no hold can cover.
 */

/**
 * Server tools billed per call (web search, file search): a request that does not limit its calls gets this
 * limit from the gateway on a spend-limited key (Anthropic's `max_uses`, the Responses API's `max_tool_calls`),
 * so the hold can cover every call.
 */
export const DEFAULT_TOOL_CALL_LIMIT = 10;

/** Where a tool-call limit goes: a tool's own field (by its index in `tools`) or the request's. */
export type ToolCallLimit = { tool: number; field: "max_uses" } | { field: "max_tool_calls" };

/**
 * Server tools whose fees the provider bills outside the usage it reports (by container or session, or at another
 * model's rates), by route: the gateway can neither hold nor charge them, so a spend-limited key refuses them.
 */
const UNREPORTED_FEES: Partial<Record<RouteKind, [RegExp, string][]>> = {
  responses: [
    [/^code_interpreter$/, "container fees"],
    [/^image_generation$/, "pictures (at the image model's rates)"],
  ],
  messages: [[/^code_execution_/, "container time"]],
};
/**
 * Tool types whose whole cost the gateway meters, by route: tools the client runs (their results come back as
 * input), server tools billed only in the tokens the usage reports, and the per-call tools whose calls it holds.
 * Any other tool may carry a fee the gateway cannot see.
 */
const METERED_TOOLS: Partial<Record<RouteKind, RegExp>> = {
  chat: /^(function|custom)$/,
  responses: /^(function|custom|web_search\w*|file_search|mcp|computer\w*|local_shell|shell|apply_patch)$/,
  messages:
    /^(custom|(bash|text_editor|computer|memory|web_search|web_fetch|tool_search_tool_(regex|bm25))_\d+|mcp_toolset)$/,
};
/** Chat Completions' search models search on every request; the answer's usage does not count the searches. */
const CHAT_SEARCH_MODEL = /search-(preview|api)/;
/** The units of the per-call fees perCallFees counts, from the price database's units. */
const TOOL_CALL_UNITS = [...UNITS.values()].filter((unit) => unit.dims.family === "tool_calls");
/** What the refusal calls each tool. */
const TOOL_NAMES: Record<string, string> = { web_search: "web search", storage_search: "file search" };

/**
 * The most per-call fees a request can incur, by usage key: each server tool billed per call may be called up to
 * its limit (its own `max_uses`, the request's `max_tool_calls`, or the gateway's default, noted in `limits`).
 */
export function perCallFees(
  kind: RouteKind,
  json: Record<string, unknown>,
  tools: unknown[],
  limits: ToolCallLimit[],
): Record<string, number> {
  const counts: Record<string, number> = {};
  const add = (key: string, n: number) => (counts[key] = (counts[key] ?? 0) + n);
  const asLimit = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);
  if (kind === "messages") {
    tools.forEach((tool, i) => {
      const t = tool as { type?: unknown; max_uses?: unknown } | null;
      if (typeof t?.type !== "string" || !t.type.startsWith("web_search_")) return;
      const own = asLimit(t.max_uses);
      if (own === undefined) limits.push({ tool: i, field: "max_uses" });
      add("web_searches", own ?? DEFAULT_TOOL_CALL_LIMIT);
    });
  } else if (kind === "responses") {
    const types = new Set(tools.map((t) => (t as { type?: unknown } | null)?.type));
    const web = [...types].some((t) => typeof t === "string" && t.startsWith("web_search"));
    const file = types.has("file_search");
    if (web || file) {
      const own = asLimit(json.max_tool_calls);
      if (own === undefined) limits.push({ field: "max_tool_calls" });
      const calls = own ?? DEFAULT_TOOL_CALL_LIMIT;
      if (web) add("web_searches", calls);
      if (file) add("storage_searches", calls);
    }
  }
  return counts;
}

/**
 * Why the request may be billed outside the usage the provider reports (the refusal's first sentence), or null.
 */
export function unreportedFees(kind: RouteKind, json: Record<string, unknown>, tools: unknown[]): string | null {
  const outside = (what: string, fee: string) =>
    `The request uses ${what}: the provider bills its ${fee} outside the usage it reports, so the gateway cannot ` +
    "hold or charge for them.";
  if (kind === "chat" && (json.web_search_options != null || CHAT_SEARCH_MODEL.test(String(json.model)))) {
    return outside("web search in Chat Completions", "searches");
  }
  for (const tool of tools) {
    const given = (tool as { type?: unknown } | null)?.type;
    // Anthropic's client-defined tools carry no type; elsewhere a tool without one is nothing the gateway knows.
    if (given === undefined && kind === "messages") continue;
    const type = typeof given === "string" ? given : "";
    const match = UNREPORTED_FEES[kind]?.find(([pattern]) => pattern.test(type));
    if (match) return outside(`the server tool '${type}'`, match[1]);
    const metered = METERED_TOOLS[kind];
    if (metered && !metered.test(type)) {
      const named = type ? `the tool '${type}'` : "a tool without a type";
      return (
        `The request uses ${named}, which the gateway does not know how the provider bills, so it cannot hold or ` +
        "charge for it."
      );
    }
  }
  return null;
}

/** Tool types a client runs itself: their results come back in a later request's body. */
const CLIENT_TOOL_TYPES = new Set(["function", "custom"]);
/** Anthropic tools the client runs whose definitions the provider adds (beyond the body): bounded by the allowance. */
const ANTHROPIC_CLIENT_TOOL = /^(bash|text_editor|computer|memory)_/;
const ANTHROPIC_WEB_FETCH = /^web_fetch_/;
/**
 * What one web fetch adds at most beyond its `max_content_tokens`: the result block around the content (URL,
 * title, retrieval time) and the call itself; the limit is counted approximately, so 10 % more is held too.
 */
const WEB_FETCH_OVERHEAD_TOKENS = 1_000;

/**
 * The input server tools can add to a request, where the provider documents a bound a call: Anthropic's web fetch
 * truncates what it fetches to `max_content_tokens` and runs at most `max_uses` times. `pulls` names the first
 * server tool without such a bound (its results may fill the context window), in words for the refusal.
 */
export function toolInput(kind: RouteKind, tools: unknown[]): { tokens: number; pulls: string | null } {
  let tokens = 0;
  const whole = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);
  for (const tool of tools) {
    const t = tool as { type?: unknown; max_uses?: unknown; max_content_tokens?: unknown } | null;
    const type = t?.type;
    if (typeof type !== "string" || CLIENT_TOOL_TYPES.has(type)) continue;
    if (kind === "messages" && ANTHROPIC_CLIENT_TOOL.test(type)) continue;
    if (kind === "messages" && ANTHROPIC_WEB_FETCH.test(type)) {
      const uses = whole(t?.max_uses);
      const content = whole(t?.max_content_tokens);
      if (uses !== undefined && content !== undefined) {
        tokens += uses * (Math.ceil(content * 1.1) + WEB_FETCH_OVERHEAD_TOKENS);
        continue;
      }
      return { tokens, pulls: `a server tool ('${type}') without both max_uses and max_content_tokens` };
    }
    const why = /web_search/.test(type) ? "whose results have no documented size a search" : "with no documented bound";
    return { tokens, pulls: `a server tool ('${type}'), ${why},` };
  }
  return { tokens, pulls: null };
}

/** The tool of a per-call fee the request may incur whose price the model's prices lack; null when none. */
export function unpricedCallFee(counts: Readonly<Record<string, number>>, rates: Record<string, unknown>) {
  for (const unit of TOOL_CALL_UNITS) {
    if ((counts[unit.usageKey] ?? 0) > 0 && rates[unit.priceKey] === undefined) {
      const type = unit.dims.tool_type ?? unit.usageKey;
      return TOOL_NAMES[type] ?? type;
    }
  }
  return null;
}
