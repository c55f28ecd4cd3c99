import { describe, expect, it } from "vitest";
import { builtinCatalog } from "../../src/catalog/catalog.ts";
import { imageFamily, imageTokens } from "../../src/gateway/image-tokens.ts";

const family = (model: string) => imageFamily(builtinCatalog.resolve(model)!.entry);
const tokens = (model: string, size: [number, number] | null, detail?: string) =>
  imageTokens(family(model)!, size && { width: size[0], height: size[1] }, detail);

describe("image tokens by the providers' documented rules (docs/holds.md)", () => {
  it("Claude: width × height / 750 or 28-pixel patches, at most 1,600 (5,000 from Opus 4.7)", () => {
    expect(tokens("claude-sonnet-4-5", [200, 200])).toBe(64); // 8 × 8 patches; / 750 is 54
    expect(tokens("claude-sonnet-4-5", [1_000, 1_000])).toBe(1_334);
    expect(tokens("claude-sonnet-4-5", [1_092, 1_092])).toBe(1_590);
    expect(tokens("claude-haiku-4-5", [3_000, 2_000])).toBe(1_600);
    expect(tokens("claude-3-5-haiku", null)).toBe(1_600);
    expect(tokens("claude-opus-4-6", null)).toBe(1_600);
    expect(tokens("claude-opus-4-7", [2_576, 1_449])).toBe(4_977);
    expect(tokens("claude-opus-4-7", null)).toBe(5_000);
    expect(tokens("claude-sonnet-5", null)).toBe(5_000);
  });

  it("OpenAI tiles: OpenAI's own examples, low detail, the 8-tile ceiling", () => {
    expect(tokens("gpt-4o", [1_024, 1_024])).toBe(765);
    expect(tokens("gpt-4o", [2_048, 4_096])).toBe(1_105);
    expect(tokens("gpt-4o", [4_096, 8_192], "low")).toBe(85);
    expect(tokens("gpt-4o", [2_048, 768])).toBe(85 + 8 * 170);
    expect(tokens("gpt-4o", null)).toBe(1_445);
    expect(tokens("gpt-4o-mini", [1_024, 1_024])).toBe(2_833 + 4 * 5_667);
    expect(tokens("o3", null)).toBe(75 + 8 * 150);
    expect(tokens("gpt-5", null)).toBe(70 + 8 * 140);
  });

  it("OpenAI patches: OpenAI's examples, capped patches, multipliers, detail ignored", () => {
    expect(tokens("gpt-4.1-mini", [1_024, 1_024])).toBe(Math.ceil(1_024 * 1.62));
    expect(tokens("gpt-4.1-mini", [1_800, 2_400], "low")).toBe(Math.ceil(1_536 * 1.62));
    expect(tokens("gpt-4.1-nano", null)).toBe(3_779);
    expect(tokens("o4-mini", null)).toBe(2_642);
    expect(tokens("gpt-5-mini", [64, 64])).toBe(Math.ceil(4 * 1.62));
    expect(tokens("gpt-5.4", null)).toBe(3_000);
    expect(tokens("gpt-5.5", null)).toBe(12_000);
    expect(tokens("gpt-5.6-sol", null)).toBe(36_000);
    // gpt-4.1: held at the larger of its tile and patch readings.
    expect(tokens("gpt-4.1", [1_024, 1_024])).toBe(1_024);
    expect(tokens("gpt-4.1", [512, 512], "low")).toBe(256);
  });

  it("models without a documented rule have none (their images hold the context window)", () => {
    for (const model of ["gemini-2.5-pro", "grok-4", "gpt-5.2", "gpt-6-sol", "mistral-large-latest"]) {
      const entry = builtinCatalog.resolve(model)?.entry;
      if (entry) expect(imageFamily(entry), model).toBeNull();
    }
  });
});
