import type { ModelEntry } from "../catalog/catalog.ts";
import type { WorstCase } from "../catalog/pricing.ts";
import type { RouteKind } from "../providers/registry.ts";
import { imageFamily } from "./image-tokens.ts";
import { mediaInput } from "./input-media.ts";
import type { OutputLimitField, ParsedBody } from "./request-body.ts";
import { perCallFees, type ToolCallLimit, toolInput, unreportedFees } from "./server-tools.ts";

/**
 * The bounds of a request's hold: the most input, output and per-call fees the provider can bill for it. The
 * hard cap rests on these being true upper bounds; every rule is listed in docs/limits-and-metering.md ("How holds
 * are sized") and docs/holds.md.
 */
export interface HoldBounds extends WorstCase {
  /** the output-limit fields to set if the budget lowers the limit (none: the request cannot be clamped) */
  clampFields: OutputLimitField[];
  /** server-tool call limits the gateway sets on a spend-limited key's request that sends none */
  toolCallLimits: ToolCallLimit[];
  /** why the bound is larger than the body suggests, for the refusal message */
  note?: string;
  /** no safe bound exists: a spend-limited key refuses the request with this message */
  unbounded?: string;
  /** no safe bound on the tokens exists: a token-limited key refuses the request with this message */
  tokensUnbounded?: string;
}

/** The output-limit fields each route's provider reads; without one of them it may write up to the model's max. */
const ROUTE_OUTPUT_FIELDS: Partial<Record<RouteKind, OutputLimitField[]>> = {
  chat: ["max_tokens", "max_completion_tokens"],
  completions: ["max_tokens"],
  fim: ["max_tokens"],
  responses: ["max_output_tokens"],
  messages: ["max_tokens"],
};

const NO_PULL = new Set<RouteKind>(["embeddings", "images", "transcriptions", "speech"]);

/** Output tokens OpenAI bills for each partial image of a streamed picture. */
const PARTIAL_IMAGE_TOKENS = 100;

/** Tokens a provider may add for tool use (its tool-use system prompt, the definitions of schema-less tools). */
export const TOOL_PROMPT_TOKENS = 1_024;

/** Content types the provider turns into tokens by its own measure (images, audio, files), not by their bytes. */
const MEDIA_TYPES = new Set([
  "image",
  "image_url",
  "input_image",
  "audio",
  "input_audio",
  "file",
  "input_file",
  "document",
  "container_upload",
  "search_result",
]);
/** Keys that make the provider fetch content the body does not hold. */
const FETCHED_KEYS = ["file_id", "file_url", "container"];
/** Tool types a client runs itself (Responses, chat and Anthropic's custom tools): their results come in the body. */
const CLIENT_TOOL_TYPES = new Set(["function", "custom"]);
/**
 * Anthropic beta features that pull content in. `context-1m` is not one: it raises the window (and the price tier
 * an input past 200k tokens reaches) but adds no input, so a text body stays bounded by its bytes.
 */
const PULLING_BETAS = /(^|,)\s*(files-api|mcp-client|web-fetch|web-search|code-execution|skills)/;
const ONE_MILLION_CONTEXT = /(^|,)\s*context-1m/;

/**
 * Sizes the hold. Output: the largest output-limit field sent, never capped below it (providers do not all
 * stop at the catalog's figure), times `n`; when none of the fields the route's provider reads is sent, at
 * least the model's max output. Input: the forwarded body's UTF-8 bytes (a token is never shorter than one byte
 * of its text), but an image's inline data, which is billed by its pixels (input-media.ts); plus an allowance
 * when tools are sent, and each web fetch's content limit — unless the request can make the provider bill input
 * the body does not hold (stored state, server tools without a per-call bound, fetched files, PDFs and audio,
 * images the model has no sizing rule for, MCP servers, pulling beta features): then the model's context window.
 * docs/holds.md lists every rule and its source.
 */
export function holdBounds(
  kind: RouteKind,
  body: ParsedBody,
  forwardedBytes: number,
  headers: Headers,
  entry: ModelEntry,
): HoldBounds {
  const tier =
    typeof body.json.service_tier === "string" && entry.provider === "openai" ? body.json.service_tier : null;
  const bounds: HoldBounds = {
    inputTokens: forwardedBytes,
    outputTokens: 0,
    choices: body.choices,
    extraOutputTokens: 0,
    counts: {},
    serviceTier: tier,
    clampFields: [],
    toolCallLimits: [],
  };
  // Moderations are never billed: nothing to hold, whatever the body holds.
  if (kind === "moderations") return { ...bounds, inputTokens: 0 };
  boundInput(kind, body, headers, entry, bounds);
  if (kind === "embeddings" || kind === "count_tokens") return bounds;
  boundOutput(kind, body, forwardedBytes, entry, bounds);
  return bounds;
}

/** The input side: tools, per-call fees, images and fetched content, and the context window when input is pulled. */
function boundInput(kind: RouteKind, body: ParsedBody, headers: Headers, entry: ModelEntry, bounds: HoldBounds): void {
  const tools = Array.isArray(body.json.tools) ? (body.json.tools as unknown[]) : [];
  if (tools.length > 0) bounds.inputTokens += TOOL_PROMPT_TOKENS * (1 + tools.filter(isTypedTool).length);
  bounds.counts = perCallFees(kind, body.json, tools, bounds.toolCallLimits);
  const unreported = unreportedFees(kind, body.json, tools);
  if (unreported)
    bounds.unbounded = `${unreported} This spend key has a spend limit: remove it, or use a key without one.`;

  // Embeddings and media requests (priced by their units, media.ts) pull nothing in.
  const media = NO_PULL.has(kind) ? null : mediaInput(kind, body.json, imageFamily(entry));
  const fetched = NO_PULL.has(kind) ? null : toolInput(kind, tools);
  const text = bounds.inputTokens;
  if (media) bounds.inputTokens += media.imageTokens - media.inlineChars;
  if (fetched) bounds.inputTokens += fetched.tokens;
  const beta = headers.get("anthropic-beta") ?? "";
  const window = ONE_MILLION_CONTEXT.test(beta) ? Math.max(entry.contextWindow ?? 0, 1_000_000) : entry.contextWindow;
  // Images and fetches many enough to pass the window cannot be billed past it (the provider refuses a longer
  // prompt): never more than the window, or than the body's bytes, which held them before they had rules.
  if (window !== null && (media?.images || fetched?.tokens)) {
    bounds.inputTokens = Math.min(bounds.inputTokens, Math.max(text, window));
  }
  const pulled = media && fetched && pullsInput(kind, body.json, headers, media.accounted, fetched.pulls);
  if (!pulled) return;
  if (window === null) {
    bounds.tokensUnbounded ??=
      `The request uses ${pulled}, so the provider may process input beyond its body, and the model '${entry.id}' ` +
      "has no known context window to bound it. This spend key has a token limit: the gateway cannot hold a safe " +
      "number of tokens.";
    bounds.unbounded ??=
      `The request uses ${pulled}, so the provider may bill input beyond its body, and the model '${entry.id}' ` +
      "has no known context window to bound it. This spend key has a spend limit: the gateway cannot hold a safe " +
      "amount.";
  } else {
    bounds.inputTokens = Math.max(bounds.inputTokens, window);
    bounds.note = `because ${pulled} may make the provider bill up to the model's context window of ${window} tokens`;
  }
}

/** The output side, the fields a lowered limit is written to, and the bytes the gateway may add to the body. */
function boundOutput(
  kind: RouteKind,
  body: ParsedBody,
  forwardedBytes: number,
  entry: ModelEntry,
  bounds: HoldBounds,
): void {
  const sent = Object.values(body.outputLimits);
  const routeFields = ROUTE_OUTPUT_FIELDS[kind] ?? [];
  const readsOne = routeFields.some((f) => body.outputLimits[f] !== undefined);
  const largest = sent.length ? Math.max(...sent) : 0;
  // Without a field the provider reads, it may write up to the model's max (its context window when unknown).
  // Media routes write pictures, audio or a transcript: their output is their units, and tokens only where the
  // model's max says so (gpt-image-1, the gpt-4o transcribers).
  const modelMax = NO_PULL.has(kind) ? (entry.maxOutputTokens ?? 0) : (entry.maxOutputTokens ?? entry.contextWindow);
  let output: number | null = readsOne ? largest : modelMax === null ? null : Math.max(largest, modelMax);
  if (output === null) {
    bounds.tokensUnbounded ??=
      `The model '${entry.id}' has no known maximum output. This spend key has a token limit: set max_tokens ` +
      "(or max_completion_tokens / max_output_tokens) so the gateway can hold a safe number of tokens.";
    bounds.unbounded ??=
      `The model '${entry.id}' has no known maximum output. This spend key has a spend limit: set max_tokens ` +
      "(or max_completion_tokens / max_output_tokens) so the gateway can hold a safe amount.";
    // Keys without a spend limit still hold something (a cut stream's charge is capped by it).
    output = bounds.inputTokens;
  }
  // OpenAI predicted outputs: rejected prediction tokens are billed as output on top of the answer.
  if (body.json.prediction != null) bounds.extraOutputTokens = forwardedBytes;
  bounds.outputTokens = output;
  // A streamed picture's partial images (gpt-image-1's `partial_images`) are billed on top of it.
  const partials = body.json.partial_images;
  if (kind === "images" && typeof partials === "number" && partials > 0) {
    bounds.outputTokens += PARTIAL_IMAGE_TOKENS * Math.ceil(partials);
  }
  // A lowered limit is written to every output field sent (whichever the provider reads), or to the one the
  // route's provider reads when none is.
  if (!body.file && routeFields.length) {
    const sentFields = Object.keys(body.outputLimits) as OutputLimitField[];
    const fallback = kind === "chat" && entry.provider === "openai" ? "max_completion_tokens" : routeFields[0];
    bounds.clampFields = readsOne ? sentFields : [...sentFields, fallback ?? "max_tokens"];
  }
  // What the gateway may write into the body grows the bytes forwarded: a lowered limit (at most 10 digits, plus
  // `"field":` when it was not sent) and the tool-call limits.
  for (const f of bounds.clampFields) bounds.inputTokens += body.outputLimits[f] === undefined ? f.length + 14 : 10;
  for (const l of bounds.toolCallLimits) bounds.inputTokens += l.field.length + 8;
}

function isTypedTool(tool: unknown): boolean {
  const type = (tool as { type?: unknown } | null)?.type;
  return typeof type === "string" && !CLIENT_TOOL_TYPES.has(type);
}

/**
 * What in the request lets the provider bill input its body does not hold, in words; null when nothing does.
 * `toolPulls` is the server tool without a bound a call (server-tools.ts); `accounted` are the images and text
 * documents bounded by their own rules (input-media.ts).
 */
function pullsInput(
  kind: RouteKind,
  json: Record<string, unknown>,
  headers: Headers,
  accounted: ReadonlySet<object>,
  toolPulls: string | null,
): string | null {
  if (kind === "responses" && (json.previous_response_id != null || json.conversation != null || json.prompt != null)) {
    return "stored conversation state";
  }
  if (json.mcp_servers != null) return "MCP servers";
  if (json.web_search_options != null) return "web search";
  if (toolPulls) return toolPulls;
  const beta = headers.get("anthropic-beta");
  if (beta && PULLING_BETAS.test(beta)) return "a beta feature that fetches content";
  return findFetched(json, 0, accounted);
}

/** Media, file ids and URLs anywhere in the messages (bounded depth: request bodies are shallow). */
function findFetched(value: unknown, depth: number, accounted: ReadonlySet<object>): string | null {
  if (depth > 12 || value === null || typeof value !== "object" || accounted.has(value)) return null;
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = findFetched(v, depth + 1, accounted);
      if (found) return found;
    }
    return null;
  }
  const o = value as Record<string, unknown>;
  if (typeof o.type === "string" && MEDIA_TYPES.has(o.type)) return `${o.type} content`;
  for (const key of FETCHED_KEYS) if (o[key] != null) return `'${key}'`;
  for (const key in o) {
    const found = findFetched(o[key], depth + 1, accounted);
    if (found) return found;
  }
  return null;
}
