import type { RouteKind } from "../providers/registry.ts";

/**
 * What the price database does not carry and the gateway needs: the routes beyond chat a model serves, the most
 * output tokens a model writes when the request sets no limit, and the few models it does not price (legacy
 * completion models, DALL·E per picture, tts-1 per character). Prices here are USD decimal strings, with the
 * database's price keys; `images_each` is per picture by `quality|size` (`*` for any quality).
 */

/** Routes beyond chat, by model id pattern (matched against the priced model's id). */
export const SERVES: readonly (readonly [RegExp, readonly RouteKind[]])[] = [
  [/^(gpt-3\.5-turbo-instruct|davinci-002|babbage-002)$/, ["completions"]],
  [/^(codestral|devstral)/, ["fim"]],
  [/moderation/, ["moderations"]],
  [/^(gpt-image|dall-e)/, ["images"]],
  [/^(whisper|gpt-4o(-mini)?-transcribe)/, ["transcriptions"]],
  [/^(tts-|gpt-4o-mini-tts)/, ["speech"]],
  // Together and Fireworks serve every model on their legacy completions endpoint too.
  [/\//, ["completions"]],
  [/^llama-v3p1/, ["completions"]],
];

/**
 * Max output tokens by model id pattern, first match wins (providers' model pages, 2026-11). A model not listed
 * is bounded by its context window; one with neither asks a spend-limited client to set max_tokens.
 */
export const MAX_OUTPUT: readonly (readonly [RegExp, number])[] = [
  [/^gpt-5/, 128_000],
  [/^gpt-4\.1/, 32_768],
  [/^(gpt-4o|chatgpt-4o)/, 16_384],
  [/^gpt-4-turbo|^gpt-4$|^gpt-3\.5-turbo$/, 4_096],
  [/^o[134]/, 100_000],
  [/^codex-mini/, 100_000],
  [/^gpt-image-1(-mini)?$/, 6_240],
  // Newer image models can draw larger pictures: a generous bound until their pages say.
  [/^gpt-image/, 16_384],
  [/^gpt-4o(-mini)?-transcribe/, 2_000],
  [/^claude-(opus-4-[5-9]|sonnet-4|haiku-4|3-7-sonnet|sonnet-5|opus-5)/, 64_000],
  [/^claude-opus-4/, 32_000],
  [/^claude-3-5/, 8_192],
  [/^claude-3-/, 4_096],
  [/^gemini-(2\.5|3)/, 65_536],
  [/^gemini-2\.0/, 8_192],
  [/^grok-4/, 256_000],
  [/^grok-3/, 131_072],
  [/^deepseek-reasoner/, 65_536],
  [/^deepseek-chat/, 8_192],
  // Models the database lists without a context window.
  [/^llama-3\.3-70b-versatile$/, 32_768],
  [/^llama-3\.1-8b-instant$/, 131_072],
  [/^meta-llama\/Llama-3\.3-70B-Instruct-Turbo$/, 32_768],
  [/^(mistral-large|mistral-medium|mistral-small)/, 32_768],
];

export interface SupplementModel {
  provider: string;
  rates: Readonly<Record<string, string>>;
  /** per picture by `quality|size` */
  perImage?: Readonly<Record<string, string>>;
  maxOutput: number;
  context: number;
}

export const SUPPLEMENT_MODELS: Readonly<Record<string, SupplementModel>> = {
  "davinci-002": {
    provider: "openai",
    rates: { input_mtok: "2", output_mtok: "2" },
    maxOutput: 16_384,
    context: 16_384,
  },
  "babbage-002": {
    provider: "openai",
    rates: { input_mtok: "0.4", output_mtok: "0.4" },
    maxOutput: 16_384,
    context: 16_384,
  },
  "dall-e-3": {
    provider: "openai",
    rates: {},
    perImage: {
      "standard|1024x1024": "0.04",
      "standard|1024x1792": "0.08",
      "standard|1792x1024": "0.08",
      "hd|1024x1024": "0.08",
      "hd|1024x1792": "0.12",
      "hd|1792x1024": "0.12",
    },
    maxOutput: 0,
    context: 4_000,
  },
  "dall-e-2": {
    provider: "openai",
    rates: {},
    perImage: { "*|256x256": "0.016", "*|512x512": "0.018", "*|1024x1024": "0.02" },
    maxOutput: 0,
    context: 1_000,
  },
  "tts-1": { provider: "openai", rates: { input_mchars: "15" }, maxOutput: 0, context: 4_096 },
  "tts-1-hd": { provider: "openai", rates: { input_mchars: "30" }, maxOutput: 0, context: 4_096 },
};

/**
 * OpenAI `service_tier` multipliers, which the database does not carry: flex is billed at Batch rates (half of
 * standard); priority prices are 1.7–2× standard by model, so the gateway charges the dearest, 2×, never less.
 * An operator override can set a model's own multipliers.
 */
export const OPENAI_SERVICE_TIERS: Readonly<Record<string, string>> = { flex: "0.5", priority: "2" };
