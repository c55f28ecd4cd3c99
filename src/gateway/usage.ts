import type { TokenUsage } from "../lib/money.ts";
import type { RouteKind } from "../providers/registry.ts";

/**
 * Reads the provider's reported token usage, from a whole JSON body or event by event from a stream.
 * Input tokens are split into uncached / cache-read / cache-write so each is priced at its own rate.
 */
export interface UsageReader {
  /** a whole JSON response body, or the JSON `data` of one SSE event */
  read(obj: unknown): void;
  /** the usage when the provider reported its final figures, else null (a cut stream) */
  usage(): TokenUsage | null;
  responseId(): string | null;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
const int = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;

/** No usage yet: every count zero. */
export const empty = (): TokenUsage => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
});

/** OpenAI chat completions / embeddings (and every OpenAI-compatible provider, Anthropic's included). */
function openaiChatUsage(u: Json): TokenUsage {
  const prompt = int(u.prompt_tokens) ?? 0;
  const cached = Math.min(prompt, int(obj(u.prompt_tokens_details)?.cached_tokens) ?? 0);
  return {
    inputTokens: prompt - cached,
    outputTokens: int(u.completion_tokens) ?? 0,
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
    reasoningTokens: int(obj(u.completion_tokens_details)?.reasoning_tokens) ?? 0,
  };
}

/** OpenAI Responses API. */
function responsesUsage(u: Json): TokenUsage {
  const input = int(u.input_tokens) ?? 0;
  const cached = Math.min(input, int(obj(u.input_tokens_details)?.cached_tokens) ?? 0);
  return {
    inputTokens: input - cached,
    outputTokens: int(u.output_tokens) ?? 0,
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
    reasoningTokens: int(obj(u.output_tokens_details)?.reasoning_tokens) ?? 0,
  };
}

/** What every reader keeps: the last usage it saw and the provider's id of the response. */
abstract class Reader implements UsageReader {
  protected found: TokenUsage | null = null;
  private id: string | null = null;
  abstract read(o: unknown): void;
  usage(): TokenUsage | null {
    return this.found;
  }
  responseId(): string | null {
    return this.id;
  }
  protected noteId(v: unknown): void {
    if (typeof v === "string") this.id ??= v;
  }
}

class OpenAIChatReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    this.noteId(body.id);
    const u = obj(body.usage);
    if (u) this.found = openaiChatUsage(u);
  }
}

class ResponsesReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    // JSON body: the response itself; stream: `response.completed` / `.incomplete` / `.failed` carry it.
    const response = typeof body.type === "string" ? obj(body.response) : body;
    if (!response) return;
    this.noteId(response.id);
    const u = obj(response.usage);
    if (u) this.found = responsesUsage(u);
  }
}

/**
 * Anthropic Messages: JSON `usage`, or in a stream `message_start` (input and cache fields) followed by
 * `message_delta` events whose usage is cumulative: each replaces the last, never summed.
 */
class AnthropicReader extends Reader {
  private final = false;
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    let u: Json | undefined;
    // A stream's figures are final only with a message_delta; message_start's output count is a placeholder.
    if (body.type === "message_start") {
      const message = obj(body.message);
      this.noteId(message?.id);
      u = obj(message?.usage);
    } else if (body.type === "message_delta") {
      u = obj(body.usage);
      this.final = u !== undefined;
    } else if (body.type === undefined || body.type === "message") {
      this.noteId(body.id);
      u = obj(body.usage);
      this.final = u !== undefined;
    }
    if (!u) return;
    const next = this.found ?? empty();
    const input = int(u.input_tokens);
    const cacheWrite = int(u.cache_creation_input_tokens);
    const cacheRead = int(u.cache_read_input_tokens);
    const output = int(u.output_tokens);
    if (input !== undefined) next.inputTokens = input;
    if (cacheWrite !== undefined) next.cacheWriteTokens = cacheWrite;
    if (cacheRead !== undefined) next.cacheReadTokens = cacheRead;
    if (output !== undefined) next.outputTokens = output;
    this.found = next;
  }
  override usage(): TokenUsage | null {
    return this.final ? this.found : null;
  }
}

/**
 * Images and transcriptions: token usage where the model reports it (gpt-image-1, the gpt-4o transcribers:
 * image/audio input apart from text), seconds of audio (whisper-1), or the images returned (DALL·E, priced
 * per image). A streamed transcription reports its usage in its last event.
 */
class MediaReader extends Reader {
  read(o: unknown): void {
    const body = obj(o);
    if (!body) return;
    this.noteId(body.id);
    const u = obj(body.usage);
    if (body.type !== undefined && body.type !== "transcript.text.done") return;
    if (u?.type === "duration") {
      this.found = { ...empty(), units: Math.ceil(Number(u.seconds) || 0) };
    } else if (u) {
      const details = obj(u.input_tokens_details) ?? obj(u.input_token_details);
      const media = (int(details?.image_tokens) ?? 0) + (int(details?.audio_tokens) ?? 0);
      const input = int(u.input_tokens) ?? 0;
      this.found = {
        ...empty(),
        inputTokens: int(details?.text_tokens) ?? Math.max(0, input - media),
        mediaInputTokens: media,
        outputTokens: int(u.output_tokens) ?? 0,
        units: Array.isArray(body.data) ? body.data.length : 0,
      };
    } else if (Array.isArray(body.data)) {
      this.found = { ...empty(), units: body.data.length };
    } else if (typeof body.duration === "number") {
      this.found = { ...empty(), units: Math.ceil(body.duration) };
    }
  }
}

export function usageReader(route: RouteKind): UsageReader {
  switch (route) {
    case "responses":
      return new ResponsesReader();
    case "messages":
    case "count_tokens":
      return new AnthropicReader();
    case "chat":
    case "embeddings":
    case "completions":
    case "fim":
    case "moderations":
      // Legacy completions and Mistral's FIM report usage as chat does; moderations report none (free).
      return new OpenAIChatReader();
    case "images":
    case "transcriptions":
    case "speech":
      return new MediaReader();
  }
}
