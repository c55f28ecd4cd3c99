import { type Context, Hono } from "hono";
import { api } from "./api.ts";
import {
  ConfirmDeleteWebhook,
  type DeliveryWire,
  WebhookDeliveries,
  Webhooks,
  type WebhookValues,
  type WebhookWire,
} from "./catalog-pages.tsx";
import type { DashboardEnv } from "./env.ts";
import { setFlash } from "./flash.ts";
import type { Errors } from "./layout.tsx";
import { page } from "./page.tsx";

/**
 * Webhooks: list, create (the signing secret shown once, after a redirect), enable/disable, delete (confirmed)
 * and each one's deliveries, any of which can be delivered again.
 */
export const webhookPages = new Hono<DashboardEnv>();

const list = async (c: Context<DashboardEnv>) =>
  (await api<{ data: WebhookWire[] }>(c, c.get("session").walletId, "GET", "/webhooks?limit=100")).body.data ?? [];

const NOT_FOUND = <p class="alert">No such webhook in this wallet.</p>;

webhookPages.get("/webhooks", async (c) =>
  page(c, "Webhooks", <Webhooks hooks={await list(c)} csrf={c.get("session").csrf} />),
);

/** The form's own checks, in its words (the API checks again: an address it refuses comes back by its field). */
function checkWebhook(v: WebhookValues): Errors {
  const e: Errors = {};
  if (!v.name || v.name.length > 200) e.name = "Give the webhook a name of 1 to 200 characters.";
  let url: URL | null = null;
  try {
    url = new URL(v.url);
  } catch {
    // stays null
  }
  if (!url || !["https:", "http:"].includes(url.protocol)) {
    e.url = "The URL must be a full address, e.g. https://example.com/hooks/spendgate.";
  }
  return e;
}

webhookPages.post("/webhooks", async (c) => {
  const session = c.get("session");
  const form = c.get("form");
  const events = (Array.isArray(form.events) ? form.events : form.events ? [form.events] : []).filter(
    (e): e is string => typeof e === "string",
  );
  const values = { name: String(form.name ?? "").trim(), url: String(form.url ?? "").trim(), events };
  const refuse = async (errors: Errors) =>
    page(c, "Webhooks", <Webhooks hooks={await list(c)} csrf={session.csrf} values={values} errors={errors} />, 400);
  const errors = checkWebhook(values);
  if (Object.keys(errors).length) return refuse(errors);
  const body = { ...values, events: events.length ? events : null };
  const res = await api<WebhookWire & { webhook_secret: string }>(c, session.walletId, "POST", "/webhooks", body);
  if (!res.ok) {
    const field = res.error?.param?.split(".")[0] ?? "";
    const message = res.error?.message.replace(/^[a-z_.\d]+: /, "") ?? "";
    if (field === "url") return refuse({ url: `The URL ${message}.`.replace(/\.\.$/, ".") });
    if (field === "events") return refuse({ events: "Choose events from the list." });
    if (field === "name") return refuse({ name: "Give the webhook a name of 1 to 200 characters." });
    return refuse({ form: res.error?.message ?? "The webhook could not be created." });
  }
  // Post-redirect-get: the secret crosses the redirect in the sealed, single-use flash.
  await setFlash(c, {
    notice: `Added ${res.body.name}.`,
    secret: { kind: "webhook", id: res.body.webhook_id, value: res.body.webhook_secret },
  });
  return c.redirect(`/webhooks/${res.body.webhook_id}`, 303);
});

async function loadHook(c: Context<DashboardEnv>) {
  const id = encodeURIComponent(c.req.param("id") ?? "");
  const hook = await api<WebhookWire>(c, c.get("session").walletId, "GET", `/webhooks/${id}`);
  return hook.ok ? hook.body : null;
}

webhookPages.get("/webhooks/:id", async (c) => {
  const hook = await loadHook(c);
  if (!hook) return page(c, "Not found", NOT_FOUND, 404);
  const cursor = c.req.query("cursor");
  const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
  const path = `/webhooks/${hook.webhook_id}/deliveries?limit=50${after}`;
  const rows = await api<{ data: DeliveryWire[]; next_cursor?: string }>(c, c.get("session").walletId, "GET", path);
  const flash = c.get("flash")?.secret;
  const secret = flash?.kind === "webhook" && flash.id === hook.webhook_id ? flash.value : undefined;
  const body = (
    <WebhookDeliveries
      hook={hook}
      rows={rows.body.data ?? []}
      csrf={c.get("session").csrf}
      secret={secret}
      next={rows.body.next_cursor}
    />
  );
  return page(c, hook.name, body);
});

for (const [action, enabled] of [
  ["enable", true],
  ["disable", false],
] as const) {
  webhookPages.post(`/webhooks/:id/${action}`, async (c) => {
    const hook = await loadHook(c);
    if (!hook) return page(c, "Not found", NOT_FOUND, 404);
    const res = await api<WebhookWire>(c, c.get("session").walletId, "PATCH", `/webhooks/${hook.webhook_id}`, {
      enabled,
    });
    if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
    await setFlash(c, {
      notice: enabled
        ? `Enabled ${hook.name}: deliveries resume.`
        : `Disabled ${hook.name}: nothing is delivered to it.`,
    });
    return c.redirect(`/webhooks/${hook.webhook_id}`, 303);
  });
}

webhookPages.get("/webhooks/:id/delete", async (c) => {
  const hook = await loadHook(c);
  if (!hook) return page(c, "Not found", NOT_FOUND, 404);
  return page(c, `Delete ${hook.name}?`, <ConfirmDeleteWebhook hook={hook} csrf={c.get("session").csrf} />);
});

webhookPages.post("/webhooks/:id/delete", async (c) => {
  const hook = await loadHook(c);
  if (!hook) return page(c, "Not found", NOT_FOUND, 404);
  const res = await api<unknown>(c, c.get("session").walletId, "DELETE", `/webhooks/${hook.webhook_id}`);
  if (!res.ok) return page(c, "Not found", NOT_FOUND, 404);
  await setFlash(c, { notice: `Deleted ${hook.name}: nothing more is delivered to it.` });
  return c.redirect("/webhooks", 303);
});

webhookPages.post("/webhooks/:id/deliveries/:delivery/redeliver", async (c) => {
  const hook = await loadHook(c);
  if (!hook) return page(c, "Not found", NOT_FOUND, 404);
  const delivery = encodeURIComponent(c.req.param("delivery"));
  const path = `/webhooks/${hook.webhook_id}/deliveries/${delivery}/redeliver`;
  const res = await api<DeliveryWire>(c, c.get("session").walletId, "POST", path);
  if (!res.ok) return page(c, "Not found", <p class="alert">No such delivery of this webhook.</p>, 404);
  await setFlash(c, { notice: `Queued the ${res.body.event_type} delivery again: its attempts start over.` });
  return c.redirect(`/webhooks/${hook.webhook_id}`, 303);
});
