import type { Usage, WorstCase } from "./pricing.ts";

/**
 * What a spend key's token limits count: every token the provider reports processing. In the price database's
 * usage keys that is `input_tokens` (the whole input: uncached, cache reads and cache writes, text, audio and
 * image tokens) plus `output_tokens` (the whole output: text, audio, image and reasoning tokens). Usage with no
 * tokens (pictures priced each, seconds of audio, characters spoken) counts 0.
 */
export function tokensOf(usage: Usage): number {
  return (usage.input_tokens ?? 0) + (usage.output_tokens ?? 0);
}

/** The most tokens a request can be reported, from the same bounds as its spend hold (hold.ts). */
export function worstTokens(w: Pick<WorstCase, "inputTokens" | "outputTokens" | "choices" | "extraOutputTokens">) {
  return w.inputTokens + w.outputTokens * w.choices + w.extraOutputTokens;
}

/**
 * The most output tokens per choice that `room` tokens afford with the input and extra output at their worst
 * (0 when not even those fit); never more than the request's own output limit.
 */
export function affordableOutputByTokens(w: WorstCase, room: number): number {
  const left = room - w.inputTokens - w.extraOutputTokens;
  if (left <= 0) return 0;
  return Math.min(w.outputTokens, Math.floor(left / Math.max(1, w.choices)));
}
