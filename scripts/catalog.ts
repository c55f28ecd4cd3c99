/**
 * `npm run catalog`: compiles the price database `@pydantic/genai-prices` (the version pinned in package.json)
 * into `src/catalog/prices.gen.json`, keeping only what the Worker needs for the providers it routes: each
 * model's match rule, context window and prices (as exact decimal strings), and each provider's usage mappings.
 * `npm run catalog -- --check` (run by `npm test`) fails when the file is not what the pinned package produces.
 *
 * To take new prices: `npm update @pydantic/genai-prices && npm run catalog`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { findProvider, type ModelInfo, type ModelPrice } from "@pydantic/genai-prices";
import { UNITS } from "../src/catalog/units.ts";
import { PROVIDER_IDS } from "../src/providers/registry.ts";
import { decimal } from "./lib/decimal.ts";

const OUT = new URL("../src/catalog/prices.gen.json", import.meta.url);
const PACKAGE = new URL("../node_modules/@pydantic/genai-prices/package.json", import.meta.url);
const version: string = JSON.parse(readFileSync(PACKAGE, "utf8")).version;

/** The database's provider id for each of ours, where they differ. */
const DATABASE_ID: Record<string, string> = { xai: "x-ai" };
/** The usage-mapping flavors the gateway reads (`default` is Anthropic's Messages API). */
const FLAVORS = new Set(["chat", "responses", "default", "images", "embeddings"]);

type Rate = string | { base: string; tiers: [start: number, price: string][] };

function rate(v: unknown): Rate {
  if (typeof v === "number") return decimal(v);
  const t = v as { base: number; tiers: { start: number; price: number }[] };
  return { base: decimal(t.base), tiers: t.tiers.map((x) => [x.start, decimal(x.price)]) };
}

function table(prices: ModelPrice): Record<string, Rate> | null {
  const out: Record<string, Rate> = {};
  for (const [key, v] of Object.entries(prices)) {
    if (v === undefined) continue;
    if (!UNITS.has(key)) return null; // a unit the gateway cannot meter on its routes (pages, messages, video)
    out[key] = rate(v);
  }
  return out;
}

function compileModel(m: ModelInfo) {
  const conditional = Array.isArray(m.prices) ? m.prices : [{ prices: m.prices }];
  const schedule = [];
  for (const c of conditional) {
    const t = table(c.prices);
    if (!t) return null;
    schedule.push(c.constraint ? { when: c.constraint, prices: t } : { prices: t });
  }
  return { id: m.id, match: m.match, context: m.context_window ?? null, schedule };
}

const providers: Record<string, unknown> = {};
const skipped: string[] = [];
for (const id of PROVIDER_IDS) {
  const p = findProvider({ providerId: DATABASE_ID[id] ?? id });
  if (!p) throw new Error(`@pydantic/genai-prices has no provider '${id}'`);
  const extractors: Record<string, [string, string | string[], boolean][]> = {};
  for (const e of p.extractors ?? []) {
    if (!FLAVORS.has(e.api_flavor)) continue;
    const rows = e.mappings.filter((x) =>
      (Array.isArray(x.path) ? x.path : [x.path]).every((s) => typeof s === "string"),
    );
    extractors[e.api_flavor] = rows.map((x) => [x.dest, x.path as string | string[], x.required]);
  }
  const models = [];
  for (const m of p.models) {
    const compiled = compileModel(m);
    if (compiled) models.push(compiled);
    else skipped.push(`${id}/${m.id}`);
  }
  providers[id] = { extractors, models };
}

// One line per model and per usage mapping, so a price update reads as a short diff.
const lines = [
  "{",
  ` "generated": ${JSON.stringify(`by npm run catalog from @pydantic/genai-prices ${version}; do not edit`)},`,
  ` "source": ${JSON.stringify({ package: "@pydantic/genai-prices", version })},`,
  ' "providers": {',
];
Object.entries(providers).forEach(([id, p], i, all) => {
  const { extractors, models } = p as { extractors: Record<string, unknown[]>; models: unknown[] };
  const flavors = Object.entries(extractors).map(
    ([flavor, rows]) =>
      `    ${JSON.stringify(flavor)}: [\n${rows.map((r) => `     ${JSON.stringify(r)}`).join(",\n")}\n    ]`,
  );
  lines.push(`  ${JSON.stringify(id)}: {`, '   "extractors": {', flavors.join(",\n"), "   },", '   "models": [');
  lines.push(models.map((m) => `    ${JSON.stringify(m)}`).join(",\n"), "   ]", `  }${i < all.length - 1 ? "," : ""}`);
});
lines.push(" }", "}", "");
const text = lines.join("\n");
JSON.parse(text); // well-formed

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUT, "utf8");
  } catch {}
  if (current !== text) {
    console.error(
      `src/catalog/prices.gen.json is not what @pydantic/genai-prices ${version} compiles to: run npm run catalog.`,
    );
    process.exit(1);
  }
  console.log(`catalog: src/catalog/prices.gen.json matches @pydantic/genai-prices ${version}`);
} else {
  writeFileSync(OUT, text);
  const count = Object.values(providers).reduce((n: number, p) => n + (p as { models: unknown[] }).models.length, 0);
  console.log(`catalog: ${count} models from @pydantic/genai-prices ${version} (${skipped.length} left out:`);
  console.log(`  priced by units the gateway does not meter: ${skipped.join(", ")})`);
}
