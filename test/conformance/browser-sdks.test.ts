import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, chromiumAvailable, gatewayUrl, newSpendKey } from "./helpers.ts";

/**
 * The `openai` and `@anthropic-ai/sdk` clients running in a web page on another origin (a browser app, an
 * extension, a playground), pointed at the gateway with a spend key: the browser's CORS checks are the
 * browser's own (Chromium), the SDKs are the versions users install, bundled for the browser as an app would.
 */
let browser: Browser;
let site: Server;
let page: Page;

declare global {
  interface Window {
    sdks: { OpenAI: typeof import("openai").default; Anthropic: typeof import("@anthropic-ai/sdk").default };
  }
}

async function bundleSdks(): Promise<string> {
  const out = await build({
    stdin: {
      contents:
        'export { default as OpenAI } from "openai";\nexport { default as Anthropic } from "@anthropic-ai/sdk";\n',
      resolveDir: fileURLToPath(new URL("../..", import.meta.url)),
    },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0]?.text ?? "";
}

describe.skipIf(!chromiumAvailable)("the SDKs in a browser page on another origin", () => {
  beforeAll(async () => {
    const sdks = await bundleSdks();
    site = createServer((req, res) => {
      if (req.url === "/sdks.js") {
        res.setHeader("content-type", "text/javascript");
        return res.end(sdks);
      }
      res.setHeader("content-type", "text/html");
      res.end(`<!doctype html><script type="module">import * as s from "/sdks.js"; window.sdks = s;</script>`);
    });
    await new Promise<void>((resolve) => site.listen(0, "localhost", resolve));
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage();
    await page.goto(`http://localhost:${(site.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => window.sdks !== undefined);
    expect(new URL(page.url()).origin).not.toBe(new URL(gatewayUrl()).origin);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    site?.close();
  });

  it("openai: a JSON answer with its cost readable, and a stream, metered on the key", async () => {
    const { key, id, walletKey } = await newSpendKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const seen = await page.evaluate(
      async ({ baseURL, apiKey }) => {
        const client = new window.sdks.OpenAI({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
        const messages = [{ role: "user" as const, content: "Hello from a browser" }];
        const { data, response } = await client.chat.completions
          .create({ model: "gpt-4o-mini", messages })
          .withResponse();
        let streamed = "";
        const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages, stream: true });
        for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
        return {
          text: data.choices[0]?.message.content,
          cost: response.headers.get("x-spendgate-cost"),
          budget: response.headers.get("x-spendgate-budget-remaining"),
          requestId: response.headers.get("x-request-id"),
          streamed,
        };
      },
      { baseURL: `${gatewayUrl()}/v1`, apiKey: key },
    );
    expect(seen.text).toMatch(/\S/);
    expect(seen.cost).toMatch(/^0\.\d+$/);
    expect(Number(seen.budget)).toBeLessThan(1);
    expect(seen.requestId).toMatch(/^req_/);
    expect(seen.streamed).toMatch(/\S/);
    // Both requests reached the ledger like any other (its rows reach D1 about a second later).
    let requests = 0;
    for (let i = 0; i < 30 && requests < 2; i++) {
      const res = await fetch(`${gatewayUrl()}/v1/requests?spend_key_id=${id}`, {
        headers: { authorization: `Bearer ${walletKey}` },
      });
      requests = ((await res.json()) as { data: unknown[] }).data.length;
      if (requests < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(requests).toBe(2);
  });

  it("@anthropic-ai/sdk: messages with an Anthropic-shaped key, its errors readable too", async () => {
    const { key } = await newSpendKey({ request_shape: "anthropic" });
    const seen = await page.evaluate(
      async ({ baseURL, apiKey }) => {
        const client = new window.sdks.Anthropic({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
        const message = await client.messages.create({
          model: "claude-sonnet-4-5",
          max_tokens: 64,
          messages: [{ role: "user", content: "Hello from a browser" }],
        });
        const bad = new window.sdks.Anthropic({ baseURL, apiKey: "sk-sg-nope", dangerouslyAllowBrowser: true });
        const refused = await bad.messages
          .create({ model: "claude-sonnet-4-5", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
          .then(
            () => null,
            (err: { status?: number }) => {
              const kind = err instanceof window.sdks.Anthropic.AuthenticationError ? "AuthenticationError" : "other";
              return `${kind} ${err.status}`;
            },
          );
        return { text: message.content[0]?.type === "text" ? message.content[0].text : null, refused };
      },
      { baseURL: gatewayUrl(), apiKey: key },
    );
    expect(seen.text).toMatch(/\S/);
    // A CORS failure would surface as a connection error with no status; the SDK reads the gateway's 401.
    expect(seen.refused).toBe("AuthenticationError 401");
  });

  it("the management API refuses to be read from another origin, even with a valid wallet key", async () => {
    const { walletKey } = await newSpendKey();
    const outcome = await page.evaluate(
      async ({ url, auth }) =>
        fetch(url, { headers: { authorization: auth } }).then(
          (res) => `read ${res.status}`,
          (err: Error) => err.name,
        ),
      { url: `${gatewayUrl()}/v1/spend_keys`, auth: `Bearer ${walletKey}` },
    );
    expect(outcome).toBe("TypeError");
  });
});
