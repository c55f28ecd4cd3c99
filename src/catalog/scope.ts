import { PROVIDER_IDS } from "../providers/registry.ts";
import { builtinCatalog, type Catalog, type NamedModel } from "./catalog.ts";

/**
 * A key's `allowed_models`: which ids it may call (docs/api.md). Two ids name the same model when the price
 * database resolves them to the same priced model — what the ledger records as `priced_model`. An alias, its
 * dated snapshots and their `provider/` forms all name one model, so allowing any of them allows them all, both
 * ways (the catalog cannot tell which snapshot an alias points at today, so a dated id does not pin one).
 *
 * An id the database prices by a family's pattern rather than as a model of its own (a fine-tune
 * `ft:gpt-4o-mini-2024-07-18:org::id`, Mistral's `magistral-small-*`) is a model of its own, and so is an id the
 * database does not know (an operator's); either without its `provider/` prefix.
 *
 * Only the built-in rules decide, never operator overrides: the KeyGuard admits requests without the catalog's
 * D1 copy, and `GET /v1/models` must list exactly what it admits. An override reprices a model; it never widens
 * or narrows what a key may call.
 */
export function scopeId(id: string): string {
  const resolved = builtinCatalog.resolve(id);
  if (resolved) return isModel(resolved.entry.id) ? resolved.entry.id : resolved.upstreamModel;
  const slash = id.indexOf("/");
  return slash > 0 && (PROVIDER_IDS as string[]).includes(id.slice(0, slash)) ? id.slice(slash + 1) : id;
}

/** The built-in entries that are models (the catalog lists a name for them), not families priced by a pattern. */
let models: ReadonlySet<string> | undefined;
const isModel = (entryId: string) => {
  models ??= new Set(builtinCatalog.models().map((m) => m.entry.id));
  return models.has(entryId);
};

/** Each key's allowed ids as the models they name, kept while its configuration (the same array) lasts. */
const scopes = new WeakMap<readonly string[], ReadonlySet<string>>();

/** Whether a key with these `allowed_models` (null: every model) may call `model`, by any id of the model. */
export function allowsModel(allowed: readonly string[] | null, model: string): boolean {
  if (!allowed || allowed.includes(model)) return true;
  let scope = scopes.get(allowed);
  if (!scope) {
    scope = new Set(allowed.map(scopeId));
    scopes.set(allowed, scope);
  }
  return scope.has(scopeId(model));
}

/**
 * The allowed ids the catalog lists no model for (a fine-tune, a member of a family priced by a pattern), each a
 * model of its own under the id as written: what a key lists besides the catalog's models in its scope.
 */
export function ownModels(catalog: Catalog, allowed: readonly string[] | null): NamedModel[] {
  if (!allowed) return [];
  const listed = new Set(catalog.models().map((m) => m.entry));
  return allowed.flatMap((id) => {
    const entry = catalog.resolve(id)?.entry;
    return entry && !listed.has(entry) ? [{ id, entry }] : [];
  });
}
