import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, chromiumAvailable, gatewayUrl, newWallet } from "./helpers.ts";

/**
 * The dashboard in a real browser (playwright-core driving Debian's chromium-headless-shell), against the
 * gateway `npm run dev` serves: the whole story a wallet owner lives through, the security promises a browser
 * enforces, and screenshots (desktop and phone): written to test-results/screenshots/ (never to a tracked file), or,
 * by `npm run screenshots`, to docs/screenshots/ where the docs show them.
 * Without the browser installed these tests are skipped, unless REQUIRE_BROWSER is set (CI sets it).
 */
const SHOTS = new URL(`../../${process.env.SCREENSHOTS_DIR ?? "test-results/screenshots"}/`, import.meta.url);
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

let browser: Browser;

async function shoot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  for (const [size, viewport] of [
    ["desktop", DESKTOP],
    ["phone", PHONE],
  ] as const) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: new URL(`${name}-${size}.png`, SHOTS).pathname, fullPage: size === "desktop" });
  }
  await page.setViewportSize(DESKTOP);
}

async function signIn(context: BrowserContext, secret: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${gatewayUrl()}/`);
  expect(new URL(page.url()).pathname).toBe("/signin");
  await page.getByLabel("Wallet secret key").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/keys$/);
  return page;
}

/** Reloads until `text` shows (the ledger reaches D1 about a second after a request). */
async function until(page: Page, text: string | RegExp) {
  for (let i = 0; i < 30; i++) {
    if ((await page.locator("main").innerText()).match(text)) return;
    await page.waitForTimeout(300);
    await page.reload();
  }
  throw new Error(`never showed ${text}`);
}

/** A story's steps run one after another, in order, whatever the run's defaults (no concurrency, no shuffle). */
const IN_ORDER = { concurrent: false, shuffle: false };

/**
 * The steps of one story, each an `it` named for what it proves, run in order on state the earlier steps left.
 * Once a step fails the later ones are skipped (they could only fail for its reason), so the report names the
 * step that broke.
 */
function storySteps() {
  let failed: string | null = null;
  return (name: string, body: () => Promise<void>) =>
    it(name, async (ctx) => {
      if (failed) ctx.skip(`the step "${failed}" failed`);
      try {
        await body();
      } catch (err) {
        failed = name;
        throw err;
      }
    });
}

describe.skipIf(!chromiumAvailable)("the dashboard in a browser", () => {
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  afterAll(async () => {
    await browser?.close();
  });

  describe("the whole story: sign in, create, use, watch, edit, pause, rotate, revoke, sign out", IN_ORDER, () => {
    const step = storySteps();
    // What the steps hand on to each other.
    let wallet: { secret_key: string };
    let context: BrowserContext;
    let page: Page;
    let key: string;
    let client: OpenAI;
    let rotatedClient: OpenAI;

    beforeAll(async () => {
      wallet = await newWallet("dashboard story");
      context = await browser.newContext({ viewport: DESKTOP });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gatewayUrl() });
    });
    afterAll(async () => {
      await context?.close();
    });

    step("signs in with the wallet secret key", async () => {
      page = await signIn(context, wallet.secret_key);
      await shoot(page, "keys-empty");
    });

    step("creates a key with limits: shown once, with a copy button and snippets", async () => {
      await page.getByRole("link", { name: "Create key" }).click();
      await page.getByLabel("Name").fill("research agent");
      await page.getByLabel("Spend limit (USD)").fill("2");
      await page.getByLabel("Request limit").fill("100");
      await page.getByLabel("Requests per minute").fill("60");
      await page.getByRole("checkbox", { name: "openai" }).check();
      await shoot(page, "create-key");
      await page.getByRole("button", { name: "Create key" }).click();
      key = (await page.locator("#new-key").innerText()).trim();
      expect(key).toMatch(/^sk-/);
      await expect(page.locator("main").innerText()).resolves.toContain("shown only once");
      await page.getByRole("button", { name: "Copy" }).click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
      await shoot(page, "key-created");
    });

    step("the key works with the openai SDK, and its page shows the spend, requests and chart", async () => {
      client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key, maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] });
      }
      await page.getByRole("link", { name: "research agent" }).click();
      await until(page, /gpt-4o-mini/);
      const main = await page.locator("main").innerText();
      expect(main).toMatch(/Requests\s+3/);
      expect(main).toMatch(/\$0\.0000\d+ of \$2\.00 per day/);
      expect(await page.locator("svg.chart rect.bar").count()).toBeGreaterThan(0);
      await shoot(page, "key-detail");
    });

    step("edits a limit", async () => {
      await page.getByRole("link", { name: "Edit limits" }).click();
      await page.getByLabel("Spend limit (USD)").fill("3.5");
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.waitForURL(/\/keys\/spk_[^/]+$/);
      expect(await page.locator("main").innerText()).toContain("of $3.50 per day");
    });

    step("pause and resume act on the very next request", async () => {
      await page.getByRole("button", { name: "Pause" }).click();
      await expect(client.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
        OpenAI.PermissionDeniedError,
      );
      await page.getByRole("button", { name: "Resume" }).click();
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "again" }] });
    });

    step("rotates (confirmed): the new key is shown once and works, the old one is refused", async () => {
      await page.getByRole("link", { name: "Rotate…" }).click();
      await page.getByRole("button", { name: "Rotate the key" }).click();
      const rotated = (await page.locator("#new-key").innerText()).trim();
      expect(rotated).not.toBe(key);
      await expect(client.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
        OpenAI.AuthenticationError,
      );
      rotatedClient = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: rotated, maxRetries: 0 });
      await rotatedClient.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "rotated" }],
      });
    });

    step("the ledger lists every request, and usage draws its chart", async () => {
      await page.getByRole("link", { name: "Requests", exact: true }).click();
      // Five requests so far: three, one after resuming, one with the rotated key.
      await until(page, /completed[\s\S]*completed[\s\S]*completed[\s\S]*completed[\s\S]*completed/);
      await shoot(page, "requests");
      await page.getByRole("link", { name: "Usage", exact: true }).click();
      expect(await page.locator("svg.chart").count()).toBe(1);
      expect(await page.locator("main").innerText()).toContain("gpt-4o-mini");
      await shoot(page, "usage");
      await page.getByRole("link", { name: "Models", exact: true }).click();
      await shoot(page, "models");
    });

    step("adds a webhook: its signing secret is shown once", async () => {
      await page.getByRole("link", { name: "Webhooks", exact: true }).click();
      await page.getByLabel("Name").fill("alerts");
      await page.getByLabel("URL").fill("https://hooks.example.com/spendgate");
      await page.getByRole("button", { name: "Add webhook" }).click();
      expect((await page.locator("#webhook-secret").innerText()).trim()).toMatch(/^whsec_/);
      await shoot(page, "webhooks");
    });

    step("revokes (confirmed): the key leaves the list and is refused", async () => {
      await page.getByRole("link", { name: "Keys", exact: true }).click();
      await shoot(page, "keys");
      await page.getByRole("link", { name: "research agent" }).click();
      await page.getByRole("link", { name: "Revoke…" }).click();
      await page.getByRole("button", { name: "Revoke the key" }).click();
      await page.waitForURL(/\/keys$/);
      expect(await page.locator("main").innerText()).not.toContain("research agent");
      await expect(
        rotatedClient.chat.completions.create({ model: "gpt-4o-mini", messages: [] }),
      ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    });

    step("signs out: the session is refused afterwards, even replayed by hand", async () => {
      const session = (await context.cookies()).find((c) => c.name === "sg_session")!;
      expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict" });
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/signin$/);
      const replay = await fetch(`${gatewayUrl()}/keys`, {
        headers: { cookie: `sg_session=${session.value}` },
        redirect: "manual",
      });
      expect(replay.status).toBe(303);
      expect(replay.headers.get("location")).toBe("/signin");
    });
  });

  describe("what the browser enforces for a signed-in wallet", IN_ORDER, () => {
    let wallet: { secret_key: string };
    let context: BrowserContext;
    let page: Page;
    /** The signed-in session's CSRF token, as the dashboard's own forms carry it. */
    let token: string;

    const management = (method: string, path: string, body?: unknown) =>
      fetch(`${gatewayUrl()}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${wallet.secret_key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const newKey = async (name: string) =>
      ((await (await management("POST", "/spend_keys", { name })).json()) as { spend_key_id: string }).spend_key_id;
    /** 200 and "active" while the key stands; a revoked key answers 404. */
    const keyState = async (id: string) => {
      const res = await management("GET", `/spend_keys/${id}`);
      return res.status === 200 ? ((await res.json()) as { status: string }).status : res.status;
    };

    beforeAll(async () => {
      wallet = await newWallet("dashboard security");
      context = await browser.newContext({ viewport: DESKTOP });
      page = await signIn(context, wallet.secret_key);
      token = (await page.locator('input[name="_csrf"]').first().getAttribute("value"))!;
      expect(token).toMatch(/^\w{16,}$/);
    });
    afterAll(async () => {
      await context?.close();
    });

    it("renders a hostile key name as text, under a strict CSP, with nothing in web storage", async () => {
      const name = `<img src=x onerror="window.__pwned=1">`;
      await newKey(name);
      const response = await page.goto(`${gatewayUrl()}/keys`);
      expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
      expect(await page.getByRole("link", { name }).count()).toBe(1);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
    });

    /** A revoke form for `id` that submits itself, with `csrf` as its token field (or none). */
    const forgedForm = (id: string, csrf: string | null) =>
      `<!doctype html><form id="f" method="post" action="${gatewayUrl()}/keys/${id}/revoke">` +
      (csrf === null ? "" : `<input name="_csrf" value="${csrf}">`) +
      `</form><script>document.getElementById("f").submit()</script>`;

    /**
     * Opens a page in the signed-in browser (`open` makes it submit a revoke form for `id`), and answers what the
     * gateway received and said: whether the browser sent the session cookie, its `Sec-Fetch-Site`, the answer's
     * status and where it sent the browser.
     */
    async function forgeRevoke(id: string, open: (evil: Page) => Promise<unknown>) {
      const evil = await context.newPage();
      const action = `${gatewayUrl()}/keys/${id}/revoke`;
      const answered = evil.waitForResponse((r) => r.url() === action && r.request().method() === "POST");
      await open(evil);
      const response = await answered;
      const sent = await response.request().allHeaders();
      await evil.waitForLoadState();
      const result = {
        cookieSent: (sent.cookie ?? "").includes("sg_session="),
        site: sent["sec-fetch-site"],
        status: response.status(),
        location: response.headers().location ?? null,
        text: await evil.locator("body").innerText(),
      };
      await evil.close();
      return result;
    }

    /**
     * A document of the gateway's own origin that the dashboard did not render (`/health`), into which a revoke
     * form is written and submitted — as injected markup, or another app on the same origin, would.
     */
    const fromOwnOrigin = (id: string, csrf: string | null) => async (evil: Page) => {
      await evil.goto(`${gatewayUrl()}/health`);
      await evil.evaluate(
        ({ action, csrf }) => {
          const form = Object.assign(document.createElement("form"), { method: "post", action });
          if (csrf !== null)
            form.append(Object.assign(document.createElement("input"), { name: "_csrf", value: csrf }));
          document.body.append(form);
          form.submit();
        },
        { action: `${gatewayUrl()}/keys/${id}/revoke`, csrf },
      );
    };

    /** A page of the attacker's served by a plain HTTP server on `host`, on a port of its own. */
    async function attackerServer(host: string, html: string): Promise<{ url: string; server: Server }> {
      const server = createServer((_req, out) => {
        out.setHeader("content-type", "text/html");
        out.end(html);
      });
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      return { url: `http://${host}:${(server.address() as AddressInfo).port}/`, server };
    }

    const gatewayHost = () => new URL(gatewayUrl()).hostname;

    it("a cross-site form (another host): the SameSite=Strict cookie stays home, so it reaches sign-in", async () => {
      const id = await newKey("cross-site target");
      const otherSite = gatewayHost() === "localhost" ? "127.0.0.1" : "localhost";
      const { url, server } = await attackerServer(otherSite, forgedForm(id, "guessed"));
      try {
        const got = await forgeRevoke(id, (evil) => evil.goto(url));
        expect(got).toMatchObject({ site: "cross-site", cookieSent: false, status: 303, location: "/signin" });
      } finally {
        server.close();
      }
      expect(await keyState(id)).toBe("active");
    });

    it("a same-site form (gateway's host, another port) sends the cookie: the origin check refuses it", async () => {
      // Same host, another port: another origin but the same site, so the Strict cookie IS sent. Refused even
      // with the session's real token in the form (as if it had leaked): there, only the origin check stands.
      for (const csrf of ["guessed", null, "the real token"]) {
        const id = await newKey("same-site target");
        const value = csrf === "the real token" ? token : csrf;
        const { url, server } = await attackerServer(gatewayHost(), forgedForm(id, value));
        try {
          const got = await forgeRevoke(id, (evil) => evil.goto(url));
          expect(got, `token: ${csrf}`).toMatchObject({ site: "same-site", cookieSent: true, status: 403 });
          expect(got.text).toContain("This form did not come from this dashboard.");
        } finally {
          server.close();
        }
        expect(await keyState(id), `token: ${csrf}`).toBe("active");
      }
    });

    it("a form on the gateway's own origin without the session's token: the token check refuses it", async () => {
      // Same-origin by the browser's word and the cookie sent: only the CSRF token can tell this form apart.
      for (const csrf of [null, "guessed", token.slice(0, -1)]) {
        const id = await newKey("same-origin target");
        const got = await forgeRevoke(id, fromOwnOrigin(id, csrf));
        expect(got, `token: ${csrf}`).toMatchObject({ site: "same-origin", cookieSent: true, status: 403 });
        expect(got.text).toContain("This form did not come from this dashboard.");
        expect(await keyState(id), `token: ${csrf}`).toBe("active");
      }
    });

    it("control: the same form with the session's token revokes (so only the token stopped it)", async () => {
      const id = await newKey("control target");
      const got = await forgeRevoke(id, fromOwnOrigin(id, token));
      expect(got).toMatchObject({ site: "same-origin", cookieSent: true, status: 303, location: "/keys" });
      expect(await keyState(id)).toBe(404);
    });
  });
});
