import type { PriceWhen } from "./entry.ts";
import type { MatchRule } from "./match.ts";
import data from "./prices.gen.json";
import { nanos, type Rate } from "./pricing.ts";

/**
 * The price database as `npm run catalog` compiled it (prices.gen.json): per provider, its usage mappings and
 * its models. Prices arrive as exact decimal strings and become integer nano-dollars here, once per isolate.
 */
type DecimalRate = string | { base: string; tiers: [number, string][] };
interface JsonModel {
  id: string;
  match: MatchRule;
  context: number | null;
  schedule: { when?: PriceWhen; prices: Record<string, DecimalRate> }[];
}
interface JsonProvider {
  extractors: Record<string, [dest: string, path: string | string[], required: boolean][]>;
  models: JsonModel[];
}
interface JsonCatalog {
  source: { package: string; version: string };
  providers: Record<string, JsonProvider>;
}

export interface CompiledModel {
  id: string;
  match: MatchRule;
  context: number | null;
  schedule: { when?: PriceWhen; rates: Record<string, Rate> }[];
}

// A JSON import's inferred type widens tuples to arrays; the file's shape is the compile script's (catalog.ts).
const catalog = data as unknown as JsonCatalog;

export const PRICE_SOURCE = catalog.source;

const rate = (r: DecimalRate): Rate =>
  typeof r === "string" ? nanos(r) : { base: nanos(r.base), tiers: r.tiers.map(([s, p]) => [s, nanos(p)] as const) };

export function compiledModels(): { provider: string; models: CompiledModel[] }[] {
  return Object.entries(catalog.providers).map(([provider, p]) => ({
    provider,
    models: p.models.map((m) => ({
      id: m.id,
      match: m.match,
      context: m.context,
      schedule: m.schedule.map((s) => ({
        ...(s.when ? { when: s.when } : {}),
        rates: Object.fromEntries(Object.entries(s.prices).map(([k, v]) => [k, rate(v)])),
      })),
    })),
  }));
}

/** How a provider's response reports usage, per API flavor: `[usage key, path in the usage object, required]`. */
export function usageMappings(provider: string, flavor: string): JsonProvider["extractors"][string] | undefined {
  return catalog.providers[provider]?.extractors[flavor];
}
