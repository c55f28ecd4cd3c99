import { type Context, Hono } from "hono";
import { getCatalog } from "../catalog/catalog.ts";
import { controlD1 } from "../db/client.ts";
import type { UsageWire } from "./activity-pages.tsx";
import { api } from "./api.ts";
import type { DashboardEnv } from "./env.ts";
import { KeyForm, type KeyWire, keyBody } from "./key-form.tsx";
import { Confirm, KeyCreated, KeyDetail, KeyList } from "./key-pages.tsx";
import type { LedgerWire } from "./ledger-table.tsx";
import { page } from "./page.tsx";

/** Keys: list, create, detail, edit, pause/resume, rotate and revoke — each a call to the management API. */
export const keyRoutes = new Hono<DashboardEnv>();

type Created = KeyWire & { key: string };

const NOT_FOUND = <p class="alert">No such key in this wallet.</p>;

async function models(c: { env: DashboardEnv["Bindings"] }) {
  const catalog = await getCatalog(controlD1(c.env));
  return catalog
    .models()
    .map(({ id, entry }) => ({ id, provider: entry.provider }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

keyRoutes.get("/keys", async (c) => {
  const q = (c.req.query("q") ?? "").trim();
  const status = c.req.query("status") ?? "";
  const cursor = c.req.query("cursor");
  const path = `/spend_keys?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
  const res = await api<{ data: KeyWire[]; next_cursor?: string }>(c, c.get("session").walletId, "GET", path);
  const needle = q.toLowerCase();
  const keys = (res.body.data ?? []).filter(
    (k) =>
      (!status || k.status === status) &&
      (!needle || k.name.toLowerCase().includes(needle) || k.key_preview.toLowerCase().includes(needle)),
  );
  return page(c, "Keys", <KeyList keys={keys} q={q} status={status} next={res.body.next_cursor} />);
});

const newKeyPage = async (c: Context<DashboardEnv>) =>
  page(c, "Create a key", <KeyForm csrf={c.get("session").csrf} action="/keys" models={await models(c)} />);

keyRoutes.post("/keys", async (c) => {
  const session = c.get("session");
  const res = await api<Created>(c, session.walletId, "POST", "/spend_keys", keyBody(c.get("form"), true));
  if (!res.ok) {
    const form = <KeyForm csrf={session.csrf} action="/keys" models={await models(c)} error={res.error} />;
    return page(c, "Create a key", form, 400);
  }
  const origin = new URL(c.req.url).origin;
  return page(c, "Key created", <KeyCreated k={res.body} secret={res.body.key} origin={origin} />);
});

async function loadKey(c: Context<DashboardEnv>): Promise<KeyWire | null> {
  const id = encodeURIComponent(c.req.param("id") ?? "");
  const res = await api<KeyWire>(c, c.get("session").walletId, "GET", `/spend_keys/${id}`);
  return res.ok ? res.body : null;
}

// `/keys/new` is served here rather than as its own route: a static segment beside `:id` at one level is the one
// shape Hono's RegExpRouter cannot compile, and it would send the whole app (the gateway's routes too) to the
// slower trie router, which allocates on every match.
keyRoutes.get("/keys/:id", async (c) => {
  if (c.req.param("id") === "new") return newKeyPage(c);
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const wallet = c.get("session").walletId;
  const start = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10);
  const [usage, recent] = await Promise.all([
    api<UsageWire>(c, wallet, "GET", `/usage?start=${start}&spend_key_id=${k.spend_key_id}`),
    api<{ data: LedgerWire[] }>(c, wallet, "GET", `/requests?spend_key_id=${k.spend_key_id}&limit=10`),
  ]);
  const days = (usage.body.items ?? []).map((d) => ({ date: d.date, cost: d.total_cost }));
  const detail = (
    <KeyDetail
      k={k}
      csrf={c.get("session").csrf}
      days={days}
      total={usage.body.totals?.total_cost ?? "0.00"}
      recent={recent.body.data ?? []}
    />
  );
  return page(c, k.name, detail);
});

keyRoutes.get("/keys/:id/edit", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const form = (
    <KeyForm csrf={c.get("session").csrf} action={`/keys/${k.spend_key_id}`} k={k} models={await models(c)} />
  );
  return page(c, `Edit ${k.name}`, form);
});

keyRoutes.post("/keys/:id", async (c) => {
  const k = await loadKey(c);
  if (!k) return page(c, "Not found", NOT_FOUND, 404);
  const session = c.get("session");
  const res = await api<unknown>(
    c,
    session.walletId,
    "PATCH",
    `/spend_keys/${k.spend_key_id}`,
    keyBody(c.get("form"), false),
  );
  if (!res.ok) {
    const action = `/keys/${k.spend_key_id}`;
    const form = <KeyForm csrf={session.csrf} action={action} k={k} models={await models(c)} error={res.error} />;
    return page(c, `Edit ${k.name}`, form, 400);
  }
  return c.redirect(`/keys/${k.spend_key_id}`, 303);
});

for (const [action, status] of [
  ["pause", "paused"],
  ["resume", "active"],
] as const) {
  keyRoutes.post(`/keys/:id/${action}`, async (c) => {
    const id = encodeURIComponent(c.req.param("id"));
    const res = await api<unknown>(c, c.get("session").walletId, "PATCH", `/spend_keys/${id}`, { status });
    if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
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
  const origin = new URL(c.req.url).origin;
  return page(c, "Key rotated", <KeyCreated k={res.body} secret={res.body.key} origin={origin} rotated />);
});

keyRoutes.post("/keys/:id/revoke", async (c) => {
  const id = encodeURIComponent(c.req.param("id"));
  const res = await api<unknown>(c, c.get("session").walletId, "DELETE", `/spend_keys/${id}`);
  if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
  return c.redirect("/keys", 303);
});
