import { calcPrice, extractUsage, findProvider } from "@pydantic/genai-prices";
import { describe, expect, it } from "vitest";
import { decimal } from "../../scripts/lib/decimal.ts";
import { builtinCatalog, type ModelEntry, pricesAt } from "../../src/catalog/catalog.ts";
import { PRICE_SOURCE } from "../../src/catalog/compiled.ts";
import data from "../../src/catalog/prices.gen.json";
import { type Cost, costOf, type Rate, type Usage } from "../../src/catalog/pricing.ts";
import { PROVIDER_IDS } from "../../src/providers/registry.ts";

/**
 * The compiled catalog against the price database it came from: for every model of every routed provider and a
 * matrix of usage shapes (cached input, 5-minute and 1-hour cache writes, reasoning, each side of every tier,
 * audio and image tokens, web and file searches, durations) at every date a price changes, our exact cost
 * equals `@pydantic/genai-prices`' own `calcPrice` within its float precision.
 */
const DATABASE_ID: Record<string, string> = { xai: "x-ai" };
const usd = (c: Cost) => Number(c.inputFemtos + c.outputFemtos + c.feeFemtos) / 1e15;

function tierStarts(rates: Record<string, Rate>): number[] {
  const starts = new Set<number>();
  for (const r of Object.values(rates)) if (typeof r !== "number") for (const [s] of r.tiers) starts.add(s);
  return [...starts];
}

function shapes(rates: Record<string, Rate>): Usage[] {
  const out: Usage[] = [
    { input_tokens: 1_200, output_tokens: 340 },
    { input_tokens: 5_000, cache_read_tokens: 3_000, output_tokens: 200 },
    { input_tokens: 9_000, cache_read_tokens: 1_000, cache_write_tokens: 4_000, output_tokens: 100 },
    {
      input_tokens: 9_000,
      cache_write_tokens: 4_000,
      cache_write_5m_tokens: 2_500,
      cache_write_1h_tokens: 1_500,
      output_tokens: 100,
    },
    { input_tokens: 800, output_tokens: 2_600, output_reasoning_tokens: 2_000 },
    { input_tokens: 1_000, output_tokens: 100, web_searches: 7, storage_searches: 3 },
    {
      input_tokens: 3_000,
      input_audio_tokens: 1_000,
      input_image_tokens: 500,
      cache_read_tokens: 300,
      cache_audio_read_tokens: 100,
      cache_image_read_tokens: 50,
      output_tokens: 900,
      output_audio_tokens: 300,
      output_image_tokens: 200,
    },
    { audio_seconds: 37, input_audio_seconds: 37 },
  ];
  for (const start of tierStarts(rates)) {
    for (const input of [start, start + 1]) {
      out.push({ input_tokens: input, cache_read_tokens: 1_000, cache_write_tokens: 500, output_tokens: 700 });
    }
  }
  return out;
}

/** The instants a model's price changes around, plus now. */
function instants(m: ModelEntry): Date[] {
  const at = [new Date()];
  for (const s of m.schedule ?? []) {
    if (s.when?.type === "start_date") {
      const d = Date.parse(s.when.start_date);
      at.push(new Date(d - 1), new Date(d));
    } else if (s.when?.type === "time_of_date") {
      for (const t of [s.when.start_time, s.when.end_time]) {
        const on = Date.parse(`2026-11-20T${t.replace(/Z?$/, "Z")}`);
        at.push(new Date(on - 1_000), new Date(on + 1_000));
      }
    }
  }
  return at;
}

const compiled = data.providers as Record<string, { models: { id: string }[] }>;

describe("the compiled catalog", () => {
  it(`is ${PRICE_SOURCE.package} ${PRICE_SOURCE.version} for every routed provider`, () => {
    expect(Object.keys(compiled)).toEqual(PROVIDER_IDS);
    const total = Object.values(compiled).reduce((n, p) => n + p.models.length, 0);
    expect(total).toBeGreaterThan(300);
  });

  it("holds prices as exact decimal strings that read back as the database's numbers", () => {
    let checked = 0;
    for (const [provider, p] of Object.entries(data.providers)) {
      const db = findProvider({ providerId: DATABASE_ID[provider] ?? provider })!;
      for (const m of p.models) {
        const source = db.models.find((x) => x.id === m.id)!;
        const schedules = Array.isArray(source.prices) ? source.prices : [{ prices: source.prices }];
        m.schedule.forEach((s, i) => {
          for (const [key, v] of Object.entries(s.prices as Record<string, unknown>)) {
            const original = schedules[i]!.prices[key] as number | { base: number; tiers: { price: number }[] };
            const values = typeof v === "string" ? [v] : [(v as any).base, ...(v as any).tiers.map((t: any) => t[1])];
            const numbers =
              typeof original === "number" ? [original] : [original.base, ...original.tiers.map((t) => t.price)];
            values.forEach((text: string, j: number) => {
              expect(text).toMatch(/^\d+(\.\d{1,9})?$/);
              expect(Number(text)).toBe(numbers[j]);
              checked++;
            });
          }
        });
      }
    }
    expect(checked).toBeGreaterThan(1_000);
    // Floats are written as typed, never in exponent form.
    expect(decimal(0.15)).toBe("0.15");
    expect(decimal(1e-7)).toBe("0.0000001");
    expect(decimal(3.75)).toBe("3.75");
    expect(decimal(2e21)).toBe("2000000000000000000000");
  });

  it("costs every model × usage shape × price date exactly as the database's calcPrice", () => {
    let compared = 0;
    for (const provider of PROVIDER_IDS) {
      const providerId = DATABASE_ID[provider] ?? provider;
      for (const { id } of compiled[provider]!.models) {
        // Resolution within the provider agrees with the database's own matching (a few ids match an earlier
        // model, or none: fine-tune patterns such as `ft:gpt-4o` need a suffix).
        const entry = builtinCatalog.within(provider, id);
        expect(entry?.id, `${provider}/${id}`).toBe(calcPrice({ input_tokens: 1 }, id, { providerId })?.model.id);
        if (!entry) continue;
        for (const at of instants(entry)) {
          const prices = pricesAt(entry, at)!;
          for (const usage of shapes(prices.rates)) {
            const theirs = calcPrice(usage, id, { providerId, timestamp: at })!.total_price;
            const ours = usd(costOf(usage, prices));
            expect(
              Math.abs(ours - theirs),
              `${provider}/${id} ${JSON.stringify(usage)} at ${at.toISOString()}`,
            ).toBeLessThanOrEqual(1e-12 + theirs * 1e-12);
            compared++;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(3_000);
  });

  it("prices OpenAI service tiers: flex at half, priority at twice standard (the dearest published)", () => {
    const entry = builtinCatalog.resolve("gpt-5")!.entry;
    const prices = pricesAt(entry, new Date())!;
    const usage = { input_tokens: 10_000, cache_read_tokens: 2_000, output_tokens: 3_000, web_searches: 2 };
    const standard = calcPrice(usage, "gpt-5", { providerId: "openai" })!.total_price;
    expect(usd(costOf(usage, prices, "flex"))).toBeCloseTo(standard / 2, 12);
    expect(usd(costOf(usage, prices, "priority"))).toBeCloseTo(standard * 2, 12);
    expect(usd(costOf(usage, prices, "default"))).toBeCloseTo(standard, 12);
  });

  it("reads usage with the database's mappings: xAI bills reasoning tokens on top of completion tokens", () => {
    // xAI documents reasoning tokens as reported apart from completion_tokens and charged at the completion price.
    const response = {
      model: "grok-3-mini",
      usage: {
        prompt_tokens: 100,
        completion_tokens: 20,
        completion_tokens_details: { reasoning_tokens: 300 },
        prompt_tokens_details: { cached_tokens: 0 },
      },
    };
    const extracted = extractUsage(findProvider({ providerId: "x-ai" })!, response, "chat").usage;
    expect(extracted.output_tokens).toBe(320);
  });
});
