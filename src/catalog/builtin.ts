import { type CompiledModel, compiledModels } from "./compiled.ts";
import type { ModelEntry } from "./entry.ts";
import { compileMatch, exactNames } from "./match.ts";
import { nanos } from "./pricing.ts";
import { MAX_OUTPUT, OPENAI_SERVICE_TIERS, SERVES, SUPPLEMENT_MODELS } from "./supplement.ts";

/**
 * The built-in entries: the compiled price database's models (with what the supplement adds) and the models
 * only the supplement prices, by id, and each provider's models with their match rules, in the database's order.
 */

const firstMatch = <T>(rows: readonly (readonly [RegExp, T])[], id: string): T | undefined =>
  rows.find(([re]) => re.test(id))?.[1];

function entryOf(provider: string, m: CompiledModel): ModelEntry {
  return {
    id: m.id,
    provider,
    schedule: m.schedule,
    ...(provider === "openai" ? { serviceTiers: OPENAI_SERVICE_TIERS } : {}),
    maxOutputTokens: firstMatch(MAX_OUTPUT, m.id) ?? null,
    contextWindow: m.context,
    serves: firstMatch(SERVES, m.id) ?? [],
    created: CATALOG_CREATED,
    overridden: false,
  };
}

/** Unix seconds reported as each model's `created`: the day the price database version was published. */
const CATALOG_CREATED = 1_793_491_200; // 2026-11-01T00:00:00Z

interface Matcher {
  entry: ModelEntry;
  test: (id: string) => boolean;
}

function builtin() {
  const entries = new Map<string, ModelEntry>();
  const byProvider = new Map<string, Matcher[]>();
  /** the exact ids each listed model's rule names (its aliases and snapshots), by the model's id */
  const names = new Map<string, readonly string[]>();
  for (const [id, s] of Object.entries(SUPPLEMENT_MODELS)) {
    const rates = Object.fromEntries(Object.entries(s.rates).map(([k, v]) => [k, nanos(v)]));
    const perImage = s.perImage && Object.fromEntries(Object.entries(s.perImage).map(([k, v]) => [k, nanos(v)]));
    entries.set(id, {
      id,
      provider: s.provider,
      schedule: [{ rates }],
      maxOutputTokens: s.maxOutput,
      contextWindow: s.context,
      serves: firstMatch(SERVES, id) ?? [],
      ...(perImage ? { perImage } : {}),
      created: CATALOG_CREATED,
      overridden: false,
    });
  }
  for (const { provider, models } of compiledModels()) {
    const matchers: Matcher[] = [];
    for (const m of models) {
      const entry = entryOf(provider, m);
      matchers.push({ entry, test: compileMatch(m.match) });
      // Listed once, under the provider a request for its id goes to (the database also lists models a provider
      // resells, e.g. Claude under Google's Vertex AI, which this gateway sends to Anthropic).
      const servedEarlier = [...byProvider.values()].some((ms) => ms.some((x) => x.test(m.id)));
      if (!entries.has(m.id) && !servedEarlier) {
        entries.set(m.id, entry);
        names.set(m.id, exactNames(m.match));
      }
    }
    byProvider.set(provider, matchers);
  }
  return { entries, byProvider, names };
}

/**
 * Built on first use, not at load: every isolate of the Worker loads this module, the KeyGuard's included,
 * and only the ones that resolve models need the compiled catalog's matchers.
 */
let compiledTables: ReturnType<typeof builtin> | undefined;
export const builtinTables = () => {
  compiledTables ??= builtin();
  return compiledTables;
};
