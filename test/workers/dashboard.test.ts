import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { booked, call, chat, createSpendKey, createWallet, d1All, json, mgmt } from "./helpers.ts";

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

/** A signed-in browser, by hand: its cookies (the session, and a flash once a POST leaves one) follow each answer. */
async function browser(walletKey: string) {
  const { cookie: session, csrf } = await signIn(walletKey);
  const jar = new Map<string, string>([session.split("=") as [string, string]]);
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (res: Response) => {
    for (const set of res.headers.getSetCookie()) {
      const [pair = "", ...attrs] = set.split(";");
      const [k = "", v = ""] = pair.split("=");
      if (attrs.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a.trim())) || v === "") jar.delete(k.trim());
      else jar.set(k.trim(), v);
    }
    return res;
  };
  return {
    csrf,
    cookie,
    get: async (path: string) => keep(await page(path, cookie())),
    post: async (path: string, fields: Record<string, string | string[]>) =>
      keep(await post(path, { _csrf: csrf, ...fields }, { cookie: cookie() })),
  };
}

const attrs = (html: string, name: string) =>
  [...html.matchAll(new RegExp(`<input[^>]*name="${name}"[^>]*>`, "g"))].map((m) => m[0]);

describe("dashboard forms", () => {
  it("creates a key with limits through the form, then shows its secret once after a redirect", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const created = await b.post("/keys", {
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
      alert_thresholds: "95, 50",
      clamp_output: "on",
    });
    // Post-redirect-get: the answer is a redirect, and the secret is in no URL.
    expect(created.status).toBe(303);
    const location = created.headers.get("location")!;
    expect(location).toMatch(/^\/keys\/spk_\w+\/created$/);
    const shown = await b.get(location);
    expect(shown.status).toBe(200);
    const html = await shown.text();
    const key = /<code id="new-key">([^<]+)<\/code>/.exec(html)![1]!;
    expect(location).not.toContain(key);
    expect(html).toContain("shown only once");
    expect(html).toContain("OPENAI_BASE_URL=http://gateway.test/v1");
    expect(html).toContain("&quot;model&quot;:&quot;gpt-4o-mini&quot;");
    expect((await chat(key)).status).toBe(200);
    // A reload shows no secret and creates nothing.
    const again = await (await b.get(location)).text();
    expect(again).not.toContain(key);
    expect(again).toContain("was shown once and cannot be shown again");
    const list = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    expect(list.data).toHaveLength(1);
    expect(list.data[0]).toMatchObject({
      name: "agent",
      spend_limit: { amount: "5.00", cycle: "daily" },
      request_limit: { count: 100, cycle: "monthly" },
      rate_limit: { rpm: 30, burst: 30 },
      allowed_models: ["gpt-4o-mini"],
      allowed_providers: ["openai"],
      alert_thresholds: [0.5, 0.95],
    });
    // The flash is sealed: nothing of the secret is readable in the cookie that carried it.
    expect(created.headers.get("set-cookie")).not.toContain(key);
  });

  it("a rotation redirects too; its flash means nothing to another session, and is read once", async () => {
    const wallet = await createWallet();
    const k = await createSpendKey(wallet.key, { name: "rotating" });
    const b = await browser(wallet.key);
    const rotated = await b.post(`/keys/${k.spend_key_id}/rotate`, {});
    expect(rotated.status).toBe(303);
    const location = rotated.headers.get("location")!;
    const set = rotated.headers.getSetCookie().find((c) => c.startsWith("sg_flash="))!;
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
    const flash = set.split(";")[0]!;
    // Another signed-in session of the same wallet, handed the flash cookie: no secret.
    const other = await signIn(wallet.key);
    const stolen = await (await page(location, `${other.cookie}; ${flash}`)).text();
    expect(stolen).not.toMatch(/<code id="new-key">/);
    // The session it belongs to sees the new key once.
    const shown = await (await b.get(location)).text();
    const secret = /<code id="new-key">([^<]+)<\/code>/.exec(shown)![1]!;
    expect(shown).toContain("The key was rotated");
    expect((await chat(secret)).status).toBe(200);
    expect(await (await b.get(location)).text()).not.toContain(secret);
  });

  it("after an error keeps every value, says what is wrong in its words, flags and focuses it", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const res = await b.post("/keys", {
      name: "keeps everything",
      request_shape: "openai",
      allowed_providers: ["openai", "anthropic"],
      allowed_models: ["gpt-4o-mini", "claude-haiku-4-5"],
      extra_models: "gpt-4o-2024-08-06",
      spend_amount: "five",
      spend_cycle: "weekly",
      request_count: "250",
      request_cycle: "daily",
      rpm: "30",
      burst: "45",
      alert_thresholds: "40, 120",
      expires_at: "2099-01-02T03:04",
    });
    expect(res.status).toBe(400);
    const html = await res.text();
    for (const [name, value] of [
      ["name", "keeps everything"],
      ["spend_amount", "five"],
      ["request_count", "250"],
      ["rpm", "30"],
      ["burst", "45"],
      ["alert_thresholds", "40, 120"],
      ["expires_at", "2099-01-02T03:04"],
      ["extra_models", "gpt-4o-2024-08-06"],
    ]) {
      expect(attrs(html, name!)[0], name).toContain(`value="${value}"`);
    }
    for (const model of ["gpt-4o-mini", "claude-haiku-4-5"]) {
      expect(html).toMatch(new RegExp(`name="allowed_models" value="${model}"[^>]*checked`));
    }
    expect(html).toMatch(/name="allowed_providers" value="openai"[^>]*checked/);
    expect(html).toMatch(/name="allowed_providers" value="anthropic"[^>]*checked/);
    expect(html).toMatch(/<option value="weekly" selected/);
    expect(html).toMatch(/<option value="daily" selected/);
    expect(attrs(html, "clamp_output")[0]).not.toContain("checked");
    // Messages in the form's own words, next to their fields; no API field paths, no API units.
    expect(html).toContain("Spend limit must be a positive dollar amount");
    expect(html).toContain("Alert thresholds are percents between 1 and 100");
    expect(html).not.toMatch(/spend_limit\.amount|Invalid input|alert_thresholds:/);
    const spend = attrs(html, "spend_amount")[0]!;
    expect(spend).toContain('aria-invalid="true"');
    expect(spend).toContain('aria-describedby="spend_amount-error"');
    expect(spend).toContain("autofocus");
    expect(html).toMatch(/id="spend_amount-error"[^>]*>Spend limit must be/);
    expect(attrs(html, "alert_thresholds")[0]).toContain('aria-invalid="true"');
    expect(attrs(html, "alert_thresholds")[0]).not.toContain("autofocus");
    expect(html.match(/autofocus/g)).toHaveLength(1);
    // Nothing was created.
    expect((await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data).toHaveLength(0);
  });

  it("refuses settings that contradict each other, with the reason", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const cases: [Record<string, string | string[]>, string, RegExp][] = [
      [{ request_shape: "anthropic", allowed_providers: ["openai"] }, "allowed_providers", /served only by anthropic/],
      [{ rpm: "", burst: "10" }, "burst", /A burst needs a requests-per-minute limit/],
      [{ rpm: "10", burst: "0" }, "burst", /Burst must be a whole number/],
      [{ rpm: "1.5" }, "rpm", /Requests per minute must be a whole number/],
      [{ request_count: "-3" }, "request_count", /Request limit must be a whole number/],
      [{ allowed_providers: ["anthropic"], allowed_models: ["gpt-4o-mini"] }, "allowed_models", /is a openai model/],
      [{ request_shape: "anthropic", allowed_models: ["gpt-4o-mini"] }, "allowed_models", /only Anthropic models/],
      [{ extra_models: "no-such-model-anywhere" }, "allowed_models", /not a model the gateway knows/],
      [{ expires_at: "2001-01-01T00:00" }, "expires_at", /must be in the future/],
      [{ alert_thresholds: "0.5" }, "alert_thresholds", /percents between 1 and 100/],
      [{ name: "" }, "name", /Give the key a name/],
      [{ request_shape: "evil" }, "request_shape", /OpenAI or the Anthropic request shape/],
    ];
    for (const [fields, field, message] of cases) {
      const res = await b.post("/keys", { name: "contradiction", request_shape: "openai", ...fields });
      expect(res.status, JSON.stringify(fields)).toBe(400);
      const html = await res.text();
      expect(html, JSON.stringify(fields)).toMatch(new RegExp(`id="${field}-error">[^<]*${message.source}`));
      // The summary's link leads to the field, which has the focus.
      expect(html).toContain(`<a href="#f-${field}">`);
      expect(html).toMatch(new RegExp(`<[^>]*id="f-${field}"[^>]*>`));
    }
    expect((await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data).toHaveLength(0);
  });

  it("edits: an error keeps the values and changes nothing; a save, pause, resume and revoke confirm", async () => {
    const wallet = await createWallet();
    const key = await createSpendKey(wallet.key, { name: "edit me", spend_limit: { amount: "5", cycle: "daily" } });
    const b = await browser(wallet.key);
    const id = key.spend_key_id;
    const bad = await b.post(`/keys/${id}`, { name: "renamed", spend_amount: "-1", spend_cycle: "daily" });
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(attrs(html, "name")[0]).toContain('value="renamed"');
    expect(html).toContain("Spend limit must be a positive dollar amount");
    expect((await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200)).spend_limit.amount).toBe("5.00");
    const saved = await b.post(`/keys/${id}`, { name: "renamed", spend_amount: "7.5", spend_cycle: "weekly" });
    expect(saved.status).toBe(303);
    const detail = await (await b.get(`/keys/${id}`)).text();
    expect(detail).toContain("Saved the changes to renamed.");
    expect(detail).toContain("$7.50 per week");
    // The confirmation is shown once.
    expect(await (await b.get(`/keys/${id}`)).text()).not.toContain("Saved the changes");
    expect((await b.post(`/keys/${id}/pause`, {})).status).toBe(303);
    expect(await (await b.get(`/keys/${id}`)).text()).toContain("Paused renamed");
    expect((await b.post(`/keys/${id}/resume`, {})).status).toBe(303);
    expect(await (await b.get(`/keys/${id}`)).text()).toContain("Resumed renamed");
    // Revoke asks first (a page of its own, no script), then confirms.
    const ask = await (await b.get(`/keys/${id}/revoke`)).text();
    expect(ask).toContain("Revoke the key");
    expect((await b.post(`/keys/${id}/revoke`, {})).status).toBe(303);
    expect(await (await b.get("/keys")).text()).toContain("Revoked renamed");
  });
});

describe("dashboard key states", () => {
  it("revoked keys: findable by status, their page opens read-only, their names stay in the ledger", async () => {
    const wallet = await createWallet();
    const gone = await createSpendKey(wallet.key, { name: "retired agent" });
    await createSpendKey(wallet.key, { name: "live agent" });
    expect((await chat(gone.key)).status).toBe(200);
    await booked(gone.spend_key_id);
    await mgmt(wallet.key, "DELETE", `/spend_keys/${gone.spend_key_id}`);
    const b = await browser(wallet.key);
    const listed = await (await b.get("/keys")).text();
    expect(listed).not.toContain("retired agent");
    expect(listed).toContain("live agent");
    const revoked = await (await b.get("/keys?status=revoked")).text();
    expect(revoked).toContain("retired agent");
    expect(revoked).not.toContain("live agent");
    const all = await (await b.get("/keys?status=all")).text();
    expect(all).toContain("retired agent");
    expect(all).toContain("live agent");
    const detail = await b.get(`/keys/${gone.spend_key_id}`);
    expect(detail.status).toBe(200);
    const page = await detail.text();
    expect(page).toContain("This key is revoked");
    expect(page).not.toContain("Edit settings");
    expect(page).not.toContain(`/keys/${gone.spend_key_id}/revoke`);
    const requests = await (await b.get("/requests")).text();
    expect(requests).toMatch(/>\s*retired agent\s*<\/a>/);
    expect(requests).not.toMatch(new RegExp(`>\\s*${gone.spend_key_id}\\s*<`));
  });

  it("a key that cannot afford its next request says so, with GET /v1/key's figure", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    // Less than 1,024 output tokens of gpt-4o-mini cost: refused whatever the request, bar a tiny max_tokens.
    const tight = await createSpendKey(wallet.key, {
      name: "tight",
      allowed_models: ["gpt-4o-mini"],
      spend_limit: { amount: "0.0001", cycle: "daily" },
    });
    const live = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${tight.key}` } }), 200);
    const detail = await (await b.get(`/keys/${tight.spend_key_id}`)).text();
    expect(detail).toContain("Cannot afford another request");
    expect(detail).toContain(`$${live.next_request.max_cost}`);
    expect(await (await b.get("/keys")).text()).toContain("Cannot afford another request");
    // Spent, then the limit lowered below the spend: exhausted.
    const spent = await createSpendKey(wallet.key, { name: "spent", spend_limit: { amount: "2", cycle: "total" } });
    expect((await chat(spent.key)).status).toBe(200);
    await booked(spent.spend_key_id);
    await mgmt(wallet.key, "PATCH", `/spend_keys/${spent.spend_key_id}`, {
      spend_limit: { amount: "0.000000001", cycle: "total" },
    });
    const exhausted = await (await b.get(`/keys/${spent.spend_key_id}`)).text();
    expect(exhausted).toContain("Budget exhausted");
    expect(exhausted).toContain("Cannot afford another request");
    expect(exhausted).toContain("&gt;100 %");
    expect(await (await b.get("/keys")).text()).toContain("Budget exhausted");
    // A request limit used up refuses every request just the same.
    const counted = await createSpendKey(wallet.key, { name: "counted", request_limit: { count: 1, cycle: "total" } });
    expect((await chat(counted.key)).status).toBe(200);
    await booked(counted.spend_key_id);
    const limited = await (await b.get(`/keys/${counted.spend_key_id}`)).text();
    expect(limited).toContain("Request limit reached");
    expect(limited).toContain("Cannot make another request: 1 of 1 used");
  });

  it("a tiny spend reads <1 % with a visible bar; the key page shows every setting", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const key = await createSpendKey(wallet.key, {
      name: "settings",
      spend_limit: { amount: "100", cycle: "monthly" },
      request_limit: { count: 500, cycle: "weekly" },
      rate_limit: { rpm: 60, burst: 90 },
      alert_thresholds: [0.25, 0.75],
      clamp_output: false,
      allowed_providers: ["openai"],
      allowed_models: ["gpt-4o-mini"],
      expires_at: "2099-06-01T00:00:00Z",
    });
    expect((await chat(key.key)).status).toBe(200);
    await booked(key.spend_key_id);
    const html = await (await b.get(`/keys/${key.spend_key_id}`)).text();
    expect(html).toContain("&lt;1 %");
    expect(html).toMatch(/class="fill w2 ok"/);
    for (const text of [
      "60 requests per minute, bursts of up to 90",
      "500 requests per week",
      "25 %, 75 % of the spend limit",
      "off: a request the budget cannot cover in full is refused",
      "2099-06-01 00:00 UTC",
      "gpt-4o-mini",
      "$100.00 per month",
    ]) {
      expect(html, text).toContain(text);
    }
  });
});

describe("dashboard model picker and models page", () => {
  it("offers ids a client can send, grouped by provider, never a catalog pattern; prices per picture", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const html = await (await b.get("/keys/new")).text();
    const values = [...html.matchAll(/name="allowed_models" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(values.length).toBeGreaterThan(50);
    expect(values.filter((v) => v.includes(":") || /[-._/@]$/.test(v))).toEqual([]);
    expect(html).toMatch(/<details[^>]*data-group[^>]*>\s*<summary>\s*openai/);
    expect(html).toContain("data-model-filter");
    expect(html).toMatch(/dall-e-3[\s\S]{0,300}per picture/);
    const models = await (await b.get("/models?q=ft")).text();
    expect([...models.matchAll(/<code>([^<]+)<\/code>/g)].filter((m) => m[1]!.includes(":"))).toEqual([]);
  });

  it("shows a count of keys per model, and a key's own models on choosing it", async () => {
    const wallet = await createWallet();
    const narrow = await createSpendKey(wallet.key, { name: "narrow-key-name", allowed_models: ["gpt-4o-mini"] });
    await createSpendKey(wallet.key, { name: "wide-key-name" });
    const b = await browser(wallet.key);
    const html = await (await b.get("/models?q=gpt-4o-mini")).text();
    expect(html).toContain("all 2");
    const other = await (await b.get("/models?q=claude-haiku-4-5")).text();
    expect(other).toContain("1 of 2");
    // No key's name repeated per row: only in the key filter's options.
    expect(other.match(/wide-key-name/g)).toHaveLength(1);
    const mine = await (await b.get(`/models?key=${narrow.spend_key_id}`)).text();
    expect([...mine.matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1])).toEqual(["gpt-4o-mini"]);
  });

  it("names in the created key's snippet a model the key may call", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const res = await b.post("/keys", {
      name: "anthropic only",
      request_shape: "openai",
      allowed_providers: ["anthropic"],
      clamp_output: "on",
    });
    const html = await (await b.get(res.headers.get("location")!)).text();
    expect(html).toContain("&quot;model&quot;:&quot;claude-haiku-4-5&quot;");
  });
});

describe("dashboard webhooks", () => {
  it("creates (secret once, after a redirect), keeps values on error, disables, redelivers and deletes", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const bad = await b.post("/webhooks", { name: "hooks", url: "not a url", events: ["spend_key.created"] });
    expect(bad.status).toBe(400);
    const badHtml = await bad.text();
    expect(attrs(badHtml, "name")[0]).toContain('value="hooks"');
    expect(attrs(badHtml, "url")[0]).toContain('value="not a url"');
    expect(attrs(badHtml, "url")[0]).toContain('aria-invalid="true"');
    expect(badHtml).toMatch(/name="events" value="spend_key.created" checked/);
    const made = await b.post("/webhooks", { name: "hooks", url: "https://hooks.example.com/in" });
    expect(made.status).toBe(303);
    const where = made.headers.get("location")!;
    const shown = await (await b.get(where)).text();
    const secret = /<code id="webhook-secret">([^<]+)<\/code>/.exec(shown)![1]!;
    expect(secret).toMatch(/^whsec_/);
    expect(shown).toContain("stores it encrypted");
    expect(shown).not.toContain("keeps only its hash");
    expect(await (await b.get(where)).text()).not.toContain(secret);
    const hooks = await json(await mgmt(wallet.key, "GET", "/webhooks"), 200);
    expect(hooks.data).toHaveLength(1);
    const id = hooks.data[0].webhook_id;
    // A delivery to redeliver: one that failed for good.
    const delivery = `msg_dash_${id}`;
    const now = Date.now();
    const payload = JSON.stringify({ id: `evt_${id}`, type: "spend_key.created", created_at: "", data: {} });
    await env.DB.prepare(
      `INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, event_id, event_type, payload, status, attempts,
        next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'spend_key.created', ?, 'dead', 8, ?, ?, ?)`,
    )
      .bind(delivery, id, wallet.walletId, `evt_${id}`, payload, now, now, now)
      .run();
    expect(await (await b.get(`/webhooks/${id}`)).text()).toContain(`/deliveries/${delivery}/redeliver`);
    expect((await b.post(`/webhooks/${id}/deliveries/${delivery}/redeliver`, {})).status).toBe(303);
    expect(await (await b.get(`/webhooks/${id}`)).text()).toContain("Queued the spend_key.created delivery again");
    expect((await b.post(`/webhooks/${id}/disable`, {})).status).toBe(303);
    expect((await json(await mgmt(wallet.key, "GET", `/webhooks/${id}`), 200)).enabled).toBe(false);
    expect(await (await b.get(`/webhooks/${id}`)).text()).toContain("Enable");
    expect((await b.post(`/webhooks/${id}/enable`, {})).status).toBe(303);
    expect((await json(await mgmt(wallet.key, "GET", `/webhooks/${id}`), 200)).enabled).toBe(true);
    expect(await (await b.get(`/webhooks/${id}/delete`)).text()).toContain("Delete the webhook");
    expect((await b.post(`/webhooks/${id}/delete`, {})).status).toBe(303);
    expect(await (await b.get("/webhooks")).text()).toContain("Deleted hooks");
    expect((await mgmt(wallet.key, "GET", `/webhooks/${id}`)).status).toBe(404);
  });
});

describe("dashboard long names", () => {
  it("a 200-character name is whole in a title wherever it is cut", async () => {
    const wallet = await createWallet();
    const name = `${"a-very-long-name-".repeat(12)}end`.padEnd(200, "x").slice(0, 200);
    const key = await createSpendKey(wallet.key, { name });
    const b = await browser(wallet.key);
    expect(await (await b.get("/keys")).text()).toContain(`title="${name}"`);
    expect(await (await b.get(`/keys/${key.spend_key_id}`)).text()).toContain(name);
  });
});
