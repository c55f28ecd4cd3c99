import { database } from "../db/client.ts";
import { modelOverrides } from "../db/schema.ts";
import { type Prices, parseUsd } from "../lib/money.ts";
import type { RouteKind } from "../providers/registry.ts";
import { BUILTIN_MODELS, CATALOG_CREATED } from "./builtin.ts";

export interface ModelEntry {
  id: string;
  provider: string;
  /** nano-dollars per 1M tokens; null = not priced */
  prices: Prices | null;
  /** the most output tokens the model produces unasked; null when not known (operator models) */
  maxOutputTokens: number | null;
  /** context window in tokens; null when not known (operator models) */
  contextWindow: number | null;
  /** the routes beyond chat the model serves (operator models: chat routes only) */
  serves: readonly RouteKind[];
  /** nano-dollars per image by `quality|size` (`*|size`: any quality), for models priced per image */
  perImage?: Readonly<Record<string, number>>;
  created: number;
  overridden: boolean;
}

export type Catalog = ReadonlyMap<string, ModelEntry>;

function builtinEntries(): Map<string, ModelEntry> {
  const map = new Map<string, ModelEntry>();
  for (const [id, m] of Object.entries(BUILTIN_MODELS)) {
    const p = m.price;
    const usd = (s: string | undefined, fallback: number) => {
      const nanos = s === undefined ? fallback : parseUsd(s);
      if (nanos === null) throw new Error(`builtin catalog: bad price '${s}' for ${id}`);
      return nanos;
    };
    const prices = p
      ? (() => {
          const input = usd(p[0], 0);
          const base = { input, output: usd(p[1], 0), cacheRead: usd(p[2], input), cacheWrite: usd(p[3], input) };
          const unit = m.perUnit && m.perUnit.unit !== "image" ? { perUnit: usd(m.perUnit.usd, 0) } : {};
          return { ...base, ...(m.mediaInput ? { mediaInput: usd(m.mediaInput, 0) } : {}), ...unit };
        })()
      : null;
    const perImage =
      m.perUnit?.unit === "image"
        ? Object.fromEntries(Object.entries(m.perUnit.bySize).map(([k, v]) => [k, usd(v, 0)]))
        : undefined;
    map.set(id, {
      id,
      provider: m.provider,
      prices,
      maxOutputTokens: m.maxOutput,
      contextWindow: m.context,
      serves: m.serves ?? [],
      ...(perImage ? { perImage } : {}),
      created: CATALOG_CREATED,
      overridden: false,
    });
  }
  return map;
}

const BUILTIN = builtinEntries();

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
  const map = new Map(BUILTIN);
  for (const r of rows) {
    map.set(r.model, {
      id: r.model,
      provider: r.provider,
      prices: {
        input: r.inputPrice,
        output: r.outputPrice,
        cacheRead: r.cacheReadPrice ?? r.inputPrice,
        cacheWrite: r.cacheWritePrice ?? r.inputPrice,
      },
      // No guessed defaults: an unknown bound makes a spend-limited key ask the client for max_tokens (hold.ts).
      maxOutputTokens: r.maxOutputTokens ?? BUILTIN.get(r.model)?.maxOutputTokens ?? null,
      contextWindow: r.contextWindow ?? BUILTIN.get(r.model)?.contextWindow ?? null,
      serves: BUILTIN.get(r.model)?.serves ?? [],
      created: Math.floor(r.updatedAt / 1000),
      overridden: true,
    });
  }
  cached = { catalog: map, loadedAt: Date.now() };
  return map;
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

export function builtinModel(id: string): ModelEntry | undefined {
  return BUILTIN.get(id);
}
