import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { getCatalog } from "../catalog/catalog.ts";
import { allowsModel } from "../catalog/scope.ts";
import { serializeModel } from "../catalog/wire.ts";
import { controlD1 } from "../db/client.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";
import { walletOf } from "../wallets/auth.ts";
import { SignIn } from "./activity-pages.tsx";
import { activityRoutes } from "./activity-routes.tsx";
import { CSS, JS } from "./assets.ts";
import { type ModelRow, Models, perPicture } from "./catalog-pages.tsx";
import type { DashboardEnv } from "./env.ts";
import { takeFlash } from "./flash.ts";
import { type ListedKey, listKeys, sendable } from "./key-data.ts";
import { keyRoutes } from "./key-routes.tsx";
import { page } from "./page.tsx";
import { currentSession, endSession, noteSigninFailure, signinLockout, startSession, trustedPost } from "./session.ts";
import { webhookPages } from "./webhook-routes.tsx";

/**
 * The dashboard, served by the same Worker at `/`: server-rendered pages (Hono JSX) over the management API,
 * a stylesheet and a small script from `/assets/`. Every response forbids framing and inline script; every
 * state-changing request must be a same-origin POST carrying the session's CSRF token.
 */
export const dashboard = new Hono<DashboardEnv>();

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The dashboard's own paths (the API routes beside them get none of its headers or its sign-in). */
const PUBLIC = ["/", "/signin", "/signout", "/assets/*"];
const SIGNED_IN = ["/keys", "/keys/*", "/requests", "/usage", "/models", "/webhooks", "/webhooks/*"];

const securityHeaders = createMiddleware<DashboardEnv>(async (c, next) => {
  await next();
  c.res.headers.set("content-security-policy", CSP);
  c.res.headers.set("x-content-type-options", "nosniff");
  c.res.headers.set("referrer-policy", "same-origin");
  c.res.headers.set("x-frame-options", "DENY");
  if (!c.req.path.startsWith("/assets/")) c.res.headers.set("cache-control", "no-store");
});
for (const path of [...PUBLIC, ...SIGNED_IN]) dashboard.use(path, securityHeaders);

dashboard.get("/assets/app.css", (c) => c.body(CSS, 200, { "content-type": "text/css; charset=utf-8" }));
dashboard.get("/assets/app.js", (c) => c.body(JS, 200, { "content-type": "text/javascript; charset=utf-8" }));

/** Signed-in pages: no session (or an expired one) goes to sign-in; a POST must be ours (CSRF). */
const signedIn = createMiddleware<DashboardEnv>(async (c, next) => {
  const session = await currentSession(c);
  if (!session) return c.redirect("/signin", 303);
  c.set("session", session);
  if (c.req.method === "POST") {
    const form = await c.req.parseBody({ all: true });
    if (!trustedPost(c, session, form._csrf)) {
      return page(c, "Refused", <p class="alert">This form did not come from this dashboard.</p>, 403);
    }
    c.set("form", form);
  } else {
    c.set("flash", await takeFlash(c));
  }
  await next();
});

dashboard.get("/", async (c) => c.redirect((await currentSession(c)) ? "/keys" : "/signin", 303));

dashboard.get("/signin", async (c) => {
  const wait = await signinLockout(c);
  return page(c, "Sign in", <SignIn locked={wait > 0} error={wait ? lockedMessage(wait) : undefined} />);
});

const lockedMessage = (ms: number) =>
  `Too many failed sign-ins from here. Try again in ${Math.ceil(ms / 60_000)} minutes.`;

dashboard.post("/signin", async (c) => {
  const site = c.req.header("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none") {
    return page(c, "Sign in", <SignIn error="Sign in from this dashboard's own page." />, 403);
  }
  const wait = await signinLockout(c);
  if (wait) return page(c, "Sign in", <SignIn locked error={lockedMessage(wait)} />, 429);
  const form = await c.req.parseBody();
  const secret = typeof form.secret_key === "string" ? form.secret_key.trim() : "";
  const walletId = secret ? await walletOf(controlD1(c.env), secret) : null;
  if (!walletId) {
    await noteSigninFailure(c);
    return page(c, "Sign in", <SignIn error="That is not a valid wallet secret key." />, 400);
  }
  await startSession(c, walletId);
  return c.redirect("/keys", 303);
});

dashboard.post("/signout", signedIn, async (c) => {
  await endSession(c);
  return c.redirect("/signin", 303);
});

for (const path of SIGNED_IN) dashboard.use(path, signedIn);
dashboard.route("/", keyRoutes);
dashboard.route("/", activityRoutes);
dashboard.route("/", webhookPages);

const PAGE = 50;
const LABELS: Record<string, string> = { mtok: "/1M", kcount: "/1k", hours: "/hour", mchars: "/1M chars", each: "" };

/**
 * The catalog with prices. Which keys may call a model is a count per row (a wallet may have hundreds of keys);
 * choosing a key shows only the models it may call.
 */
dashboard.get("/models", async (c) => {
  const q = (c.req.query("q") ?? "").trim().toLowerCase();
  const provider = c.req.query("provider") ?? "";
  const keyId = c.req.query("key") ?? "";
  const offset = Math.max(0, Number(c.req.query("cursor") ?? 0) || 0);
  const catalog = await getCatalog(controlD1(c.env));
  const keys: ListedKey[] = [];
  for (let cursor: string | undefined, n = 0; n < 10; n++) {
    const res = await listKeys(c, "", cursor);
    keys.push(...res.data);
    cursor = res.next_cursor;
    if (!cursor) break;
  }
  const may = (k: ListedKey, id: string, p: string) =>
    (!k.allowed_providers || k.allowed_providers.includes(p)) && allowsModel(k.allowed_models, id);
  const chosen = keys.find((k) => k.spend_key_id === keyId);
  const all = catalog
    .models()
    .filter(
      ({ id, entry }) =>
        sendable(id) &&
        (!provider || entry.provider === provider) &&
        (!q || id.toLowerCase().includes(q)) &&
        (!chosen || may(chosen, id, entry.provider)),
    );
  const rows: ModelRow[] = all.slice(offset, offset + PAGE).map(({ id, entry: m }) => {
    const wire = serializeModel(m);
    const prices = wire.prices ?? {};
    const other = Object.entries(prices)
      .filter(([k]) => !["input_mtok", "output_mtok", "cache_read_mtok"].includes(k))
      .map(([k, v]) => {
        const unit = k.split("_").at(-1) ?? "";
        const price = typeof v === "string" ? `$${v}` : `$${v.base} (tiers by input size)`;
        return `${k.replace(/_[a-z]+$/, "").replace(/_/g, " ")} ${price}${LABELS[unit] ?? ""}`;
      });
    return {
      id,
      provider: m.provider,
      input: wire.input_price,
      output: wire.output_price,
      cacheRead: wire.cache_read_price,
      other: [...perPicture(m.perImage), ...other],
      contextWindow: m.contextWindow,
      keys: keys.filter((k) => may(k, id, m.provider)).length,
    };
  });
  const next = offset + PAGE < all.length ? String(offset + PAGE) : undefined;
  const options = keys.map((k) => ({ id: k.spend_key_id, name: k.name }));
  const body = (
    <Models
      rows={rows}
      q={q}
      provider={provider}
      providers={PROVIDER_IDS}
      keys={options}
      keyId={chosen ? keyId : ""}
      totalKeys={keys.length}
      next={next}
    />
  );
  return page(c, "Models", body);
});
