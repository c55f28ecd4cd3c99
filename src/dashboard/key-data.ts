import { and, eq, isNotNull, isNull, type SQL } from "drizzle-orm";
import type { Context } from "hono";
import { type Catalog, getCatalog, isModelId, pricesAt } from "../catalog/catalog.ts";
import { allowsModel } from "../catalog/scope.ts";
import { serializeModel } from "../catalog/wire.ts";
import { controlD1, database, walletD1 } from "../db/client.ts";
import { type SpendKeyRow, spendKeys } from "../db/schema.ts";
import { keyGuard } from "../guard/stub.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS, recordOf } from "../keys/record.ts";
import { countsOf, liveKeyView, serializeSpendKey } from "../keys/view.ts";
import { listPage } from "../lib/cursor.ts";
import { isKeyId } from "../lib/keys.ts";
import { formatUsd, parseUsd } from "../lib/money.ts";
import { perPicture } from "./catalog-pages.tsx";
import type { DashboardEnv } from "./env.ts";
import type { KeyWire, PickerModel } from "./key-form.tsx";

/**
 * What the key pages read besides the management API: revoked keys (the API answers 404 for them, but their
 * names and history stay the wallet's), a key's live budget as `GET /v1/key` reports it, and the catalog as the
 * model picker offers it. All read-only.
 */

/** A key as the dashboard lists it: the API's view, or a revoked key's last one. */
export type ListedKey = Omit<KeyWire, "status"> & { status: KeyWire["status"] | "revoked" };

export const KEY_STATUSES = ["active", "paused", "revoked", "all"] as const;

const viewOf = (r: SpendKeyRow, now: number): ListedKey => {
  const view = serializeSpendKey(recordOf(r), countsOf(r, now), now);
  return r.revokedAt === null ? view : { ...view, status: "revoked" };
};

/**
 * One page of the wallet's keys by status ("": active and paused, as the API lists them), and optionally only the
 * children of one key.
 */
export async function listKeys(c: Context<DashboardEnv>, status: string, cursor: string | undefined, parent = "") {
  const walletId = c.get("session").walletId;
  const t = spendKeys;
  const scope: (SQL | undefined)[] = [eq(t.walletId, walletId)];
  if (parent) scope.push(eq(t.parentKeyId, parent));
  if (status === "revoked") scope.push(isNotNull(t.revokedAt));
  else if (status !== "all") scope.push(isNull(t.revokedAt));
  if (status === "active" || status === "paused") scope.push(eq(t.status, status));
  const now = Date.now();
  const q = { limit: 100, cursor };
  const d1 = walletD1(c.env, walletId);
  try {
    return await listPage(d1, t, t.id, and(...scope), q, (r) => viewOf(r, now));
  } catch {
    // A cursor that is not ours: the first page.
    return listPage(d1, t, t.id, and(...scope), { limit: 100 }, (r) => viewOf(r, now));
  }
}

/** A revoked key of the wallet (read-only), or null. */
export async function revokedKey(c: Context<DashboardEnv>, id: string): Promise<ListedKey | null> {
  const walletId = c.get("session").walletId;
  const row = await database(walletD1(c.env, walletId))
    .select()
    .from(spendKeys)
    .where(and(eq(spendKeys.id, id), eq(spendKeys.walletId, walletId), isNotNull(spendKeys.revokedAt)))
    .get();
  return row ? viewOf(row, Date.now()) : null;
}

/** A key's name, whether it is revoked, and the key that minted it (null: the wallet created it). */
export interface KeyName {
  id: string;
  name: string;
  revoked: boolean;
  parent: string | null;
}

/** Every key's name, revoked ones too, for the pages that show a key id (the ledger, usage, the key list). */
export async function keyNames(c: Context<DashboardEnv>): Promise<KeyName[]> {
  const walletId = c.get("session").walletId;
  const rows = await database(walletD1(c.env, walletId))
    .select({
      id: spendKeys.id,
      name: spendKeys.name,
      revokedAt: spendKeys.revokedAt,
      parentKeyId: spendKeys.parentKeyId,
    })
    .from(spendKeys)
    .where(eq(spendKeys.walletId, walletId))
    .all();
  return rows
    .map((r) => ({ id: r.id, name: r.name, revoked: r.revokedAt !== null, parent: r.parentKeyId ?? null }))
    .sort((a, b) => Number(a.revoked) - Number(b.revoked) || a.name.localeCompare(b.name));
}

/**
 * A live key with what its next request may cost at most: the very figure `GET /v1/key` answers as
 * `next_request.max_cost` (the same KeyGuard record and snapshot the management API reads, through the same
 * view). Null when the key is unknown here, another wallet's, or revoked.
 */
export async function liveKey(
  c: Context<DashboardEnv>,
  id: string,
): Promise<{ key: KeyWire; maxCost: string | null } | null> {
  if (!isKeyId("spend", id)) return null;
  const managed = await keyGuard(c.env, id).read(c.get("session").walletId);
  if (!managed) return null;
  const live = liveKeyView(managed.record, managed.snapshot);
  const { held_spend, in_flight, remaining, rate_resets_at, next_request, ...key } = live;
  return { key, maxCost: next_request.max_cost };
}

/** Ids a client can send, never a family's match pattern (`ft:…`, `….ft-`, `…:extended`): the catalog's rule. */
export const sendable = isModelId;

/** The catalog's models as the picker offers them, with a short price each. */
export async function pickerModels(c: Context<DashboardEnv>): Promise<PickerModel[]> {
  const catalog = await getCatalog(controlD1(c.env));
  return catalog
    .models()
    .filter(({ id }) => sendable(id))
    .map(({ id, entry }) => {
      const wire = serializeModel(entry);
      const tokens =
        wire.input_price || wire.output_price
          ? `$${wire.input_price ?? "0"} in · $${wire.output_price ?? "0"} out /1M`
          : "";
      const pictures = perPicture(entry.perImage);
      const price = tokens || (pictures.length ? `from ${pictures[0]}` : "");
      return { id, provider: entry.provider, price };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Whether an id names a catalog model, and its provider (for the form's checks). */
export async function catalogCheck(c: Context<DashboardEnv>) {
  const catalog = await getCatalog(controlD1(c.env));
  return {
    known: (id: string) => catalog.resolve(id) !== undefined,
    providerOf: (id: string) => catalog.resolve(id)?.entry.provider,
  };
}

/** The cheapest a request with the gateway's smallest clamped output can cost on a model the key may call. */
export interface Smallest {
  model: string;
  nanos: number;
}

/**
 * The least a chat request's hold can be on this key with a default output limit: MIN_CLAMPED_OUTPUT_TOKENS output
 * tokens on the cheapest model it may call (input not counted, so it is a floor). Memoised per scope.
 */
export function smallestRequest(catalog: Catalog, memo: Map<string, Smallest | null>) {
  return (k: Pick<KeyWire, "allowed_models" | "allowed_providers">): Smallest | null => {
    const sig = JSON.stringify([k.allowed_models, k.allowed_providers]);
    if (memo.has(sig)) return memo.get(sig) ?? null;
    let best: Smallest | null = null;
    const now = new Date();
    for (const { id, entry } of catalog.models()) {
      if (k.allowed_providers && !k.allowed_providers.includes(entry.provider)) continue;
      if (!allowsModel(k.allowed_models, id)) continue;
      const rate = pricesAt(entry, now)?.rates.output_mtok;
      const perM = typeof rate === "number" ? rate : rate?.base;
      if (!perM) continue;
      const nanos = Math.ceil((perM * MIN_CLAMPED_OUTPUT_TOKENS) / 1_000_000);
      if (!best || nanos < best.nanos) best = { model: id, nanos };
    }
    memo.set(sig, best);
    return best;
  };
}

/** Why a live key's next request would be refused whatever it asks, if it would: the most decisive reason. */
export interface BudgetState {
  badge: "Expired" | "Budget exhausted" | "Request limit reached" | "Cannot afford another request";
  detail: string;
}

export function budgetState(k: ListedKey, maxCost: string | null, smallest: Smallest | null): BudgetState | null {
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) {
    return {
      badge: "Expired",
      detail: "Every request is refused: the key expired. Set a later expiry to use it again.",
    };
  }
  const spent = spendState(k, maxCost, smallest);
  if (spent?.badge === "Budget exhausted") return spent;
  if (k.request_limit && k.current_requests >= k.request_limit.count) {
    const until = k.request_limit.cycle === "total" ? "until the limit is raised" : "until the cycle resets";
    return {
      badge: "Request limit reached",
      detail: `Cannot make another request: ${k.request_limit.count} of ${k.request_limit.count} used, ${until}.`,
    };
  }
  return spent;
}

function spendState(k: ListedKey, maxCost: string | null, smallest: Smallest | null): BudgetState | null {
  if (!k.spend_limit || maxCost === null) return null;
  const left = parseUsd(maxCost) ?? 0;
  const until =
    k.spend_limit.cycle === "total" ? "until the limit is raised" : "until the cycle resets or the limit is raised";
  if (left <= 0) {
    return {
      badge: "Budget exhausted",
      detail: `Cannot afford another request: nothing of the spend limit is left, ${until}.`,
    };
  }
  if (smallest && left < smallest.nanos) {
    return {
      badge: "Cannot afford another request",
      detail:
        `$${maxCost} is left for the next request; ` +
        `${MIN_CLAMPED_OUTPUT_TOKENS.toLocaleString("en-US")} output tokens ` +
        `of ${smallest.model}, the cheapest model it may call, cost $${formatUsd(smallest.nanos)}. ` +
        `Only a request asking for fewer output tokens (max_tokens) still fits.`,
    };
  }
  return null;
}

/**
 * What the next request may cost at most as a list can know it (D1's counters, without requests in flight): the
 * limit less the cycle's spend and what the key's children hold of it.
 */
export const listMaxCost = (k: ListedKey): string | null =>
  k.spend_limit
    ? formatUsd(
        Math.max(
          0,
          (parseUsd(k.spend_limit.amount) ?? 0) - (parseUsd(k.current_spend) ?? 0) - (parseUsd(k.carved_spend) ?? 0),
        ),
      )
    : null;

/** One run of a key as its ledger rows add up: requests, tokens and exact spend, first and last request. */
export interface RunSummary {
  run: string;
  requests: number;
  tokens: number;
  cost: string;
  first: string;
  last: string;
}

/**
 * A key's most recent runs (by their last request), summed from the raw ledger rows that named them — the rows
 * `GET /v1/requests?run_id=` lists and `GET /v1/usage?group_by=run` adds up, over the raw window D1 keeps.
 */
export async function recentRuns(c: Context<DashboardEnv>, keyId: string, limit = 10): Promise<RunSummary[]> {
  const walletId = c.get("session").walletId;
  const { results } = await walletD1(c.env, walletId)
    .prepare(
      `SELECT run_id AS run, count(*) AS n,
        sum(input_tokens + cache_read_tokens + cache_write_tokens + media_input_tokens + output_tokens) AS tokens,
        sum(cost_nanos) AS cost, min(created_at) AS first, max(created_at) AS last
      FROM requests WHERE wallet_id = ? AND spend_key_id = ? AND run_id IS NOT NULL
      GROUP BY run_id ORDER BY last DESC LIMIT ?`,
    )
    .bind(walletId, keyId, limit)
    .all<{ run: string; n: number; tokens: number; cost: number; first: number; last: number }>();
  return results.map((r) => ({
    run: r.run,
    requests: r.n,
    tokens: r.tokens,
    cost: formatUsd(r.cost),
    first: new Date(r.first).toISOString(),
    last: new Date(r.last).toISOString(),
  }));
}
