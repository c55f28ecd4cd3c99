import type { ModelEntry } from "../catalog/catalog.ts";

/**
 * How many input tokens a provider can bill one image, by its documented sizing rules, per provider and model
 * family (docs/holds.md lists each rule with its source). A family may be described by more than one rule when
 * sources disagree: the image is held at the largest. A model with no rule here has none the gateway trusts, and
 * a request with an image holds its context window, as any request whose input the body does not show.
 */
export type ImageRule =
  /** Anthropic: about width × height / 750 tokens, or a visual token per 28×28-pixel patch after padding; images
   * larger than the model's native resolution are scaled down first, so no image costs more than `ceiling` */
  | { kind: "pixels"; ceiling: number }
  /** OpenAI's tile models: `detail: "low"` is `base`; otherwise fit in 2048×2048, shortest side to 768, and
   * `tile` per 512-pixel tile (at most 4 × 2 of them) plus `base` */
  | { kind: "tiles"; base: number; tile: number }
  /** OpenAI's patch models: a token per 32×32-pixel patch, at most `cap` patches (larger images are scaled down),
   * times the model's multiplier; `detail` changes nothing documented */
  | { kind: "patches"; cap: number; multiplier: number };

export interface ImageFamily {
  rules: readonly ImageRule[];
}

/** Claude models before Opus 4.7: long edge ≤ 1,568 px and about 1.15 MP, "~1,600 tokens" at most. */
const CLAUDE_STANDARD: ImageFamily = { rules: [{ kind: "pixels", ceiling: 1_600 }] };
/** Claude Opus 4.7 and later: long edge ≤ 2,576 px, 4,784 visual tokens (3.75 MP; / 750 is 5,000). */
const CLAUDE_HIGH_RES: ImageFamily = { rules: [{ kind: "pixels", ceiling: 5_000 }] };
const CLAUDE_STANDARD_MODELS = /^claude-(2|3|instant|v1|4-|(opus|sonnet|haiku)-4(-[0-6])?$)/;

const tiles = (base: number, tile: number): ImageRule => ({ kind: "tiles", base, tile });
const patches = (cap: number, multiplier: number): ImageRule => ({ kind: "patches", cap, multiplier });

/**
 * OpenAI's families by priced model id, first match wins. Multipliers are the larger of the documented one and
 * the one OpenAI's own pricing calculator and measured bills show (gpt-5.4 and later bill patches × 1.2).
 */
const OPENAI: readonly (readonly [RegExp, ImageFamily])[] = [
  [/^gpt-4o-mini/, { rules: [tiles(2_833, 5_667)] }],
  [/^(gpt-4o|chatgpt-4o|gpt-4-turbo|gpt-4-vision|gpt-4\.5)/, { rules: [tiles(85, 170)] }],
  [/^gpt-4\.1-mini/, { rules: [patches(1_536, 1.62)] }],
  [/^gpt-4\.1-nano/, { rules: [patches(1_536, 2.46)] }],
  // OpenAI's guide lists gpt-4.1 with the tile models in one table and with the patch models in another.
  [/^gpt-4\.1/, { rules: [tiles(85, 170), patches(1_536, 1)] }],
  [/^(o4-mini|codex-mini)/, { rules: [patches(1_536, 1.72)] }],
  [/^(o1|o3)(-pro)?$/, { rules: [tiles(75, 150)] }],
  [/^gpt-5(\.4)?-mini$/, { rules: [patches(1_536, 1.62)] }],
  [/^gpt-5(\.4)?-nano$/, { rules: [patches(1_536, 2.46)] }],
  [/^gpt-5$/, { rules: [tiles(70, 140)] }],
  [/^gpt-5\.4$/, { rules: [patches(2_500, 1.2)] }],
  [/^gpt-5\.5$/, { rules: [patches(10_000, 1.2)] }],
  // gpt-5.6 keeps an image's own size at `detail: "auto"` and refuses one over 30,000 patches.
  [/^gpt-5\.6(-|$)/, { rules: [patches(30_000, 1.2)] }],
];

/** The image sizing rules of the model, or null when its provider documents none the gateway follows. */
export function imageFamily(entry: ModelEntry): ImageFamily | null {
  if (entry.provider === "anthropic") return CLAUDE_STANDARD_MODELS.test(entry.id) ? CLAUDE_STANDARD : CLAUDE_HIGH_RES;
  if (entry.provider === "openai") return OPENAI.find(([pattern]) => pattern.test(entry.id))?.[1] ?? null;
  return null;
}

/** OpenAI's high-detail tiling: fit in 2048×2048, shortest side to 768 (never enlarged), 512-pixel tiles. */
const MAX_TILES = 8;

/**
 * The most input tokens one image can be billed: its rule's tokens for its size (null: unknown, the ceiling) and
 * `detail`, the largest over the family's rules. Sizes are scaled without rounding and tiles counted up, so a
 * rounding difference can only make the bound larger.
 */
export function imageTokens(family: ImageFamily, size: { width: number; height: number } | null, detail: unknown) {
  let most = 0;
  for (const rule of family.rules) most = Math.max(most, ruleTokens(rule, size, detail));
  return most;
}

function ruleTokens(rule: ImageRule, size: { width: number; height: number } | null, detail: unknown): number {
  switch (rule.kind) {
    case "pixels": {
      if (!size) return rule.ceiling;
      const { width: w, height: h } = size;
      return Math.min(rule.ceiling, Math.max(Math.ceil((w * h) / 750), Math.ceil(w / 28) * Math.ceil(h / 28)));
    }
    case "tiles": {
      if (detail === "low") return rule.base;
      if (!size) return rule.base + rule.tile * MAX_TILES;
      let { width: w, height: h } = size;
      const fit = Math.min(1, 2048 / Math.max(w, h));
      w *= fit;
      h *= fit;
      const short = Math.min(1, 768 / Math.min(w, h));
      const count = Math.ceil((w * short) / 512) * Math.ceil((h * short) / 512);
      return rule.base + rule.tile * Math.min(MAX_TILES, count);
    }
    case "patches": {
      const count = size ? Math.ceil(size.width / 32) * Math.ceil(size.height / 32) : rule.cap;
      return Math.ceil(Math.min(rule.cap, count) * rule.multiplier);
    }
  }
}
