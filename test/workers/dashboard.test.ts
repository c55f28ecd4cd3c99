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

describe("dashboard: token limits, runs, child keys and rotation grace", () => {
  const NEW_FIELDS = {
    token_count: "50000",
    token_cycle: "weekly",
    tpm: "2000",
    run_spend: "0.25",
    run_requests: "10",
    delegation_depth: "2",
    delegation_children: "5",
  };

  it("the form round-trips token, run and delegation settings; the key page shows each; edits clear them", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const created = await b.post("/keys", {
      name: "orchestrator",
      request_shape: "openai",
      spend_amount: "5",
      spend_cycle: "daily",
      alert_thresholds: "50, 80, 95",
      clamp_output: "on",
      ...NEW_FIELDS,
    });
    expect(created.status).toBe(303);
    const list = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    const k = list.data[0];
    expect(k).toMatchObject({
      token_limit: { count: 50000, cycle: "weekly" },
      tokens_per_minute: 2000,
      run_limit: { spend: "0.25", requests: 10 },
      delegation: { max_depth: 2, max_children: 5 },
    });
    // The edit form shows them as saved.
    const edit = await (await b.get(`/keys/${k.spend_key_id}/edit`)).text();
    for (const [name, value] of Object.entries(NEW_FIELDS)) {
      if (name === "token_cycle" || name === "delegation_depth") continue;
      expect(attrs(edit, name)[0], name).toContain(`value="${value}"`);
    }
    expect(edit).toMatch(/name="token_cycle"[\s\S]*?<option value="weekly" selected/);
    expect(edit).toMatch(/name="delegation_depth"[\s\S]*?<option value="2" selected/);
    // The key page says each in words.
    const detail = await (await b.get(`/keys/${k.spend_key_id}`)).text();
    for (const text of [
      "50,000 tokens per week",
      "2,000 per UTC minute",
      "each run at most $0.25 and 10 requests, for the run&#39;s life",
      "may mint them, up to 2 levels below, 5 at once",
      "Tokens this cycle",
      "0 of 50,000 per week",
      "No live child keys",
      "No runs yet",
    ]) {
      expect(detail, text).toContain(text);
    }
    expect(detail).toMatch(/aria-label="Tokens: 0 of 50,000 \(0 %\)"/);
    // Cleared by an edit: empty fields, delegation off.
    const saved = await b.post(`/keys/${k.spend_key_id}`, {
      name: "orchestrator",
      spend_amount: "5",
      spend_cycle: "daily",
      token_count: "",
      tpm: "",
      run_spend: "",
      run_requests: "3",
      delegation_depth: "",
      delegation_children: "",
    });
    expect(saved.status).toBe(303);
    expect(await json(await mgmt(wallet.key, "GET", `/spend_keys/${k.spend_key_id}`), 200)).toMatchObject({
      token_limit: null,
      tokens_per_minute: null,
      run_limit: { spend: null, requests: 3 },
      delegation: null,
    });
  });

  it("after an error keeps the new fields as typed and says what is wrong in the form's words", async () => {
    const wallet = await createWallet();
    const b = await browser(wallet.key);
    const typed = {
      token_count: "lots",
      token_cycle: "monthly",
      tpm: "0",
      run_spend: "-1",
      run_requests: "2.5",
      delegation_depth: "2",
      delegation_children: "",
    };
    const res = await b.post("/keys", { name: "typed", request_shape: "openai", ...typed });
    expect(res.status).toBe(400);
    const html = await res.text();
    for (const name of ["token_count", "tpm", "run_spend", "run_requests"] as const) {
      expect(attrs(html, name)[0], name).toContain(`value="${typed[name]}"`);
      expect(attrs(html, name)[0], name).toContain('aria-invalid="true"');
      expect(attrs(html, name)[0], name).toContain(`${name}-error`);
    }
    expect(attrs(html, "token_count")[0]).toContain("autofocus");
    expect(html.match(/autofocus/g)).toHaveLength(1);
    expect(html).toMatch(/name="token_cycle"[\s\S]*?<option value="monthly" selected/);
    expect(html).toMatch(/name="delegation_depth"[\s\S]*?<option value="2" selected/);
    for (const [field, message] of [
      ["token_count", "Token limit must be a whole number of tokens"],
      ["tpm", "Tokens per minute must be a whole number"],
      ["run_spend", "Spend per run must be a positive dollar amount"],
      ["run_requests", "Requests per run must be a whole number"],
      ["delegation_children", "Child keys at once must be a whole number from 1 to 20"],
    ]) {
      expect(html, field).toMatch(new RegExp(`id="${field}-error">${message}`));
      expect(html, field).toContain(`<a href="#f-${field}">`);
    }
    expect(html).not.toMatch(/token_limit|run_limit|max_children|Invalid input/);
    // Contradictions the form can know, with the reason.
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ delegation_depth: "", delegation_children: "4" }, "delegation_children", /needs child keys allowed/],
      [{ delegation_depth: "4", delegation_children: "4" }, "delegation_depth", /Off, or how many levels/],
      [{ delegation_depth: "1", delegation_children: "21" }, "delegation_children", /from 1 to 20/],
      [
        { spend_amount: "1", spend_cycle: "total", run_spend: "2" },
        "run_spend",
        /above the key's spend limit in total \(\$1\) could never apply/,
      ],
      [
        { request_count: "5", request_cycle: "total", run_requests: "6" },
        "run_requests",
        /above the key's request limit in total \(5\) could never apply/,
      ],
    ];
    for (const [fields, field, message] of cases) {
      const r = await b.post("/keys", { name: "contradiction", request_shape: "openai", ...fields });
      expect(r.status, JSON.stringify(fields)).toBe(400);
      const text = (await r.text()).replaceAll("&#39;", "'");
      expect(text, JSON.stringify(fields)).toMatch(new RegExp(`id="${field}-error">[^<]*${message.source}`));
    }
    // A run budget above a daily limit is allowed: a run lives across the key's cycles.
    const ok = await b.post("/keys", {
      name: "run above daily",
      request_shape: "openai",
      spend_amount: "1",
      spend_cycle: "daily",
      run_spend: "3",
    });
    expect(ok.status).toBe(303);
    expect((await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data).toHaveLength(1);
  });

  /** A parent with delegation, and a child it minted with a carve of $0.004 of its $0.01 a day. */
  async function family() {
    const wallet = await createWallet();
    const parent = await createSpendKey(wallet.key, {
      name: "planner",
      spend_limit: { amount: "0.01", cycle: "daily" },
      delegation: { max_depth: 3, max_children: 5 },
    });
    const res = await call("POST", "/v1/key/children", {
      headers: { authorization: `Bearer ${parent.key}` },
      body: { name: "researcher", spend_limit: { amount: "0.004" } },
    });
    const child = await json(res, 201);
    return { wallet, parent, child, b: await browser(wallet.key) };
  }

  it("a child's page shows its parent and carve; a parent's lists its children and their carves", async () => {
    const { parent, child, b } = await family();
    const childPage = await (await b.get(`/keys/${child.spend_key_id}`)).text();
    expect(childPage).toContain(`Child key of <a href="/keys/${parent.spend_key_id}">planner</a>`);
    expect(childPage).toContain("its spend limit is its carve of that key&#39;s");
    expect(childPage).toContain("$0.004 per day");
    expect(childPage).toContain("its carve of planner&#39;s budget: it cannot change");
    const parentPage = await (await b.get(`/keys/${parent.spend_key_id}`)).text();
    expect(parentPage).toContain(`<a class="name" href="/keys/${child.spend_key_id}" title="researcher">`);
    expect(parentPage).toMatch(/data-label="Carve" class="num">\$0\.004 per day/);
    expect(parentPage).toContain("Carved for child keys");
    // The budget meter counts the carve: 40 % of the limit is taken, though nothing is spent.
    expect(parentPage).toContain('aria-label="Spend: $0.00 of $0.01, and $0.004 carved for child keys (40 %)"');
    expect(parentPage).toMatch(/class="fill carved w40"/);
    expect(parentPage).toContain("$0.004 carved for child keys");
    // GET /v1/key's figure, net of the carve.
    const view = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${parent.key}` } }), 200);
    expect(view.next_request.max_cost).toBe("0.006");
    expect(parentPage).toMatch(/Next request may cost at most<\/div><div class="value">\$0\.006</);
    // The key list: the child right under its parent, indented, and a filter by parent.
    const keys = await (await b.get("/keys")).text();
    const rowOf = (id: string) => keys.indexOf(`href="/keys/${id}" title=`);
    expect(rowOf(child.spend_key_id)).toBeGreaterThan(rowOf(parent.spend_key_id));
    expect(keys).toMatch(/<tr class="child under">/);
    expect(keys).toContain(`child of <a href="/keys/${parent.spend_key_id}" title="planner">planner</a>`);
    const only = await (await b.get(`/keys?parent=${parent.spend_key_id}`)).text();
    expect(only).toContain("Child keys of");
    expect(only).toContain(`href="/keys/${child.spend_key_id}" title="researcher"`);
    expect(only).not.toContain(`class="name" href="/keys/${parent.spend_key_id}"`);
  });

  it("a child's edit shows its carve read-only; the API's 409s come back as the field's message", async () => {
    const { wallet, parent, child, b } = await family();
    const edit = await (await b.get(`/keys/${child.spend_key_id}/edit`)).text();
    expect(attrs(edit, "spend_amount")).toHaveLength(0);
    expect(edit).toContain("Spend limit (its carve)");
    expect(edit).toContain("cannot change");
    // Saving the child (its carve is not sent) works.
    const saved = await b.post(`/keys/${child.spend_key_id}`, { name: "researcher 2", spend_amount: "9" });
    expect(saved.status).toBe(303);
    const after = await json(await mgmt(wallet.key, "GET", `/spend_keys/${child.spend_key_id}`), 200);
    expect(after).toMatchObject({ name: "researcher 2", spend_limit: { amount: "0.004", cycle: "daily" } });
    // A delegation past the parent's: the API's 409, in the form's words, values kept.
    const deep = await b.post(`/keys/${child.spend_key_id}`, {
      name: "researcher 2",
      delegation_depth: "3",
      delegation_children: "5",
    });
    expect(deep.status).toBe(400);
    const deepHtml = (await deep.text()).replaceAll("&#39;", "'");
    expect(deepHtml).toMatch(
      /id="delegation_depth-error">This key's parent lets it delegate at most 2 levels and 5 child keys at once/,
    );
    expect(deepHtml).toMatch(/name="delegation_depth"[^>]*aria-invalid="true"/);
    expect(deepHtml).not.toContain("conflict");
    // The parent: its cycle cannot change, nor its limit go below the carves.
    const edits: [Record<string, string>, RegExp][] = [
      [{ spend_amount: "0.01", spend_cycle: "weekly" }, /The spend cycle cannot change.*while 1 child key lives/],
      [{ spend_amount: "0.003", spend_cycle: "daily" }, /Spend limit cannot go below \$0\.004/],
    ];
    const parentEdit = await (await b.get(`/keys/${parent.spend_key_id}/edit`)).text();
    expect(parentEdit).toContain("1 live child key holds $0.004 of this cycle");
    for (const [fields, message] of edits) {
      const res = await b.post(`/keys/${parent.spend_key_id}`, { name: "planner", ...fields });
      expect(res.status).toBe(400);
      const html = (await res.text()).replaceAll("&#39;", "'");
      expect(html).toMatch(new RegExp(`id="spend_amount-error">${message.source}`));
      expect(attrs(html, "spend_amount")[0]).toContain(`value="${fields.spend_amount}"`);
    }
    expect((await json(await mgmt(wallet.key, "GET", `/spend_keys/${parent.spend_key_id}`), 200)).spend_limit).toEqual({
      amount: "0.01",
      cycle: "daily",
    });
  });

  it("lists a key's runs with exact requests and spend; the ledger shows the run and the parent key", async () => {
    const { parent, child, b } = await family();
    for (const run of ["job-1", "job-1", "job-2"]) {
      expect((await chat(child.key, { max_tokens: 20 }, { "x-spendgate-run": run })).status).toBe(200);
    }
    expect((await chat(child.key, { max_tokens: 20 })).status).toBe(200);
    await booked(child.spend_key_id);
    const html = await (await b.get(`/keys/${child.spend_key_id}`)).text();
    const ledger = await (await b.get(`/requests?spend_key_id=${child.spend_key_id}`)).text();
    expect(ledger).toContain("<th>Run</th>");
    expect(ledger).toContain("<code>job-1</code>");
    expect(ledger).toContain(`child of <a href="/keys/${parent.spend_key_id}" title="planner">planner</a>`);
    const byRun = await (await b.get(`/requests?run_id=job-1`)).text();
    expect(byRun.match(/<code>job-1<\/code>/g)).toHaveLength(2);
    expect(byRun).not.toContain("<code>job-2</code>");
    // Each run's figures are its ledger rows' exact sums.
    for (const [run, n] of [
      ["job-1", 2],
      ["job-2", 1],
    ] as const) {
      const listed = await (await b.get(`/requests?run_id=${run}`)).text();
      const costs = [...listed.matchAll(/data-label="Cost" class="num">\$([\d.]+)/g)].map((m) => Number(m[1]));
      expect(costs).toHaveLength(n);
      const total = costs.reduce((a, c) => a + Math.round(c * 1e9), 0);
      const cell = new RegExp(
        `<code>${run}</code></a></td><td data-label="Requests" class="num">${n}</td>` +
          `<td data-label="Tokens" class="num">[\\d,]+</td><td data-label="Spend" class="num">\\$([\\d.]+)</td>`,
      ).exec(html);
      expect(cell, run).not.toBeNull();
      expect(Math.round(Number(cell![1]) * 1e9)).toBe(total);
    }
    expect(html.indexOf("<code>job-2</code>")).toBeLessThan(html.indexOf("<code>job-1</code>"));
  });

  it("rotates with a grace period: the page says until when the old secret works, and it does", async () => {
    const wallet = await createWallet();
    const k = await createSpendKey(wallet.key, { name: "graceful" });
    const b = await browser(wallet.key);
    const ask = await (await b.get(`/keys/${k.spend_key_id}/rotate`)).text();
    expect(attrs(ask, "grace_amount")).toHaveLength(1);
    for (const [amount, unit, message] of [
      ["soon", "minutes", "Grace period must be a whole number of minutes or hours"],
      ["25", "hours", "Grace period can be at most 24 hours"],
    ]) {
      const bad = await b.post(`/keys/${k.spend_key_id}/rotate`, { grace_amount: amount!, grace_unit: unit! });
      expect(bad.status).toBe(400);
      const html = await bad.text();
      expect(html).toMatch(new RegExp(`id="grace-error">${message}`));
      expect(attrs(html, "grace_amount")[0]).toContain(`value="${amount}"`);
      expect(attrs(html, "grace_amount")[0]).toContain('aria-invalid="true"');
      expect(html).toMatch(new RegExp(`<option value="${unit}" selected`));
    }
    expect((await chat(k.key)).status).toBe(200); // nothing rotated yet
    const rotated = await b.post(`/keys/${k.spend_key_id}/rotate`, { grace_amount: "2", grace_unit: "hours" });
    expect(rotated.status).toBe(303);
    const view = await json(await mgmt(wallet.key, "GET", `/spend_keys/${k.spend_key_id}`), 200);
    const until = view.previous_secret_expires_at as string;
    expect(Date.parse(until) - Date.now()).toBeGreaterThan(7_100_000);
    const words = until.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
    const shown = await (await b.get(rotated.headers.get("location")!)).text();
    expect(shown).toContain(`the old secret keeps working until ${words}, then is refused`);
    const secret = /<code id="new-key">([^<]+)<\/code>/.exec(shown)![1]!;
    expect((await chat(secret)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200); // the old one, within its grace
    expect(await (await b.get(`/keys/${k.spend_key_id}`)).text()).toContain(
      `the previous secret keeps working until ${words}`,
    );
    // Without a grace period the old secret stops at once, and the page says so.
    const again = await b.post(`/keys/${k.spend_key_id}/rotate`, { grace_amount: "", grace_unit: "minutes" });
    const plain = await (await b.get(again.headers.get("location")!)).text();
    expect(plain).toContain("the old key no longer works");
    expect((await chat(secret)).status).toBe(401);
  });
});
