import { type Context, Hono } from "hono";
import { api } from "./api.ts";
import { type DeliveryWire, WebhookDeliveries, Webhooks, type WebhookWire } from "./catalog-pages.tsx";
import type { DashboardEnv } from "./env.ts";
import { page } from "./page.tsx";

/** Webhooks: list, create (the signing secret shown once), and each one's deliveries. */
export const webhookPages = new Hono<DashboardEnv>();

const list = async (c: Context<DashboardEnv>) =>
  (await api<{ data: WebhookWire[] }>(c, c.get("session").walletId, "GET", "/webhooks?limit=100")).body.data ?? [];

webhookPages.get("/webhooks", async (c) =>
  page(c, "Webhooks", <Webhooks hooks={await list(c)} csrf={c.get("session").csrf} />),
);

webhookPages.post("/webhooks", async (c) => {
  const session = c.get("session");
  const form = c.get("form");
  const events = (Array.isArray(form.events) ? form.events : form.events ? [form.events] : []).filter(
    (e: unknown) => typeof e === "string",
  );
  const body = {
    name: String(form.name ?? "").trim(),
    url: String(form.url ?? "").trim(),
    events: events.length ? events : null,
  };
  const res = await api<WebhookWire & { webhook_secret: string }>(c, session.walletId, "POST", "/webhooks", body);
  if (!res.ok)
    return page(c, "Webhooks", <Webhooks hooks={await list(c)} csrf={session.csrf} error={res.error} />, 400);
  const created = { hook: res.body, secret: res.body.webhook_secret };
  return page(c, "Webhooks", <Webhooks hooks={await list(c)} csrf={session.csrf} created={created} />);
});

webhookPages.get("/webhooks/:id", async (c) => {
  const wallet = c.get("session").walletId;
  const id = encodeURIComponent(c.req.param("id"));
  const hook = await api<WebhookWire>(c, wallet, "GET", `/webhooks/${id}`);
  if (!hook.ok) return page(c, "Not found", <p class="alert">No such webhook in this wallet.</p>, 404);
  const cursor = c.req.query("cursor");
  const path = `/webhooks/${id}/deliveries?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
  const rows = await api<{ data: DeliveryWire[]; next_cursor?: string }>(c, wallet, "GET", path);
  const body = <WebhookDeliveries hook={hook.body} rows={rows.body.data ?? []} next={rows.body.next_cursor} />;
  return page(c, hook.body.name, body);
});
