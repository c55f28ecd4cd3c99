import type { ModelEntry } from "../catalog/catalog.ts";
import type { Prices, Usage } from "../catalog/pricing.ts";
import { ApiError } from "../lib/errors.ts";
import type { RouteKind } from "../providers/registry.ts";
import type { ParsedBody } from "./request-body.ts";

/**
 * Images and audio: what a request costs when it is priced by the request (pictures × size/quality price,
 * seconds of audio, characters to speak) rather than by reported tokens, and the units its hold must cover.
 */
export interface MediaPlan {
  /** the prices of this request: the model's, with the picture price its size and quality select */
  prices: Prices | null;
  /** the most of each unit (pictures, seconds, characters) the request can be billed */
  counts: Record<string, number>;
  /** extra input tokens of audio the provider may bill (token-priced transcription), beyond the body */
  mediaInputTokens: number;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: Usage | null;
  /** why the request cannot be priced: a spend-limited key refuses it, an unlimited one records `cost: null` */
  unpriced?: string;
  /** set when the request itself makes metering impossible (the client can change it): refused with a 400 */
  unmetered?: boolean;
}

/** Audio of unknown format is bounded by its size at the lowest bitrate a provider accepts (8 kbit/s). */
const MIN_AUDIO_BYTES_PER_SECOND = 1_000;
/** Audio tokens per second of speech the gpt-4o transcribers bill, with a wide margin (they bill ≈ 17). */
const AUDIO_TOKENS_PER_SECOND = 50;
/** Transcription formats that carry the provider's usage; the others (text, srt, vtt) carry none. */
const METERED_FORMATS = new Set(["json", "verbose_json"]);

export function mediaPlan(
  kind: RouteKind,
  body: ParsedBody,
  entry: ModelEntry,
  prices: Prices | null,
): MediaPlan | null {
  const json = body.json;
  const plan: MediaPlan = { prices, counts: {}, mediaInputTokens: 0, knownUsage: null };
  const rates = prices?.rates ?? {};
  switch (kind) {
    case "images": {
      if (!entry.perImage) return plan;
      const size = typeof json.size === "string" ? json.size : "1024x1024";
      const quality = typeof json.quality === "string" ? json.quality : "standard";
      const each = entry.perImage[`${quality}|${size}`] ?? entry.perImage[`*|${size}`];
      plan.counts = { images: body.choices };
      if (each === undefined || !prices) {
        return {
          ...plan,
          prices: null,
          unmetered: true,
          unpriced: `The model '${entry.id}' has no price for size '${size}' and quality '${quality}'.`,
        };
      }
      return { ...plan, prices: { ...prices, rates: { ...rates, images_each: each } } };
    }
    case "speech": {
      // Speech is charged by the characters sent: anything but text would be spoken for free.
      if (typeof json.input !== "string") {
        throw new ApiError("invalid_request", "input: must be the text to speak, a string.", { param: "input" });
      }
      const characters = [...json.input].length;
      if (rates.input_mchars === undefined) {
        // Priced by tokens, but a speech response is audio and reports none.
        return { ...plan, prices: null, unpriced: `The provider reports no usage for speech by '${entry.id}'.` };
      }
      return { ...plan, counts: { input_characters: characters }, knownUsage: { input_characters: characters } };
    }
    case "transcriptions": {
      const file = body.file;
      const seconds = file ? (file.durationSeconds ?? Math.ceil(file.size / MIN_AUDIO_BYTES_PER_SECOND)) : 0;
      const format = typeof json.response_format === "string" ? json.response_format : "json";
      if (rates.audio_hours !== undefined || rates.input_audio_hours !== undefined) {
        plan.counts = { audio_seconds: seconds, input_audio_seconds: seconds };
      }
      if (rates.input_audio_mtok !== undefined) plan.mediaInputTokens = seconds * AUDIO_TOKENS_PER_SECOND;
      // A streamed transcription reports usage in its last event whatever the format.
      if (!METERED_FORMATS.has(format) && !body.stream) {
        return {
          ...plan,
          prices: null,
          unmetered: true,
          unpriced:
            `response_format '${format}' carries no usage to meter; ` +
            "a spend-limited key needs 'json' or 'verbose_json'.",
        };
      }
      return plan;
    }
    default:
      return null;
  }
}
