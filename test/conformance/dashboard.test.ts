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
/** How wide the page is against the screen, naming (for a failure) up to three elements that stick out. */
function overflow(page: Page) {
  return page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
    wide: [...document.querySelectorAll("main *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 3)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
  }));
}

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
      await page.waitForURL(/\/keys\/spk_\w+\/created$/);
      key = (await page.locator("#new-key").innerText()).trim();
      expect(key).toMatch(/^sk-/);
      expect(page.url()).not.toContain(key);
      await expect(page.locator("main").innerText()).resolves.toContain("shown only once");
      await page.getByRole("button", { name: "Copy" }).click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
      await shoot(page, "key-created");
    });

    step("a reload after creating shows no secret and creates nothing", async () => {
      await page.reload();
      expect(await page.locator("#new-key").count()).toBe(0);
      const main = await page.locator("main").innerText();
      expect(main).not.toContain(key);
      expect(main).toContain("cannot be shown again");
      const list = await fetch(`${gatewayUrl()}/v1/spend_keys`, {
        headers: { authorization: `Bearer ${wallet.secret_key}` },
      });
      expect(((await list.json()) as { data: unknown[] }).data).toHaveLength(1);
    });

    step("the key works with the openai SDK, and its page shows the spend, requests and chart", async () => {
      client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key, maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] });
      }
      await page.getByRole("link", { name: "Keys", exact: true }).click();
      await page.getByRole("link", { name: "research agent" }).click();
      await until(page, /gpt-4o-mini/);
      const main = await page.locator("main").innerText();
      expect(main).toMatch(/Requests\s+3/);
      expect(main, main).toMatch(/\$0\.0000\d+ of \$2\.00 per day/);
      expect(main).toContain("<1 %");
      expect(await page.locator("svg.chart rect.bar").count()).toBeGreaterThan(0);
      await shoot(page, "key-detail");
    });

    step("edits a limit", async () => {
      await page.getByRole("link", { name: "Edit settings" }).click();
      await page.getByLabel("Spend limit (USD)").fill("3.5");
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.waitForURL(/\/keys\/spk_[^/]+$/);
      const main = await page.locator("main").innerText();
      expect(main).toContain("of $3.50 per day");
      expect(main).toContain("Saved the changes to research agent.");
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
      await page.waitForURL(/\/created$/);
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
      await until(page, /(completed[\s\S]*){6}/); // the status filter's option, and the five rows
      await shoot(page, "requests");
      await page.getByRole("link", { name: "Usage", exact: true }).click();
      await page.waitForURL(/\/usage$/);
      expect(await page.locator("svg.chart").count()).toBe(1);
      expect(await page.locator("main").innerText()).toContain("gpt-4o-mini");
      await shoot(page, "usage");
      await page.getByRole("link", { name: "Models", exact: true }).click();
      await page.waitForURL(/\/models$/);
      await shoot(page, "models");
    });

    step("adds a webhook: its signing secret is shown once", async () => {
      await page.getByRole("link", { name: "Webhooks", exact: true }).click();
      await page.getByLabel("Name").fill("alerts");
      await page.getByLabel("URL").fill("https://hooks.example.com/spendgate");
      await page.getByRole("button", { name: "Add webhook" }).click();
      await page.waitForURL(/\/webhooks\/whk_\w+$/);
      const secret = (await page.locator("#webhook-secret").innerText()).trim();
      expect(secret).toMatch(/^whsec_/);
      expect(await page.locator("main").innerText()).toContain("stores it encrypted");
      await page.reload();
      expect(await page.locator("main").innerText()).not.toContain(secret);
      await page.getByRole("link", { name: "Webhooks", exact: true }).click();
      await shoot(page, "webhooks");
    });

    step("revokes (confirmed): the key leaves the list, is refused, and stays findable as revoked", async () => {
      await page.getByRole("link", { name: "Keys", exact: true }).click();
      await shoot(page, "keys");
      await page.getByRole("link", { name: "research agent" }).click();
      await page.getByRole("link", { name: "Revoke…" }).click();
      await page.getByRole("button", { name: "Revoke the key" }).click();
      await page.waitForURL(/\/keys$/);
      expect(await page.locator("main .flash").innerText()).toContain("Revoked research agent");
      expect(await page.locator("main table").innerText()).not.toContain("research agent");
      await expect(
        rotatedClient.chat.completions.create({ model: "gpt-4o-mini", messages: [] }),
      ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await page.getByLabel("Status").selectOption("revoked");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.getByRole("link", { name: "research agent" }).click();
      const main = await page.locator("main").innerText();
      expect(main).toContain("This key is revoked");
      expect(await page.getByRole("link", { name: "Edit settings" }).count()).toBe(0);
      await page.getByRole("link", { name: "Requests", exact: true }).click();
      expect(await page.getByRole("link", { name: "research agent" }).count()).toBeGreaterThan(0);
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

  describe("forms, key states and layout, in a newcomer's first hour", IN_ORDER, () => {
    let wallet: { secret_key: string };
    let context: BrowserContext;
    let page: Page;
    const management = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${gatewayUrl()}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${wallet.secret_key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await res.json()) as Record<string, any>;
    };
    /** Presses Tab until the focused element passes `test` (in the page), as a keyboard-only user would. */
    async function tabTo(test: string) {
      for (let i = 0; i < 400; i++) {
        await page.keyboard.press("Tab");
        if (await page.evaluate(`(${test})(document.activeElement)`)) return;
      }
      throw new Error(`Tab never reached ${test}`);
    }

    beforeAll(async () => {
      wallet = await newWallet("dashboard first hour");
      context = await browser.newContext({ viewport: DESKTOP });
      page = await signIn(context, wallet.secret_key);
    });
    afterAll(async () => {
      await context?.close();
    });

    it("a form error keeps every value and focuses the first wrong field, on a phone and a desktop", async () => {
      for (const viewport of [PHONE, DESKTOP]) {
        await page.setViewportSize(viewport);
        await page.goto(`${gatewayUrl()}/keys/new`);
        await page.getByLabel("Name").fill("keeps values");
        await page.getByRole("checkbox", { name: "openai", exact: true }).check();
        await page.getByLabel("Find a model").fill("gpt-4o-mini");
        await page
          .getByRole("checkbox", { name: /^gpt-4o-mini\b/ })
          .first()
          .check();
        await page.getByLabel("Spend limit (USD)").fill("five");
        await page.getByLabel("Spend cycle").selectOption("weekly");
        await page.getByLabel("Requests per minute").fill("30");
        await page.getByLabel("Burst").fill("45");
        await page.getByLabel("Webhook alerts at").fill("40, 120");
        await page.getByRole("button", { name: "Create key" }).click();
        await page.waitForLoadState();
        expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).name)).toBe("spend_amount");
        expect(await page.getByLabel("Name").inputValue()).toBe("keeps values");
        expect(await page.getByLabel("Spend limit (USD)").inputValue()).toBe("five");
        expect(await page.getByLabel("Spend cycle").inputValue()).toBe("weekly");
        expect(await page.getByLabel("Requests per minute").inputValue()).toBe("30");
        expect(await page.getByLabel("Burst").inputValue()).toBe("45");
        expect(await page.getByLabel("Webhook alerts at").inputValue()).toBe("40, 120");
        expect(await page.getByRole("checkbox", { name: "openai", exact: true }).isChecked()).toBe(true);
        expect(await page.locator('input[name="allowed_models"][value="gpt-4o-mini"]').isChecked()).toBe(true);
        const spend = page.getByLabel("Spend limit (USD)");
        expect(await spend.getAttribute("aria-invalid")).toBe("true");
        const described = (await spend.getAttribute("aria-describedby"))!;
        expect(await page.locator(`#${described}`).innerText()).toContain(
          "Spend limit must be a positive dollar amount",
        );
        expect(await page.locator("main").innerText()).toContain("Alert thresholds are percents between 1 and 100");
      }
      await shoot(page, "create-key-error");
    });

    it("creates a key with the keyboard alone, choosing its model in the picker", async () => {
      await page.goto(`${gatewayUrl()}/keys/new`);
      await tabTo("(el) => el?.name === 'name'");
      await page.keyboard.type("keyboard only");
      await tabTo("(el) => el?.dataset?.modelFilter !== undefined");
      await page.keyboard.type("gpt-4o-mini");
      await page.keyboard.press("Enter"); // refused: Enter in the filter never submits the form
      await tabTo("(el) => el?.name === 'allowed_models' && el.value === 'gpt-4o-mini'");
      await page.keyboard.press("Space");
      await tabTo("(el) => el?.tagName === 'BUTTON' && el.textContent.trim() === 'Create key'");
      await page.keyboard.press("Enter");
      await page.waitForURL(/\/created$/);
      expect((await page.locator("#new-key").innerText()).trim()).toMatch(/^sk-/);
      const keys = (await management("GET", "/spend_keys")).data as { name: string; allowed_models: string[] }[];
      expect(keys.find((k) => k.name === "keyboard only")?.allowed_models).toEqual(["gpt-4o-mini"]);
    });

    it("a key that cannot afford its next request says so, with the figure GET /v1/key gives", async () => {
      const tight = await management("POST", "/spend_keys", {
        name: "tight budget",
        allowed_models: ["gpt-4o-mini"],
        spend_limit: { amount: "0.0001", cycle: "daily" },
      });
      const live = (await (
        await fetch(`${gatewayUrl()}/v1/key`, { headers: { authorization: `Bearer ${tight.key}` } })
      ).json()) as { next_request: { max_cost: string } };
      await page.goto(`${gatewayUrl()}/keys`);
      const row = page.locator("tr", { hasText: "tight budget" });
      expect(await row.innerText()).toContain("Cannot afford another request");
      await row.getByRole("link", { name: "tight budget" }).click();
      const main = await page.locator("main").innerText();
      expect(main).toContain("Cannot afford another request");
      expect(main).toContain(`$${live.next_request.max_cost}`);
      await shoot(page, "key-cannot-afford");
    });

    it("a 200-character name keeps every page within the viewport, phone and desktop, whole in a title", async () => {
      const name = "x".repeat(190) + "-long-name";
      const k = await management("POST", "/spend_keys", { name });
      const client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: k.key, maxRetries: 0 });
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] });
      const hook = await management("POST", "/webhooks", { name, url: `https://hooks.example.com/${"p".repeat(150)}` });
      await page.goto(`${gatewayUrl()}/requests`);
      await until(page, /x{20}-long-name/);
      expect(await page.locator(`a[title="${name}"]`).count()).toBeGreaterThan(0);
      const paths = [
        "/keys",
        "/keys?status=all",
        `/keys/${k.spend_key_id}`,
        `/keys/${k.spend_key_id}/edit`,
        `/keys/${k.spend_key_id}/revoke`,
        "/keys/new",
        "/requests",
        "/usage",
        "/models",
        "/webhooks",
        `/webhooks/${hook.webhook_id}`,
        `/webhooks/${hook.webhook_id}/delete`,
      ];
      for (const viewport of [PHONE, DESKTOP]) {
        await page.setViewportSize(viewport);
        for (const path of paths) {
          await page.goto(`${gatewayUrl()}${path}`);
          const { scroll, inner, wide } = await overflow(page);
          expect(scroll, `${path} at ${viewport.width} px: ${wide.join(", ")}`).toBeLessThanOrEqual(inner);
        }
      }
      await page.goto(`${gatewayUrl()}/keys`);
      expect(await page.locator(`a.name[title="${name}"]`).count()).toBe(1);
      await page.setViewportSize(PHONE);
      await shoot(page, "keys-long-name");
    });
  });

  describe("budgets for agents: token limits, runs and child keys through the form", IN_ORDER, () => {
    let wallet: { secret_key: string };
    let context: BrowserContext;
    let page: Page;

    beforeAll(async () => {
      wallet = await newWallet("dashboard agent budgets");
      context = await browser.newContext({ viewport: DESKTOP });
      page = await signIn(context, wallet.secret_key);
    });
    afterAll(async () => {
      await context?.close();
    });

    it("creates a key with token, run and delegation limits; sees them on its page and its child's", async () => {
      for (const [size, viewport] of [
        ["phone", PHONE],
        ["desktop", DESKTOP],
      ] as const) {
        await page.setViewportSize(viewport);
        await page.goto(`${gatewayUrl()}/keys/new`);
        await page.getByLabel("Name").fill(`orchestrator ${size}`);
        await page.getByLabel("Spend limit (USD)").fill("1");
        await page.getByLabel("Token limit").fill("50000");
        await page.getByLabel("Token cycle").selectOption("weekly");
        await page.getByLabel("Tokens per minute").fill("2000");
        await page.getByLabel("Spend per run (USD)").fill("0.25");
        await page.getByLabel("Requests per run").fill("10");
        await page.getByLabel("May mint child keys").selectOption("2");
        await page.getByLabel("Child keys at once").fill("5");
        await page.getByRole("button", { name: "Create key" }).click();
        await page.waitForURL(/\/keys\/spk_\w+\/created$/);
        const secret = (await page.locator("#new-key").innerText()).trim();
        await page.getByRole("link", { name: `orchestrator ${size}` }).click();
        await page.waitForURL(/\/keys\/spk_\w+$/);
        const parentUrl = page.url();
        let main = await page.locator("main").innerText();
        for (const text of [
          "50,000 tokens per week",
          "2,000 per UTC minute",
          "each run at most $0.25 and 10 requests",
          "may mint them, up to 2 levels below, 5 at once",
          "Tokens this cycle",
          "No live child keys",
        ]) {
          expect(main, `${size}: ${text}`).toContain(text);
        }
        // An agent holding the key mints a child; the parent's page lists it and counts its carve.
        const minted = await fetch(`${gatewayUrl()}/v1/key/children`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
          body: JSON.stringify({ name: `sub-agent ${size}`, spend_limit: { amount: "0.25" } }),
        });
        expect(minted.status).toBe(201);
        await page.reload();
        main = await page.locator("main").innerText();
        expect(main).toContain(`sub-agent ${size}`);
        expect(main).toContain("$0.25 carved for child keys");
        expect(main).toMatch(/Carved for child keys\s+\$0\.25/);
        let o = await overflow(page);
        expect(o.scroll, `parent at ${viewport.width} px: ${o.wide.join(", ")}`).toBeLessThanOrEqual(o.inner);
        if (size === "desktop") await shoot(page, "key-parent");
        await page.getByRole("link", { name: `sub-agent ${size}` }).click();
        main = await page.locator("main").innerText();
        expect(main).toContain(`Child key of orchestrator ${size}`);
        expect(main).toContain(`its carve of orchestrator ${size}'s budget: it cannot change`);
        o = await overflow(page);
        expect(o.scroll, `child at ${viewport.width} px: ${o.wide.join(", ")}`).toBeLessThanOrEqual(o.inner);
        // Its edit form shows the carve, not a field that would always be refused.
        await page.getByRole("link", { name: "Edit settings" }).click();
        expect(await page.locator('input[name="spend_amount"]').count()).toBe(0);
        expect(await page.locator("main").innerText()).toContain("Spend limit (its carve)");
        for (const path of ["/keys", new URL(parentUrl).pathname, `${new URL(parentUrl).pathname}/rotate`]) {
          await page.goto(`${gatewayUrl()}${path}`);
          o = await overflow(page);
          expect(o.scroll, `${path} at ${viewport.width} px: ${o.wide.join(", ")}`).toBeLessThanOrEqual(o.inner);
        }
      }
      await page.setViewportSize(DESKTOP);
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
