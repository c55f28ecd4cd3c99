import { type Context, Hono } from "hono";
import { getCatalog } from "../catalog/catalog.ts";
import { allowsModel } from "../catalog/scope.ts";
import { controlD1 } from "../db/client.ts";
import type { UsageWire } from "./activity-pages.tsx";
import { api } from "./api.ts";
import type { DashboardEnv } from "./env.ts";
import { setFlash } from "./flash.ts";
import {
  budgetState,
  catalogCheck,
  KEY_STATUSES,
  keyNames,
  type ListedKey,
  listKeys,
  listMaxCost,
  liveKey,
  pickerModels,
  recentRuns,
  revokedKey,
  type Smallest,
  smallestRequest,
} from "./key-data.ts";
import {
  apiErrors,
  checkKeyForm,
  type FieldErrors,
  KeyForm,
  type KeyValues,
  type KeyWire,
  valuesFrom,
  valuesOf,
} from "./key-form.tsx";
import { Confirm, type Grace, KeyCreated, KeyDetail, KeyList, SecretGone } from "./key-pages.tsx";
import type { LedgerWire } from "./ledger-table.tsx";
import { page } from "./page.tsx";

/** Keys: list, create, detail, edit, pause/resume, rotate and revoke — each a call to the management API. */
export const keyRoutes = new Hono<DashboardEnv>();

type Created = KeyWire & { key: string };

const NOT_FOUND = <p class="alert">No such key in this wallet.</p>;

keyRoutes.get("/keys", async (c) => {
  const q = (c.req.query("q") ?? "").trim();
  const asked = c.req.query("status") ?? "";
  const status = (KEY_STATUSES as readonly string[]).includes(asked) ? asked : "";
  const parent = /^spk_[A-Za-z0-9]+$/.test(c.req.query("parent") ?? "") ? (c.req.query("parent") ?? "") : "";
  const res = await listKeys(c, status, c.req.query("cursor"), parent);
  const needle = q.toLowerCase();
  const keys = familyOrder(
    res.data.filter(
      (k) => !needle || k.name.toLowerCase().includes(needle) || k.key_preview.toLowerCase().includes(needle),
    ),
  );
  const smallest = smallestRequest(await getCatalog(controlD1(c.env)), new Map());
  const states = new Map(keys.map((k) => [k.spend_key_id, budgetState(k, listMaxCost(k), smallest(k))]));
  // The parents' names, for a child listed without its parent on the page (or a parent filter).
  const names =
    parent || keys.some((k) => k.parent_key_id)
      ? new Map((await keyNames(c)).map((n) => [n.id, n.name]))
      : new Map<string, string>();
  const list = (
    <KeyList
      keys={keys}
      states={states}
      q={q}
      status={status}
      parent={parent ? { id: parent, name: names.get(parent) ?? parent } : null}
      names={names}
      next={res.next_cursor}
    />
  );
  return page(c, "Keys", list);
});

/**
 * A page of keys with each child right under its parent (and its parent's other children), when the parent is
 * on the page; the rest keep the list's order.
 */
export function familyOrder(keys: ListedKey[]): ListedKey[] {
  const here = new Set(keys.map((k) => k.spend_key_id));
  const children = new Map<string, ListedKey[]>();
  for (const k of keys) {
    if (k.parent_key_id && here.has(k.parent_key_id)) {
      children.set(k.parent_key_id, [...(children.get(k.parent_key_id) ?? []), k]);
    }
  }
  const out: ListedKey[] = [];
  const add = (k: ListedKey) => {
    out.push(k);
    for (const child of children.get(k.spend_key_id) ?? []) add(child);
  };
  for (const k of keys) if (!(k.parent_key_id && here.has(k.parent_key_id))) add(k);
  return out;
}

/** A key's parent (name and id) and its live children, as the management API lists them. */
async function familyOf(c: Context<DashboardEnv>, k: ListedKey) {
  const wallet = c.get("session").walletId;
  const [parent, children] = await Promise.all([
    k.parent_key_id ? api<KeyWire>(c, wallet, "GET", `/spend_keys/${k.parent_key_id}`) : Promise.resolve(null),
    k.status === "revoked"
      ? Promise.resolve(null)
      : api<{ data: KeyWire[] }>(c, wallet, "GET", `/spend_keys?parent_key_id=${k.spend_key_id}&limit=100`),
  ]);
  let parentName: { id: string; name: string } | null = null;
  if (k.parent_key_id) {
    // A revoked parent (its children are revoked with it) answers 404: its name stays in D1.
    const name = parent?.ok ? parent.body.name : (await keyNames(c)).find((n) => n.id === k.parent_key_id)?.name;
    parentName = { id: k.parent_key_id, name: name ?? k.parent_key_id };
  }
  return { parent: parentName, children: children?.ok ? children.body.data : [] };
}

async function formPage(
  c: Context<DashboardEnv>,
  values: KeyValues,
  errors: FieldErrors = {},
  key?: KeyWire,
): Promise<Response> {
  const action = key ? `/keys/${key.spend_key_id}` : "/keys";
  const family = key ? await familyOf(c, key) : null;
  const form = (
    <KeyForm
      csrf={c.get("session").csrf}
      action={action}
      k={key}
      values={values}
      models={await pickerModels(c)}
      errors={errors}
      parent={family?.parent ?? null}
      family={key && family?.children.length ? { children: family.children.length, carved: key.carved_spend } : null}
    />
  );
  const refused = Object.keys(errors).length > 0;
  return page(c, key ? `Edit ${key.name}` : "Create a key", form, refused ? 400 : 200);
}

keyRoutes.post("/keys", async (c) => {
  const values = valuesFrom(c.get("form"));
  const checked = checkKeyForm(values, true, await catalogCheck(c));
  if (Object.keys(checked.errors).length) return formPage(c, values, checked.errors);
  const res = await api<Created>(c, c.get("session").walletId, "POST", "/spend_keys", checked.body);
  if (!res.ok) return formPage(c, values, apiErrors(res.error));
  // Post-redirect-get: the secret goes over the redirect in the sealed, single-use flash, never in the URL.
  await setFlash(c, { secret: { kind: "key", id: res.body.spend_key_id, value: res.body.key } });
  return c.redirect(`/keys/${res.body.spend_key_id}/created`, 303);
});

/** The key just created or rotated, with its secret — once: a reload finds the flash gone. */
keyRoutes.get("/keys/:id/created", async (c) => {
  const live = await liveKey(c, c.req.param("id"));
  if (!live) return page(c, "Not found", NOT_FOUND, 404);
  const secret = c.get("flash")?.secret;
  if (!secret || secret.id !== live.key.spend_key_id || secret.kind === "webhook") {
    return page(c, live.key.name, <SecretGone k={live.key} />);
  }
  const rotated = secret.kind === "rotated";
  const origin = new URL(c.req.url).origin;
  const model = exampleModel(await getCatalog(controlD1(c.env)), live.key);
  const created = (
    <KeyCreated
      k={live.key}
      secret={secret.value}
      origin={origin}
      rotated={rotated}
      model={model}
      previousUntil={live.key.previous_secret_expires_at}
    />
  );
  return page(c, rotated ? "Key rotated" : "Key created", created);
});

/** A model the key may call, for its snippets: the shape's usual small model when allowed, else the first it may. */
function exampleModel(catalog: Awaited<ReturnType<typeof getCatalog>>, k: KeyWire): string | null {
  const may = (id: string, provider: string) =>
    (!k.allowed_providers || k.allowed_providers.includes(provider)) && allowsModel(k.allowed_models, id);
  const anthropic = k.request_shape === "anthropic";
  const usual = anthropic ? ["claude-haiku-4-5", "claude-sonnet-4-5"] : ["gpt-4o-mini", "claude-haiku-4-5"];
  for (const id of usual) {
    const entry = catalog.resolve(id)?.entry;
    if (entry && may(id, entry.provider)) return id;
  }
  for (const id of k.allowed_models ?? []) {
    const entry = catalog.resolve(id)?.entry;
    if (entry && (!anthropic || entry.provider === "anthropic") && may(id, entry.provider)) return id;
  }
  const any = catalog
    .models()
    .find(({ id, entry }) => (!anthropic || entry.provider === "anthropic") && may(id, entry.provider));
  return any?.id ?? null;
}

// `/keys/new` is served here rather than as its own route: a static segment beside `:id` at one level is the one
// shape Hono's RegExpRouter cannot compile, and it would send the whole app (the gateway's routes too) to the
// slower trie router, which allocates on every match.
keyRoutes.get("/keys/:id", async (c) => {
  const id = c.req.param("id");
  if (id === "new") return formPage(c, valuesOf());
  const live = await liveKey(c, id);
  const k: ListedKey | null = live?.key ?? (await revokedKey(c, id));
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const wallet = c.get("session").walletId;
  const start = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10);
  const [usage, recent, family, runs] = await Promise.all([
    api<UsageWire>(c, wallet, "GET", `/usage?start=${start}&spend_key_id=${k.spend_key_id}`),
    api<{ data: LedgerWire[] }>(c, wallet, "GET", `/requests?spend_key_id=${k.spend_key_id}&limit=10`),
    familyOf(c, k),
    recentRuns(c, k.spend_key_id),
  ]);
  const days = (usage.body.items ?? []).map((d) => ({ date: d.date, cost: d.total_cost }));
  let smallest: Smallest | null = null;
  if (k.spend_limit) smallest = smallestRequest(await getCatalog(controlD1(c.env)), new Map())(k);
  const maxCost = live ? live.maxCost : null;
  const detail = (
    <KeyDetail
      k={k}
      csrf={c.get("session").csrf}
      days={days}
      total={usage.body.totals?.total_cost ?? "0.00"}
      recent={recent.body.data ?? []}
      maxCost={maxCost}
      state={live ? budgetState(k, maxCost, smallest) : null}
      parent={family.parent}
      childKeys={family.children}
      runs={runs}
    />
  );
  return page(c, k.name, detail);
});

async function loadKey(c: Context<DashboardEnv>): Promise<KeyWire | null> {
  const id = encodeURIComponent(c.req.param("id") ?? "");
  const res = await api<KeyWire>(c, c.get("session").walletId, "GET", `/spend_keys/${id}`);
  return res.ok ? res.body : null;
}

keyRoutes.get("/keys/:id/edit", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  return formPage(c, valuesOf(k), {}, k);
});

keyRoutes.post("/keys/:id", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const child = k.parent_key_id !== null;
  const values = valuesFrom(c.get("form"), k.request_shape);
  // A child's spend limit is its carve: the form shows it read-only and never sends it.
  if (child) Object.assign(values, { spend_amount: valuesOf(k).spend_amount, spend_cycle: valuesOf(k).spend_cycle });
  const checked = checkKeyForm(values, false, await catalogCheck(c), child);
  if (Object.keys(checked.errors).length) return formPage(c, values, checked.errors, k);
  const path = `/spend_keys/${k.spend_key_id}`;
  const res = await api<KeyWire>(c, c.get("session").walletId, "PATCH", path, checked.body);
  if (!res.ok) return formPage(c, values, apiErrors(res.error), k);
  await setFlash(c, { notice: `Saved the changes to ${res.body.name}.` });
  return c.redirect(`/keys/${k.spend_key_id}`, 303);
});

for (const [action, status, done] of [
  ["pause", "paused", "Paused"],
  ["resume", "active", "Resumed"],
] as const) {
  keyRoutes.post(`/keys/:id/${action}`, async (c) => {
    const id = encodeURIComponent(c.req.param("id"));
    const res = await api<KeyWire>(c, c.get("session").walletId, "PATCH", `/spend_keys/${id}`, { status });
    if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
    const next = status === "paused" ? "its requests are refused until you resume it." : "it works again.";
    await setFlash(c, { notice: `${done} ${res.body.name}: ${next}` });
    return c.redirect(`/keys/${id}`, 303);
  });
}

for (const action of ["rotate", "revoke"] as const) {
  keyRoutes.get(`/keys/:id/${action}`, async (c) => {
    const k = await loadKey(c);
    if (!k) return page(c, "Not found", NOT_FOUND, 404);
    const title = `${action === "rotate" ? "Rotate" : "Revoke"} ${k.name}?`;
    return page(c, title, <Confirm k={k} csrf={c.get("session").csrf} action={action} />);
  });
}

const GRACE_WORDS = "Grace period must be a whole number of minutes or hours, at most 24 hours; empty for none.";

/** The rotate form's grace period, in seconds (0: none), or what is wrong with it in the form's words. */
export function graceOf(amount: string, unit: string): { seconds: number } | { error: string } {
  if (!amount) return { seconds: 0 };
  const n = /^\d+$/.test(amount) ? Number(amount) : Number.NaN;
  const per = unit === "hours" ? 3600 : 60;
  if (!Number.isInteger(n)) return { error: GRACE_WORDS };
  if (n * per > 86_400) return { error: "Grace period can be at most 24 hours (1,440 minutes)." };
  return { seconds: n * per };
}

keyRoutes.post("/keys/:id/rotate", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const form = c.get("form");
  const grace: Grace = {
    amount: typeof form.grace_amount === "string" ? form.grace_amount.trim() : "",
    unit: form.grace_unit === "hours" ? "hours" : "minutes",
  };
  const asked = graceOf(grace.amount, grace.unit);
  if ("error" in asked) {
    const confirm = (
      <Confirm k={k} csrf={c.get("session").csrf} action="rotate" grace={{ ...grace, error: asked.error }} />
    );
    return page(c, `Rotate ${k.name}?`, confirm, 400);
  }
  const body = asked.seconds ? { grace_period_seconds: asked.seconds } : undefined;
  const res = await api<Created>(c, c.get("session").walletId, "POST", `/spend_keys/${k.spend_key_id}/rotate`, body);
  if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
  await setFlash(c, { secret: { kind: "rotated", id: res.body.spend_key_id, value: res.body.key } });
  return c.redirect(`/keys/${res.body.spend_key_id}/created`, 303);
});

keyRoutes.post("/keys/:id/revoke", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const res = await api<unknown>(c, c.get("session").walletId, "DELETE", `/spend_keys/${k.spend_key_id}`);
  if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
  await setFlash(c, {
    notice: `Revoked ${k.name}: it is refused from now on. Its page and requests stay (Status: revoked).`,
  });
  return c.redirect("/keys", 303);
});
