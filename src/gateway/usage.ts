import { usageMappings } from "../catalog/compiled.ts";
import type { Usage } from "../catalog/pricing.ts";
import type { RouteKind } from "../providers/registry.ts";

/**
 * Reads the provider's reported usage, from a whole JSON body or event by event from a stream, into the price
 * database's usage keys, with the database's own per-provider mappings (prices.gen.json): e.g. Anthropic's
 * input is its uncached, cache-write and cache-read tokens summed, and xAI bills reasoning tokens on top of
 * `completion_tokens`, so its output is both. What the mappings do not cover is read here: per-call tool fees
 * in a Responses answer, media units, the service tier.
 */
export interface UsageReader {
  /** a whole JSON response body, or the JSON `data` of one SSE event */
  read(obj: unknown): void;
  /** the usage when the provider reported its final figures, else null (a cut stream) */
  usage(): Usage | null;
  /**
   * For a stream cut before its final usage: the input the provider already reported (null when none) and an
   * estimate of the output delivered — one token per 3 characters of text (a token is ~4 on average).
   */
  estimate(): { usage: Usage; inputKnown: boolean };
  responseId(): string | null;
  /** the service tier the provider says it used (OpenAI), else null */
  serviceTier(): string | null;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
const int = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;

/** Characters of text per estimated token of a cut stream's output. */
export const CHARS_PER_ESTIMATED_TOKEN = 3;

/** The route's usage-mapping flavor in the price database. */
const FLAVOR: Partial<Record<RouteKind, string>> = {
  chat: "chat",
  completions: "chat",
  fim: "chat",
  moderations: "chat",
  embeddings: "embeddings",
  responses: "responses",
  messages: "default",
  count_tokens: "default",
  images: "images",
};

/**
 * Applies the provider's mapping for the route's flavor; else its `default` one (an OpenAI-compatible API's, for
 * every provider but Anthropic, whose default is its Messages API); else OpenAI's.
 */
function usageMappingFor(provider: string, route: RouteKind) {
  const flavor = FLAVOR[route] ?? "chat";
  const fallback = provider !== "anthropic" && flavor !== "default" ? usageMappings(provider, "default") : undefined;
  return (
    usageMappings(provider, flavor) ?? fallback ?? usageMappings("openai", flavor) ?? usageMappings("openai", "chat")
  );
}

export function mapUsage(provider: string, route: RouteKind, u: Json): Usage {
  const rows = usageMappingFor(provider, route);
  const out: Usage = {};
  if (!rows) return out;
  // Indexed loops, not destructuring for…of: this reads every answer, and each destructured row allocates.
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as (typeof rows)[number];
    const dest = row[0];
    const path = row[1];
    let v: unknown = u;
    if (typeof path === "string") v = u[path];
    else for (let i = 0; i < path.length && v !== undefined; i++) v = obj(v)?.[path[i] as string];
    const n = int(v);
    if (n !== undefined) out[dest] = (out[dest] ?? 0) + n;
  }
  return out;
}

/** What every reader keeps: the last usage it saw, the response id, service tier and delivered text. */
abstract class Reader implements UsageReader {
  protected found: Usage | null = null;
  protected final = true;
  /** the usage object of a stream's start (Anthropic's message_start): input known before the end */
  protected early: Usage | null = null;
  private id: string | null = null;
  private tier: string | null = null;
  protected chars = 0;
  constructor(
    protected readonly provider: string,
    protected readonly route: RouteKind,
  ) {}
  abstract read(o: unknown): void;
  usage(): Usage | null {
    return this.final ? this.found : null;
  }
  estimate(): { usage: Usage; inputKnown: boolean } {
    const usage: Usage = { ...(this.early ?? this.found ?? {}) };
    usage.output_tokens = Math.max(usage.output_tokens ?? 0, Math.ceil(this.chars / CHARS_PER_ESTIMATED_TOKEN));
    return { usage, inputKnown: (this.early ?? this.found) !== null };
  }
  responseId(): string | null {
    return this.id;
  }
  serviceTier(): string | null {
    return this.tier;
  }
  protected note(body: Json): void {
    if (typeof body.id === "string") this.id ??= body.id;
    if (typeof body.service_tier === "string") this.tier = body.service_tier;
  }
  protected text(v: unknown): void {
    if (typeof v === "string") this.chars += v.length;
  }
}

/** OpenAI chat completions, legacy completions, FIM, embeddings (and every OpenAI-compatible provider). */
class ChatReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    this.note(body);
    if (Array.isArray(body.choices)) {
      for (const c of body.choices) {
        const delta = obj(obj(c)?.delta);
        this.text(obj(c)?.text);
        this.text(delta?.content);
        this.text(delta?.reasoning_content);
        if (Array.isArray(delta?.tool_calls))
          for (const t of delta.tool_calls) this.text(obj(obj(t)?.function)?.arguments);
      }
    }
    const u = obj(body.usage);
    if (u) this.found = mapUsage(this.provider, this.route, u);
  }
}

/** OpenAI Responses: usage by the mapping; built-in tool calls (web search, file search) counted from the output. */
class ResponsesReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    if (body.type === "response.output_text.delta" || body.type === "response.reasoning_summary_text.delta") {
      this.text(body.delta);
    } else if (body.type === "response.function_call_arguments.delta") this.text(body.delta);
    // JSON body: the response itself; stream: `response.completed` / `.incomplete` / `.failed` carry it.
    const response = typeof body.type === "string" ? obj(body.response) : body;
    if (!response) return;
    this.note(response);
    const u = obj(response.usage);
    if (!u) return;
    const usage = mapUsage(this.provider, this.route, u);
    const output = Array.isArray(response.output) ? response.output : [];
    const calls = (type: string) => output.filter((item) => obj(item)?.type === type).length;
    const web = calls("web_search_call");
    const file = calls("file_search_call");
    if (web) usage.web_searches = web;
    if (file) usage.storage_searches = file;
    this.found = usage;
  }
}

/**
 * Anthropic Messages: JSON `usage`, or in a stream `message_start` (input and cache fields) followed by
 * `message_delta` events whose usage is cumulative: each replaces the fields it carries, never summed.
 */
class AnthropicReader extends Reader {
  private raw: Json = {};
  override final = false;
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    let u: Json | undefined;
    if (body.type === "message_start") {
      const message = obj(body.message);
      if (message) this.note(message);
      u = obj(message?.usage);
      // Its output count is a placeholder: only the input is known this early.
      if (u) this.early = mapUsage(this.provider, this.route, { ...u, output_tokens: 0 });
    } else if (body.type === "message_delta") {
      u = obj(body.usage);
      this.final = u !== undefined;
    } else if (body.type === "content_block_delta") {
      const d = obj(body.delta);
      this.text(d?.text);
      this.text(d?.thinking);
      this.text(d?.partial_json);
    } else if (body.type === undefined || body.type === "message") {
      this.note(body);
      u = obj(body.usage);
      this.final = u !== undefined;
    }
    if (!u) return;
    this.raw = { ...this.raw, ...u };
    this.found = mapUsage(this.provider, this.route, this.raw);
  }
}

/**
 * Images and transcriptions: token usage where the model reports it (gpt-image-1, the gpt-4o transcribers),
 * seconds of audio (whisper-1), or the pictures returned (DALL·E, priced per picture). A streamed
 * transcription reports its usage in its last event.
 */
class MediaReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    this.note(body);
    if (body.type === "transcript.text.delta") this.text(body.delta);
    if (body.type !== undefined && body.type !== "transcript.text.done") return;
    const u = obj(body.usage);
    const images: Usage = Array.isArray(body.data) ? { images: body.data.length } : {};
    if (u?.type === "duration") {
      const seconds = Math.ceil(Number(u.seconds) || 0);
      this.found = { audio_seconds: seconds, input_audio_seconds: seconds };
    } else if (u && this.route === "images") {
      this.found = { ...mapUsage(this.provider, this.route, u), ...images };
    } else if (u) {
      const details = obj(u.input_token_details) ?? obj(u.input_tokens_details);
      const found: Usage = { input_tokens: int(u.input_tokens) ?? 0, output_tokens: int(u.output_tokens) ?? 0 };
      const audio = int(details?.audio_tokens);
      const text = int(details?.text_tokens);
      if (audio !== undefined) found.input_audio_tokens = audio;
      if (text !== undefined) found.input_text_tokens = text;
      this.found = found;
    } else if (Array.isArray(body.data)) {
      this.found = images;
    } else if (typeof body.duration === "number") {
      const seconds = Math.ceil(body.duration);
      this.found = { audio_seconds: seconds, input_audio_seconds: seconds };
    }
  }
}

export function usageReader(provider: string, route: RouteKind): UsageReader {
  switch (route) {
    case "responses":
      return new ResponsesReader(provider, route);
    case "messages":
    case "count_tokens":
      return new AnthropicReader(provider, route);
    case "images":
    case "transcriptions":
    case "speech":
      return new MediaReader(provider, route);
    default:
      // Legacy completions and FIM report usage as chat does; moderations report none (free).
      return new ChatReader(provider, route);
  }
}
