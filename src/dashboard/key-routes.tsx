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
  type ListedKey,
  listKeys,
  listMaxCost,
  liveKey,
  pickerModels,
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
import { Confirm, KeyCreated, KeyDetail, KeyList, SecretGone } from "./key-pages.tsx";
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
  const res = await listKeys(c, status, c.req.query("cursor"));
  const needle = q.toLowerCase();
  const keys = res.data.filter(
    (k) => !needle || k.name.toLowerCase().includes(needle) || k.key_preview.toLowerCase().includes(needle),
  );
  const smallest = smallestRequest(await getCatalog(controlD1(c.env)), new Map());
  const states = new Map(keys.map((k) => [k.spend_key_id, budgetState(k, listMaxCost(k), smallest(k))]));
  return page(c, "Keys", <KeyList keys={keys} states={states} q={q} status={status} next={res.next_cursor} />);
});

async function formPage(
  c: Context<DashboardEnv>,
  values: KeyValues,
  errors: FieldErrors = {},
  key?: KeyWire,
): Promise<Response> {
  const action = key ? `/keys/${key.spend_key_id}` : "/keys";
  const form = (
    <KeyForm
      csrf={c.get("session").csrf}
      action={action}
      k={key}
      values={values}
      models={await pickerModels(c)}
      errors={errors}
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
  return page(
    c,
    rotated ? "Key rotated" : "Key created",
    <KeyCreated k={live.key} secret={secret.value} origin={origin} rotated={rotated} model={model} />,
  );
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
  const [usage, recent] = await Promise.all([
    api<UsageWire>(c, wallet, "GET", `/usage?start=${start}&spend_key_id=${k.spend_key_id}`),
    api<{ data: LedgerWire[] }>(c, wallet, "GET", `/requests?spend_key_id=${k.spend_key_id}&limit=10`),
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
  const values = valuesFrom(c.get("form"), k.request_shape);
  const checked = checkKeyForm(values, false, await catalogCheck(c));
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

keyRoutes.post("/keys/:id/rotate", async (c) => {
  const id = encodeURIComponent(c.req.param("id"));
  const res = await api<Created>(c, c.get("session").walletId, "POST", `/spend_keys/${id}/rotate`);
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
