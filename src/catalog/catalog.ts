import { database } from "../db/client.ts";
import { modelOverrides } from "../db/schema.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";
import { builtinTables } from "./builtin.ts";
import type { ModelEntry, PriceWhen } from "./entry.ts";
import type { Prices, Rate } from "./pricing.ts";

export type { ModelEntry, PriceWhen };

import { SUPPLEMENT_MODELS } from "./supplement.ts";

/** A model id as a request names it, resolved: the entry that prices it and the id to send upstream. */
export interface Resolution {
  entry: ModelEntry;
  upstreamModel: string;
}

/** A model under an id a client can send: the id resolves to the entry. */
export interface NamedModel {
  id: string;
  entry: ModelEntry;
}

export interface Catalog {
  /** every priced model, by its own id (some of which are match patterns, not ids a client can send: `models`) */
  readonly entries: ReadonlyMap<string, ModelEntry>;
  resolve(asked: string): Resolution | undefined;
  /** the model `id` resolves to among one provider's models (its match rules, in the database's order) */
  within(provider: string, id: string): ModelEntry | undefined;
  /** what `GET /v1/models` lists: each entry once, under the first id a client can send for it (none: left out) */
  models(): readonly NamedModel[];
}

/** The prices in force at `at` (the request's admission), as `@pydantic/genai-prices` selects them. */
export function pricesAt(entry: ModelEntry, at: Date): Prices | null {
  const schedule = entry.schedule;
  if (!schedule) return null;
  const seconds =
    at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds() + at.getUTCMilliseconds() / 1e3;
  const inForce = (when: PriceWhen): boolean => {
    if (when.type === "start_date") return at >= new Date(when.start_date);
    const start = timeOfDay(when.start_time);
    const end = timeOfDay(when.end_time);
    return end < start ? seconds >= start || seconds < end : seconds >= start && seconds < end;
  };
  let rates = schedule[0]?.rates ?? {};
  for (let i = schedule.length - 1; i >= 0; i--) {
    const s = schedule[i];
    if (s && (!s.when || inForce(s.when))) {
      rates = s.rates;
      break;
    }
  }
  return entry.serviceTiers ? { rates, serviceTiers: entry.serviceTiers } : { rates };
}

function timeOfDay(text: string): number {
  const [h = 0, m = 0, s = 0] = text.replace(/Z$/, "").split(":").map(Number);
  return h * 3600 + m * 60 + s;
}

/** Resolutions are pure functions of the id; an isolate keeps the recent ones. */
const RESOLVED_CACHE_SIZE = 2_000;

class CatalogView implements Catalog {
  private readonly cache = new Map<string, Resolution | null>();
  private named: readonly NamedModel[] | undefined;
  constructor(
    readonly entries: ReadonlyMap<string, ModelEntry>,
    private readonly overrides: ReadonlyMap<string, ModelEntry>,
  ) {}

  resolve(asked: string): Resolution | undefined {
    let hit = this.cache.get(asked);
    if (hit === undefined) {
      hit = this.lookup(asked) ?? null;
      if (this.cache.size >= RESOLVED_CACHE_SIZE) this.cache.clear();
      this.cache.set(asked, hit);
    }
    return hit ?? undefined;
  }

  /**
   * An operator's override by the exact id; a model the gateway itself prices by id; the database's match rules
   * (aliases, dated snapshots), provider by provider in registry order; then `provider/model`, where the prefix
   * names a provider and the rest is one of its models (sent upstream without the prefix).
   */
  private lookup(asked: string): Resolution | undefined {
    const own =
      this.overrides.get(asked) ??
      (Object.hasOwn(SUPPLEMENT_MODELS, asked) ? builtinTables().entries.get(asked) : undefined);
    if (own) return { entry: own, upstreamModel: asked };
    for (const provider of PROVIDER_IDS) {
      const found = this.within(provider, asked);
      if (found) return { entry: found, upstreamModel: asked };
    }
    const slash = asked.indexOf("/");
    const prefix = asked.slice(0, slash);
    if (slash > 0 && (PROVIDER_IDS as string[]).includes(prefix)) {
      const rest = asked.slice(slash + 1);
      const found = this.overrides.get(rest) ?? this.within(prefix, rest);
      if (found && found.provider === prefix) return { entry: found, upstreamModel: rest };
    }
    return undefined;
  }

  models(): readonly NamedModel[] {
    this.named ??= [...this.entries.values()].flatMap((entry) => {
      const id = this.nameOf(entry);
      return id === undefined ? [] : [{ id, entry }];
    });
    return this.named;
  }

  /**
   * The id a client calls the entry by: an operator's own id as written; else the database's id for it, or the
   * first of the ids its rule names outright, that is a model id (not a pattern) and resolves to this very entry.
   * A database id can be a family's pattern (`ft:gpt-3.5-turbo-`), a name no rule matches (`codestral`, which is
   * `codestral-latest`; Fireworks' `kimi-k3`, which is `accounts/fireworks/models/kimi-k3`), or another
   * provider's (Groq's `mixtral-8x7b-32768` resolves to Mistral's model).
   */
  private nameOf(entry: ModelEntry): string | undefined {
    if (this.overrides.has(entry.id)) return entry.id;
    const candidates = [entry.id, ...(builtinTables().names.get(entry.id) ?? [])];
    return candidates.find((id) => isModelId(id) && sameEntry(this.resolve(id)?.entry, entry));
  }

  within(provider: string, id: string): ModelEntry | undefined {
    const matched = builtinTables()
      .byProvider.get(provider)
      ?.find((m) => m.test(id))?.entry;
    return matched && (this.overrides.get(matched.id) ?? matched);
  }
}

/**
 * Whether a database id is one a client can send as it is, not a pattern the database matches a family by:
 * fine-tunes (`ft:gpt-4o-2024-…`, `gpt-4o-mini-2024-07-18.ft-…`) and resellers' variants (`gpt-4o:extended`,
 * `mistral-nemo:free`) carry a `:` or end in a separator; no provider this gateway routes names a model so.
 */
export const isModelId = (id: string) => !id.includes(":") && !/[-._/@]$/.test(id);

const sameEntry = (a: ModelEntry | undefined, b: ModelEntry) => a?.id === b.id && a.provider === b.provider;

/**
 * Operator overrides live in D1; each isolate keeps them for REFRESH_MS and refreshes in the background,
 * so the gateway's hot path does not query D1 (only an isolate's very first request waits for the load).
 * A write through this isolate's admin API invalidates the copy at once.
 */
const REFRESH_MS = 30_000;
let cached: { catalog: Catalog; loadedAt: number } | undefined;
let loading: Promise<Catalog> | undefined;

async function load(d1: D1Database): Promise<Catalog> {
  const rows = await database(d1).select().from(modelOverrides).all();
  const entries = new Map(builtinTables().entries);
  const overrides = new Map<string, ModelEntry>();
  for (const r of rows) {
    const base = entries.get(r.model);
    const rates: Record<string, Rate> = {
      input_mtok: r.inputPrice,
      output_mtok: r.outputPrice,
      ...(r.cacheReadPrice !== null ? { cache_read_mtok: r.cacheReadPrice } : {}),
      ...(r.cacheWritePrice !== null ? { cache_write_mtok: r.cacheWritePrice } : {}),
      ...(r.rates ?? {}),
    };
    const entry: ModelEntry = {
      id: r.model,
      provider: r.provider,
      schedule: [{ rates }],
      ...(r.serviceTiers ? { serviceTiers: r.serviceTiers } : {}),
      // No guessed defaults: an unknown bound makes a spend-limited key ask the client for max_tokens (hold.ts).
      maxOutputTokens: r.maxOutputTokens ?? base?.maxOutputTokens ?? null,
      contextWindow: r.contextWindow ?? base?.contextWindow ?? null,
      serves: base?.serves ?? [],
      created: Math.floor(r.updatedAt / 1000),
      overridden: true,
    };
    entries.set(r.model, entry);
    overrides.set(r.model, entry);
  }
  const catalog = new CatalogView(entries, overrides);
  cached = { catalog, loadedAt: Date.now() };
  return catalog;
}

export async function getCatalog(d1: D1Database, waitUntil?: (p: Promise<unknown>) => void): Promise<Catalog> {
  if (cached) {
    if (Date.now() - cached.loadedAt > REFRESH_MS && !loading && waitUntil) {
      loading = load(d1).finally(() => (loading = undefined));
      waitUntil(loading.catch(() => undefined));
    }
    return cached.catalog;
  }
  loading ??= load(d1).finally(() => (loading = undefined));
  return loading;
}

export function invalidateCatalog(): void {
  cached = undefined;
}

/** The catalog without operator overrides (what an id falls back to when its override is removed). */
let builtinView: Catalog | undefined;
const builtinViewOf = () => {
  builtinView ??= new CatalogView(builtinTables().entries, new Map());
  return builtinView;
};
export const builtinCatalog: Catalog = {
  get entries() {
    return builtinViewOf().entries;
  },
  resolve: (asked) => builtinViewOf().resolve(asked),
  within: (provider, id) => builtinViewOf().within(provider, id),
  models: () => builtinViewOf().models(),
};
