import type { ModelEntry } from "../catalog/catalog.ts";
import type { Prices, TokenUsage } from "../lib/money.ts";
import type { RouteKind } from "../providers/registry.ts";
import type { ParsedBody } from "./request-body.ts";
import { empty } from "./usage.ts";

/**
 * Images and audio: what a request costs when it is priced by the request (images × size/quality price,
 * seconds of audio, characters to speak) rather than by reported tokens, and the units its hold must cover.
 */
export interface MediaPlan {
  /** the prices of this request: the model's, with the unit price its size and quality select */
  prices: Prices | null;
  /** the most units (images, seconds, characters) the request can be billed */
  units: number;
  /** extra input tokens of audio the provider may bill (token-priced transcription), beyond the body */
  mediaInputTokens: number;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: TokenUsage | null;
  /** why the request cannot be priced: a spend-limited key refuses it with this message */
  unpriced?: string;
}

/** Audio of unknown format is bounded by its size at the lowest bitrate a provider accepts (8 kbit/s). */
const MIN_AUDIO_BYTES_PER_SECOND = 1_000;
/** Audio tokens per second of speech the gpt-4o transcribers bill, with a wide margin (they bill ≈ 17). */
const AUDIO_TOKENS_PER_SECOND = 50;
/** Transcription formats that carry the provider's usage; the others (text, srt, vtt) carry none. */
const METERED_FORMATS = new Set(["json", "verbose_json"]);

export function mediaPlan(kind: RouteKind, body: ParsedBody, entry: ModelEntry): MediaPlan | null {
  const prices = entry.prices;
  const json = body.json;
  switch (kind) {
    case "images": {
      if (!entry.perImage) return { prices, units: 0, mediaInputTokens: 0, knownUsage: null };
      const size = typeof json.size === "string" ? json.size : "1024x1024";
      const quality = typeof json.quality === "string" ? json.quality : "standard";
      const each = entry.perImage[`${quality}|${size}`] ?? entry.perImage[`*|${size}`];
      if (each === undefined || !prices) {
        // Served on a key without a spend limit (at no unit price); refused on one with a limit.
        const unpriced = `The model '${entry.id}' has no price for size '${size}' and quality '${quality}'.`;
        return { prices, units: body.choices, mediaInputTokens: 0, knownUsage: null, unpriced };
      }
      return { prices: { ...prices, perUnit: each }, units: body.choices, mediaInputTokens: 0, knownUsage: null };
    }
    case "speech": {
      const characters = typeof json.input === "string" ? [...json.input].length : 0;
      const knownUsage = prices?.perUnit !== undefined ? { ...empty(), units: characters } : null;
      return { prices, units: characters, mediaInputTokens: 0, knownUsage };
    }
    case "transcriptions": {
      const file = body.file;
      const seconds = file ? (file.durationSeconds ?? Math.ceil(file.size / MIN_AUDIO_BYTES_PER_SECOND)) : 0;
      const format = typeof json.response_format === "string" ? json.response_format : "json";
      const plan: MediaPlan = {
        prices,
        units: prices?.perUnit !== undefined ? seconds : 0,
        mediaInputTokens: prices?.mediaInput !== undefined ? seconds * AUDIO_TOKENS_PER_SECOND : 0,
        knownUsage: null,
      };
      // A streamed transcription reports usage in its last event whatever the format.
      if (!METERED_FORMATS.has(format) && !body.stream) {
        plan.unpriced =
          `response_format '${format}' carries no usage to meter; ` +
          "a spend-limited key needs 'json' or 'verbose_json'.";
      }
      return plan;
    }
    default:
      return null;
  }
}
