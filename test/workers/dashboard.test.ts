import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, chat, createSpendKey, createWallet, d1All, json, mgmt } from "./helpers.ts";

/**
 * The dashboard over HTTP: sessions, CSRF, CSP, escaping, tenancy — what a browser would send, sent by hand
 * (test/conformance/dashboard.test.ts walks the same pages in a real browser).
 */
const SAME = { "sec-fetch-site": "same-origin" };

function form(fields: Record<string, string | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
  return q.toString();
}

function post(path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  return call("POST", path, {
    headers: { "content-type": "application/x-www-form-urlencoded", ...SAME, ...headers },
    body: form(fields),
  });
}

/** Signs in with a wallet key: the session cookie and the CSRF token of its pages. */
async function signIn(walletKey: string) {
  const res = await post("/signin", { secret_key: walletKey });
  expect(res.status).toBe(303);
  const set = res.headers.get("set-cookie") ?? "";
  const cookie = set.split(";")[0]!;
  const keys = await call("GET", "/keys", { headers: { cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await keys.text())![1]!;
  return { cookie, csrf, set };
}

const page = (path: string, cookie: string) => call("GET", path, { headers: { cookie } });

describe("dashboard sessions", () => {
  it("signs in with a wallet key into an HttpOnly, SameSite=Strict, Secure cookie; signs out for good", async () => {
    const wallet = await createWallet();
    const { cookie, csrf, set } = await signIn(wallet.key);
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
    expect(set).toMatch(/Secure/i); // not localhost
    expect(set).not.toContain(wallet.key);
    // Only a hash of the session id is stored, never the wallet key.
    const rows = await d1All("SELECT * FROM dashboard_sessions");
    expect(JSON.stringify(rows)).not.toContain(cookie.split("=")[1]);
    expect(JSON.stringify(rows)).not.toContain(wallet.key);
    expect((await page("/keys", cookie)).status).toBe(200);
    const out = await post("/signout", { _csrf: csrf }, { cookie });
    expect(out.status).toBe(303);
    const after = await page("/keys", cookie);
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/signin");
  });

  it("refuses a wrong key, and locks a client out after 10 failures", async () => {
    const headers = { "cf-connecting-ip": "203.0.113.9" };
    for (let i = 0; i < 10; i++) expect((await post("/signin", { secret_key: "sgw_nope" }, headers)).status).toBe(400);
    const wallet = await createWallet();
    const locked = await post("/signin", { secret_key: wallet.key }, headers);
    expect(locked.status).toBe(429);
    expect(await locked.text()).toContain("Too many failed sign-ins");
    // Another client is not affected.
    expect((await post("/signin", { secret_key: wallet.key }, { "cf-connecting-ip": "203.0.113.10" })).status).toBe(
      303,
    );
  });

  it("an expired session goes back to sign-in", async () => {
    const wallet = await createWallet();
    const { cookie } = await signIn(wallet.key);
    await env.DB.prepare("UPDATE dashboard_sessions SET expires_at = ?")
      .bind(Date.now() - 1)
      .run();
    const res = await page("/keys", cookie);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/signin");
  });
});

describe("dashboard security", () => {
  it("sends a strict Content-Security-Policy on every page, and never inline script", async () => {
    const wallet = await createWallet();
    const { cookie } = await signIn(wallet.key);
    const key = await createSpendKey(wallet.key, { name: "csp" });
    for (const path of [
      "/signin",
      "/keys",
      "/keys/new",
      `/keys/${key.spend_key_id}`,
      "/requests",
      "/usage",
      "/models",
      "/webhooks",
      "/assets/app.css",
      "/assets/app.js",
    ]) {
      const res = await page(path, cookie);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain("unsafe-inline");
      const html = await res.text();
      expect(html, path).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html, path).not.toMatch(/\son[a-z]+=/);
    }
  });

  it("renders a key named like markup as text", async () => {
    const wallet = await createWallet();
    const { cookie } = await signIn(wallet.key);
    const name = `<img src=x onerror="alert(1)">`;
    const key = await createSpendKey(wallet.key, { name });
    for (const path of ["/keys", `/keys/${key.spend_key_id}`]) {
      const html = await (await page(path, cookie)).text();
      expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
      expect(html).not.toContain(name);
    }
  });

  it("refuses a cross-site form POST and one without the CSRF token, changing nothing", async () => {
    const wallet = await createWallet();
    const { cookie, csrf } = await signIn(wallet.key);
    const key = await createSpendKey(wallet.key, { name: "target" });
    const pause = `/keys/${key.spend_key_id}/pause`;
    const cross = await post(pause, { _csrf: csrf }, { cookie, "sec-fetch-site": "cross-site" });
    expect(cross.status).toBe(403);
    const noToken = await post(pause, {}, { cookie });
    expect(noToken.status).toBe(403);
    const wrongOrigin = await call("POST", pause, {
      headers: { cookie, "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" },
      body: form({ _csrf: csrf }),
    });
    expect(wrongOrigin.status).toBe(403);
    const k = await json(await mgmt(wallet.key, "GET", `/spend_keys/${key.spend_key_id}`), 200);
    expect(k.status).toBe("active");
    expect((await post(pause, { _csrf: csrf }, { cookie })).status).toBe(303);
    expect((await json(await mgmt(wallet.key, "GET", `/spend_keys/${key.spend_key_id}`), 200)).status).toBe("paused");
  });

  it("a session of another wallet sees nothing of this one", async () => {
    const a = await createWallet();
    const b = await createWallet();
    const secret = await createSpendKey(a.key, { name: "wallet-a-secret-project" });
    const { cookie, csrf } = await signIn(b.key);
    expect(await (await page("/keys", cookie)).text()).not.toContain("wallet-a-secret-project");
    expect((await page(`/keys/${secret.spend_key_id}`, cookie)).status).toBe(404);
    expect((await post(`/keys/${secret.spend_key_id}/revoke`, { _csrf: csrf }, { cookie })).status).toBe(404);
    const still = await chat(secret.key);
    expect(still.status).toBe(200);
    // A made-up session id is no session at all.
    expect((await page("/keys", "sg_session=made-up-session-id")).status).toBe(303);
  });

  it("the internal credential the dashboard uses cannot be forged from outside", async () => {
    const wallet = await createWallet();
    await createSpendKey(wallet.key, { name: "forge" });
    const res = await call("GET", "/v1/spend_keys", {
      headers: { "x-spendgate-internal": "guess", "x-spendgate-internal-wallet": "wal_anything" },
    });
    expect(res.status).toBe(401);
  });
});

describe("dashboard forms", () => {
  it("creates a key with limits through the form, shows it once, and edit errors name their field", async () => {
    const wallet = await createWallet();
    const { cookie, csrf } = await signIn(wallet.key);
    const created = await post(
      "/keys",
      {
        _csrf: csrf,
        name: "agent",
        request_shape: "openai",
        allowed_providers: ["openai"],
        allowed_models: ["gpt-4o-mini"],
        spend_amount: "5",
        spend_cycle: "daily",
        request_count: "100",
        request_cycle: "monthly",
        rpm: "30",
        burst: "",
        expires_at: "",
        clamp_output: "on",
      },
      { cookie },
    );
    expect(created.status).toBe(200);
    const html = await created.text();
    const key = /<code id="new-key">([^<]+)<\/code>/.exec(html)![1]!;
    expect(html).toContain("shown only once");
    expect(html).toContain("OPENAI_BASE_URL=http://gateway.test/v1");
    expect((await chat(key)).status).toBe(200);
    const list = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    expect(list.data[0]).toMatchObject({
      name: "agent",
      spend_limit: { amount: "5.00", cycle: "daily" },
      request_limit: { count: 100, cycle: "monthly" },
      rate_limit: { rpm: 30, burst: 30 },
      allowed_models: ["gpt-4o-mini"],
      allowed_providers: ["openai"],
    });
    // A bad amount comes back next to its field, and nothing changes.
    const id = list.data[0].spend_key_id;
    const bad = await post(
      `/keys/${id}`,
      { _csrf: csrf, name: "agent", spend_amount: "five", spend_cycle: "daily" },
      {
        cookie,
      },
    );
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/class="field-error" id="spend_limit-error"[^>]*>spend_limit\.amount/);
    expect((await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200)).spend_limit.amount).toBe("5.00");
    // Every field the API can name shows its error somewhere: a hand-made request shape, next to its select.
    const shape = await post("/keys", { _csrf: csrf, name: "agent", request_shape: "evil" }, { cookie });
    expect(shape.status).toBe(400);
    expect(await shape.text()).toMatch(/class="field-error" id="request_shape-error"[^>]*>request_shape/);
  });
});
