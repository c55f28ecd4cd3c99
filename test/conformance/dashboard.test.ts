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
 * enforces, and the README's screenshots (desktop and phone), written to docs/screenshots/ by this run.
 * Without the browser installed these tests are skipped, unless REQUIRE_BROWSER is set (CI sets it).
 */
const SHOTS = new URL("../../docs/screenshots/", import.meta.url);
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

describe.skipIf(!chromiumAvailable)("the dashboard in a browser", () => {
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("walks the whole story: sign in, create, use, watch, edit, pause, rotate, revoke, sign out", async () => {
    const wallet = await newWallet("dashboard story");
    const context = await browser.newContext({ viewport: DESKTOP });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gatewayUrl() });
    const page = await signIn(context, wallet.secret_key);
    await shoot(page, "keys-empty");

    // Create a key with limits; it is shown once, with a copy button and snippets.
    await page.getByRole("link", { name: "Create key" }).click();
    await page.getByLabel("Name").fill("research agent");
    await page.getByLabel("Spend limit (USD)").fill("2");
    await page.getByLabel("Request limit").fill("100");
    await page.getByLabel("Requests per minute").fill("60");
    await page.getByRole("checkbox", { name: "openai" }).check();
    await shoot(page, "create-key");
    await page.getByRole("button", { name: "Create key" }).click();
    const key = (await page.locator("#new-key").innerText()).trim();
    expect(key).toMatch(/^sk-/);
    await expect(page.locator("main").innerText()).resolves.toContain("shown only once");
    await page.getByRole("button", { name: "Copy" }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
    await shoot(page, "key-created");

    // Use it with the openai SDK against the same gateway.
    const client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key, maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] });
    }

    // Spend and requests update on the key's page; its recent requests and chart show them.
    await page.getByRole("link", { name: "research agent" }).click();
    await until(page, /gpt-4o-mini/);
    const main = await page.locator("main").innerText();
    expect(main).toMatch(/Requests\s+3/);
    expect(main).toMatch(/\$0\.0000\d+ of \$2\.00 per day/);
    expect(await page.locator("svg.chart rect.bar").count()).toBeGreaterThan(0);
    await shoot(page, "key-detail");

    // Edit a limit.
    await page.getByRole("link", { name: "Edit limits" }).click();
    await page.getByLabel("Spend limit (USD)").fill("3.5");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(/\/keys\/spk_[^/]+$/);
    expect(await page.locator("main").innerText()).toContain("of $3.50 per day");

    // Pause and resume act on the very next request.
    await page.getByRole("button", { name: "Pause" }).click();
    await expect(client.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
    await page.getByRole("button", { name: "Resume" }).click();
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "again" }] });

    // Rotate (confirmed): the new key is shown once; the old one is refused.
    await page.getByRole("link", { name: "Rotate…" }).click();
    await page.getByRole("button", { name: "Rotate the key" }).click();
    const rotated = (await page.locator("#new-key").innerText()).trim();
    expect(rotated).not.toBe(key);
    await expect(client.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const next = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: rotated, maxRetries: 0 });
    await next.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "rotated" }] });

    // The ledger and the usage chart.
    await page.getByRole("link", { name: "Requests", exact: true }).click();
    await until(page, /completed[\s\S]*completed[\s\S]*completed[\s\S]*completed[\s\S]*completed/);
    await shoot(page, "requests");
    await page.getByRole("link", { name: "Usage", exact: true }).click();
    expect(await page.locator("svg.chart").count()).toBe(1);
    expect(await page.locator("main").innerText()).toContain("gpt-4o-mini");
    await shoot(page, "usage");
    await page.getByRole("link", { name: "Models", exact: true }).click();
    await shoot(page, "models");
    await page.getByRole("link", { name: "Webhooks", exact: true }).click();
    await page.getByLabel("Name").fill("alerts");
    await page.getByLabel("URL").fill("https://hooks.example.com/spendgate");
    await page.getByRole("button", { name: "Add webhook" }).click();
    expect((await page.locator("#webhook-secret").innerText()).trim()).toMatch(/^whsec_/);
    await shoot(page, "webhooks");

    // Revoke (confirmed): gone from the list, and its key refused.
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await shoot(page, "keys");
    await page.getByRole("link", { name: "research agent" }).click();
    await page.getByRole("link", { name: "Revoke…" }).click();
    await page.getByRole("button", { name: "Revoke the key" }).click();
    await page.waitForURL(/\/keys$/);
    expect(await page.locator("main").innerText()).not.toContain("research agent");
    await expect(next.chat.completions.create({ model: "gpt-4o-mini", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );

    // Sign out: the session is refused afterwards, even replayed by hand.
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "sg_session")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/signin$/);
    const replay = await fetch(`${gatewayUrl()}/keys`, {
      headers: { cookie: `sg_session=${session.value}` },
      redirect: "manual",
    });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/signin");
    // The secret key never reached storage the page can read, nor a URL.
    await context.close();
  });

  it("renders a hostile key name as text, and refuses a cross-site form that would revoke a key", async () => {
    const wallet = await newWallet("dashboard security");
    const name = `<img src=x onerror="window.__pwned=1">`;
    const res = await fetch(`${gatewayUrl()}/v1/spend_keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${wallet.secret_key}`, "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    const created = (await res.json()) as { spend_key_id: string };
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await signIn(context, wallet.secret_key);
    const response = await page.goto(`${gatewayUrl()}/keys`);
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(await page.getByRole("link", { name }).count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);

    // Another site (another port is another origin) auto-submits a revoke form at the signed-in browser.
    const attacker: Server = createServer((_req, out) => {
      out.setHeader("content-type", "text/html");
      out.end(
        `<form id="f" method="post" action="${gatewayUrl()}/keys/${created.spend_key_id}/revoke">` +
          `<input name="_csrf" value="guessed"></form><script>document.getElementById("f").submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, "localhost", resolve));
    const { port } = attacker.address() as AddressInfo;
    const evil = await context.newPage();
    const landed = evil.waitForURL(new RegExp(`^${gatewayUrl()}`));
    await evil.goto(`http://localhost:${port}/`);
    await landed;
    attacker.close();
    const still = await fetch(`${gatewayUrl()}/v1/spend_keys/${created.spend_key_id}`, {
      headers: { authorization: `Bearer ${wallet.secret_key}` },
    });
    expect(still.status).toBe(200);
    expect(((await still.json()) as { status: string }).status).toBe("active");
    await context.close();
  });
});
