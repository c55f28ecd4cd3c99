/**
 * Built-in model catalog: provider list prices in USD per 1M tokens (input, output, cached input / cache
 * read, cache write) and max output tokens, as published by each provider (catalog date 2026-11).
 * Operators override or extend it with `PUT /admin/models/{model}`; the override wins.
 * A `null` price marks a model we cannot meter from tokens alone (e.g. per-call tool fees): a key with
 * a spend limit refuses it (403 model_not_priced).
 */

export interface BuiltinModel {
  provider: string;
  /** USD per 1M tokens as decimal strings: [input, output, cacheRead, cacheWrite] */
  price: readonly [string, string, string?, string?] | null;
  maxOutput: number;
  /** context window in tokens: the input bound of a request that makes the provider pull in more than its body */
  context: number;
  kind?: "embedding";
  /** the routes beyond chat it serves */
  serves?: readonly ("completions" | "fim" | "moderations" | "images" | "transcriptions" | "speech")[];
  /** USD per 1M image or audio input tokens, where they are priced apart from text */
  mediaInput?: string;
  /**
   * USD per unit for what is priced by the request rather than by tokens: per image (by `quality|size`,
   * `*` for any quality), per second of audio, or per character of text to speak.
   */
  perUnit?: { unit: "image"; bySize: Readonly<Record<string, string>> } | { unit: "second" | "character"; usd: string };
}

export const BUILTIN_MODELS: Record<string, BuiltinModel> = {
  // OpenAI
  "gpt-5": { provider: "openai", price: ["1.25", "10", "0.125"], maxOutput: 128_000, context: 400_000 },
  "gpt-5-mini": { provider: "openai", price: ["0.25", "2", "0.025"], maxOutput: 128_000, context: 400_000 },
  "gpt-5-nano": { provider: "openai", price: ["0.05", "0.40", "0.005"], maxOutput: 128_000, context: 400_000 },
  "gpt-4.1": { provider: "openai", price: ["2", "8", "0.50"], maxOutput: 32_768, context: 1_047_576 },
  "gpt-4.1-mini": { provider: "openai", price: ["0.40", "1.60", "0.10"], maxOutput: 32_768, context: 1_047_576 },
  "gpt-4.1-nano": { provider: "openai", price: ["0.10", "0.40", "0.025"], maxOutput: 32_768, context: 1_047_576 },
  "gpt-4o": { provider: "openai", price: ["2.50", "10", "1.25"], maxOutput: 16_384, context: 128_000 },
  "gpt-4o-mini": { provider: "openai", price: ["0.15", "0.60", "0.075"], maxOutput: 16_384, context: 128_000 },
  o3: { provider: "openai", price: ["2", "8", "0.50"], maxOutput: 100_000, context: 200_000 },
  "o4-mini": { provider: "openai", price: ["1.10", "4.40", "0.275"], maxOutput: 100_000, context: 200_000 },
  "o3-mini": { provider: "openai", price: ["1.10", "4.40", "0.55"], maxOutput: 100_000, context: 200_000 },
  // Legacy completions (with `suffix`), and the moderation models (free: never charged).
  "gpt-3.5-turbo-instruct": {
    provider: "openai",
    price: ["1.50", "2"],
    maxOutput: 4_096,
    context: 4_096,
    serves: ["completions"],
  },
  "davinci-002": { provider: "openai", price: ["2", "2"], maxOutput: 16_384, context: 16_384, serves: ["completions"] },
  "babbage-002": {
    provider: "openai",
    price: ["0.40", "0.40"],
    maxOutput: 16_384,
    context: 16_384,
    serves: ["completions"],
  },
  "omni-moderation-latest": {
    provider: "openai",
    price: ["0", "0"],
    maxOutput: 0,
    context: 32_768,
    serves: ["moderations"],
  },
  "text-moderation-latest": {
    provider: "openai",
    price: ["0", "0"],
    maxOutput: 0,
    context: 32_768,
    serves: ["moderations"],
  },
  // Images: gpt-image-1 reports token usage (text and image input, image output); DALL·E is priced per image.
  "gpt-image-1": {
    provider: "openai",
    price: ["5", "40", "1.25"],
    mediaInput: "10",
    // The most output tokens one image can take (high quality, 1536×1024).
    maxOutput: 6_240,
    context: 32_000,
    serves: ["images"],
  },
  "dall-e-3": {
    provider: "openai",
    price: ["0", "0"],
    perUnit: {
      unit: "image",
      bySize: {
        "standard|1024x1024": "0.04",
        "standard|1024x1792": "0.08",
        "standard|1792x1024": "0.08",
        "hd|1024x1024": "0.08",
        "hd|1024x1792": "0.12",
        "hd|1792x1024": "0.12",
      },
    },
    maxOutput: 0,
    context: 4_000,
    serves: ["images"],
  },
  "dall-e-2": {
    provider: "openai",
    price: ["0", "0"],
    perUnit: { unit: "image", bySize: { "*|256x256": "0.016", "*|512x512": "0.018", "*|1024x1024": "0.02" } },
    maxOutput: 0,
    context: 1_000,
    serves: ["images"],
  },
  // Audio: whisper-1 per second of audio; the gpt-4o transcribers by tokens (audio input priced apart);
  // tts-1 per character spoken. gpt-4o-mini-tts reports no usage: unpriced (refused on spend-limited keys).
  "whisper-1": {
    provider: "openai",
    price: ["0", "0"],
    perUnit: { unit: "second", usd: "0.0001" },
    maxOutput: 0,
    context: 0,
    serves: ["transcriptions"],
  },
  "gpt-4o-transcribe": {
    provider: "openai",
    price: ["2.50", "10"],
    mediaInput: "6",
    maxOutput: 2_000,
    context: 16_000,
    serves: ["transcriptions"],
  },
  "gpt-4o-mini-transcribe": {
    provider: "openai",
    price: ["1.25", "5"],
    mediaInput: "3",
    maxOutput: 2_000,
    context: 16_000,
    serves: ["transcriptions"],
  },
  "tts-1": {
    provider: "openai",
    price: ["0", "0"],
    perUnit: { unit: "character", usd: "0.000015" },
    maxOutput: 0,
    context: 4_096,
    serves: ["speech"],
  },
  "tts-1-hd": {
    provider: "openai",
    price: ["0", "0"],
    perUnit: { unit: "character", usd: "0.00003" },
    maxOutput: 0,
    context: 4_096,
    serves: ["speech"],
  },
  "gpt-4o-mini-tts": { provider: "openai", price: null, maxOutput: 0, context: 2_000, serves: ["speech"] },
  "gpt-4o-search-preview": { provider: "openai", price: null, maxOutput: 16_384, context: 128_000 },
  "text-embedding-3-small": {
    provider: "openai",
    price: ["0.02", "0"],
    maxOutput: 0,
    context: 8_192,
    kind: "embedding",
  },
  "text-embedding-3-large": {
    provider: "openai",
    price: ["0.13", "0"],
    maxOutput: 0,
    context: 8_192,
    kind: "embedding",
  },
  "text-embedding-ada-002": {
    provider: "openai",
    price: ["0.10", "0"],
    maxOutput: 0,
    context: 8_192,
    kind: "embedding",
  },
  // Anthropic (cache write = 5-minute cache writes, 1.25× input; cache read 0.1× input)
  "claude-opus-4-5-20251101": {
    provider: "anthropic",
    price: ["5", "25", "0.50", "6.25"],
    maxOutput: 64_000,
    context: 200_000,
  },
  "claude-opus-4-1-20250805": {
    provider: "anthropic",
    price: ["15", "75", "1.50", "18.75"],
    maxOutput: 32_000,
    context: 200_000,
  },
  "claude-opus-4-20250514": {
    provider: "anthropic",
    price: ["15", "75", "1.50", "18.75"],
    maxOutput: 32_000,
    context: 200_000,
  },
  "claude-sonnet-4-5-20250929": {
    provider: "anthropic",
    price: ["3", "15", "0.30", "3.75"],
    maxOutput: 64_000,
    context: 200_000,
  },
  "claude-sonnet-4-20250514": {
    provider: "anthropic",
    price: ["3", "15", "0.30", "3.75"],
    maxOutput: 64_000,
    context: 200_000,
  },
  "claude-3-7-sonnet-20250219": {
    provider: "anthropic",
    price: ["3", "15", "0.30", "3.75"],
    maxOutput: 64_000,
    context: 200_000,
  },
  "claude-haiku-4-5-20251001": {
    provider: "anthropic",
    price: ["1", "5", "0.10", "1.25"],
    maxOutput: 64_000,
    context: 200_000,
  },
  "claude-3-5-haiku-20241022": {
    provider: "anthropic",
    price: ["0.80", "4", "0.08", "1"],
    maxOutput: 8_192,
    context: 200_000,
  },
  // Google Gemini (OpenAI-compatible endpoint; prompts ≤ 200k tokens)
  "gemini-2.5-pro": { provider: "google", price: ["1.25", "10", "0.125"], maxOutput: 65_536, context: 1_048_576 },
  "gemini-2.5-flash": { provider: "google", price: ["0.30", "2.50", "0.03"], maxOutput: 65_536, context: 1_048_576 },
  "gemini-2.5-flash-lite": {
    provider: "google",
    price: ["0.10", "0.40", "0.01"],
    maxOutput: 65_536,
    context: 1_048_576,
  },
  "gemini-2.0-flash": { provider: "google", price: ["0.10", "0.40", "0.025"], maxOutput: 8_192, context: 1_048_576 },
  // Mistral
  "mistral-large-latest": { provider: "mistral", price: ["2", "6"], maxOutput: 32_768, context: 262_144 },
  "mistral-medium-latest": { provider: "mistral", price: ["0.40", "2"], maxOutput: 32_768, context: 262_144 },
  "mistral-small-latest": { provider: "mistral", price: ["0.10", "0.30"], maxOutput: 32_768, context: 262_144 },
  "codestral-latest": {
    provider: "mistral",
    price: ["0.30", "0.90"],
    maxOutput: 32_768,
    context: 262_144,
    serves: ["fim"],
  },
  "mistral-embed": { provider: "mistral", price: ["0.10", "0"], maxOutput: 0, context: 8_192, kind: "embedding" },
  // Groq
  "llama-3.3-70b-versatile": { provider: "groq", price: ["0.59", "0.79"], maxOutput: 32_768, context: 131_072 },
  "llama-3.1-8b-instant": { provider: "groq", price: ["0.05", "0.08"], maxOutput: 131_072, context: 131_072 },
  // DeepSeek
  "deepseek-chat": { provider: "deepseek", price: ["0.28", "0.42", "0.028"], maxOutput: 8_192, context: 131_072 },
  "deepseek-reasoner": { provider: "deepseek", price: ["0.28", "0.42", "0.028"], maxOutput: 65_536, context: 131_072 },
  // xAI
  "grok-4": { provider: "xai", price: ["3", "15", "0.75"], maxOutput: 256_000, context: 256_000 },
  "grok-3-mini": { provider: "xai", price: ["0.30", "0.50", "0.075"], maxOutput: 131_072, context: 131_072 },
  // Together
  "meta-llama/Llama-3.3-70B-Instruct-Turbo": {
    provider: "together",
    price: ["0.88", "0.88"],
    maxOutput: 32_768,
    context: 131_072,
    serves: ["completions"],
  },
  // Fireworks
  "accounts/fireworks/models/llama-v3p1-8b-instruct": {
    provider: "fireworks",
    price: ["0.20", "0.20"],
    maxOutput: 16_384,
    context: 131_072,
    serves: ["completions"],
  },
};

/** Unix seconds the catalog was compiled; reported as each model's `created`. */
export const CATALOG_CREATED = 1_793_491_200; // 2026-11-01T00:00:00Z
