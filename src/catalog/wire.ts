import { formatUsd } from "../lib/money.ts";
import { type ModelEntry, pricesAt } from "./catalog.ts";
import type { Rate } from "./pricing.ts";

export function serializeModel(m: ModelEntry, now = new Date()) {
  const rates = pricesAt(m, now)?.rates ?? null;
  const base = (key: string) => {
    const r = rates?.[key];
    return r === undefined ? null : formatUsd(typeof r === "number" ? r : r.base);
  };
  const wire = (r: Rate) =>
    typeof r === "number"
      ? formatUsd(r)
      : { base: formatUsd(r.base), tiers: r.tiers.map(([start, price]) => ({ start, price: formatUsd(price) })) };
  return {
    id: m.id,
    provider: m.provider,
    input_price: base("input_mtok"),
    output_price: base("output_mtok"),
    cache_read_price: base("cache_read_mtok"),
    cache_write_price: base("cache_write_mtok"),
    max_output_tokens: m.maxOutputTokens,
    context_window: m.contextWindow,
    prices: rates && Object.fromEntries(Object.entries(rates).map(([k, r]) => [k, wire(r)])),
    service_tiers: m.serviceTiers ?? null,
    overridden: m.overridden,
  };
}
