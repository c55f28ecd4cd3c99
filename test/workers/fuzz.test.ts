import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, callWith, d1All, json, mgmt, setupKey } from "./helpers.ts";

/** Hostile input never causes a 5xx and never changes a counter or a row. */

const GATEWAY_ROUTES = [
  "/v1/chat/completions",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/messages",
  "/v1/messages/count_tokens",
];
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});

async function unchanged(id: string, before: Awaited<ReturnType<ReturnType<typeof keyGuard>["snapshot"]>>) {
  const after = await keyGuard(env, id).snapshot();
  expect(after.totalRequests).toBe(before.totalRequests);
  expect(after.totalSpendNanos).toBe(before.totalSpendNanos);
  expect(after.openHolds).toBe(0);
}

describe("fuzzing the gateway", () => {
  it("random JSON bodies on every route: no 5xx, no counter moves", async () => {
    const oa = await setupKey();
    const an = await setupKey({ request_shape: "anthropic" });
    const before = { oa: await keyGuard(env, oa.id).snapshot(), an: await keyGuard(env, an.id).snapshot() };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...GATEWAY_ROUTES),
        fc.jsonValue(),
        fc.boolean(),
        async (route, value, anthropic) => {
          const k = anthropic ? an.key : oa.key;
          const res = await call("POST", route, {
            headers: { authorization: `Bearer ${k}` },
            body: JSON.stringify(value),
          });
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...GATEWAY_ROUTES), fc.string({ maxLength: 300 }), async (route, raw) => {
        const res = await call("POST", route, { headers: { authorization: `Bearer ${oa.key}` }, body: raw });
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
      }),
      { numRuns: 100 },
    );
    await unchanged(oa.id, before.oa);
    await unchanged(an.id, before.an);
  });

  it("objects that look almost right (unknown models, bad types) are refused without a count", async () => {
    const { key, id } = await setupKey();
    const before = await keyGuard(env, id).snapshot();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          model: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.constant("gpt-4o-mini ")),
          messages: fc.anything(),
          stream: fc.oneof(fc.constant(undefined), fc.string(), fc.integer()),
          max_tokens: fc.oneof(fc.constant(undefined), fc.double(), fc.integer({ max: -1 }), fc.string()),
        }),
        async (body) => {
          const res = await call("POST", "/v1/chat/completions", { headers: { authorization: `Bearer ${key}` }, body });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 150 },
    );
    await unchanged(id, before);
  });

  it("random credentials and header values: 401, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        printable,
        printable,
        fc.constantFrom("authorization", "x-api-key", "anthropic-version", "content-type", "x-spendgate-metadata"),
        async (cred, value, header) => {
          const res = await call("POST", "/v1/chat/completions", {
            headers: { authorization: `Bearer ${cred}`, [header]: value },
            body: { model: "gpt-4o-mini", messages: [] },
          });
          expect([400, 401]).toContain(res.status);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("random paths and methods: never a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.webPath(),
        fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
        async (path, method) => {
          const res = await call(
            method,
            path.startsWith("/") ? path : `/${path}`,
            method === "GET" || method === "OPTIONS" ? {} : { body: "{}" },
          );
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("huge and chunked bodies: 413 past the limit, never a count; wrong content types still clean", async () => {
    const { key, id } = await setupKey();
    const before = await keyGuard(env, id).snapshot();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40_000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.boolean(),
        async (size, parts, chunked) => {
          const text = JSON.stringify({ model: "nope-model", messages: [{ role: "user", content: "y".repeat(size) }] });
          const bytes = new TextEncoder().encode(text);
          const step = Math.ceil(bytes.length / parts);
          const body = chunked
            ? new ReadableStream({
                start(c) {
                  for (let i = 0; i < bytes.length; i += step) c.enqueue(bytes.slice(i, i + step));
                  c.close();
                },
              })
            : text;
          const res = await callWith({ MAX_BODY_BYTES: "20000" }, "POST", "/v1/chat/completions", {
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body,
          });
          expect(res.status).toBe(bytes.length > 20_000 ? 413 : 404);
        },
      ),
      { numRuns: 40 },
    );
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]) {
      const res = await call("POST", "/v1/chat/completions", {
        headers: { authorization: `Bearer ${key}`, "content-type": type },
        body: "a=b&c=d",
      });
      expect(res.status).toBe(400);
    }
    await unchanged(id, before);
  });
});

describe("fuzzing the management API", () => {
  it("random create and update bodies: no 5xx; refused ones change nothing", async () => {
    const { wallet, id } = await setupKey();
    const rows = () =>
      d1All(
        "SELECT id, name, status, spend_limit_nanos, request_limit_count, rate_limit_rpm, expires_at, allowed_models " +
          `FROM spend_keys WHERE wallet_id = '${wallet.walletId}' ORDER BY id`,
      );
    const field = fc.oneof(
      fc.jsonValue(),
      fc.record({ amount: fc.oneof(fc.string(), fc.double()), cycle: fc.string() }),
      fc.record({ rpm: fc.oneof(fc.integer(), fc.string()), burst: fc.anything() }),
    );
    const body = fc.dictionary(
      fc.constantFrom(
        "name",
        "status",
        "request_shape",
        "allowed_models",
        "allowed_providers",
        "spend_limit",
        "request_limit",
        "rate_limit",
        "expires_at",
        "colour",
      ),
      field,
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom("POST", "PUT", "PATCH"), async (b, method) => {
        const before = JSON.stringify(await rows());
        const res = await mgmt(wallet.key, method, method === "POST" ? "/spend_keys" : `/spend_keys/${id}`, b);
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.status).toBe(400);
          expect(((await json(res)) as any).error.param).toBeTruthy();
          expect(JSON.stringify(await rows())).toBe(before);
        } else await res.arrayBuffer();
      }),
      { numRuns: 200 },
    );
  });
});
