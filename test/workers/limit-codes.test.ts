import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, callWith, chat, json, messages, mgmt, settled, setupKey } from "./helpers.ts";

/**
 * Every refusal names its limit: a stable `error.code` (in the Anthropic dialect too, next to its `type`) and an
 * `x-spendgate-limit` header, with `retry-after` where waiting helps and `x-should-retry: false` where it does
 * not. Each case is reached the way a client reaches it, once per dialect.
 */

type Dialect = "openai" | "anthropic";
interface Expect {
  code: string;
  limit: string;
  status: { openai: number; anthropic: number };
  anthropicType: string;
  /** whether the answer says when to retry */
  retryAfter: boolean;
}

const send = (dialect: Dialect, key: string, headers: Record<string, string> = {}) =>
  dialect === "openai" ? chat(key, {}, headers) : messages(key, {}, headers);
const RUN = { "x-spendgate-run": "nightly-42" };
const shape = (dialect: Dialect) => ({ request_shape: dialect });

/** Each case: make a key of the dialect's shape that the *last* of its requests finds refused. */
const CASES: Record<string, { expect: Expect; refused: (d: Dialect) => Promise<Response> }> = {
  spend: {
    expect: {
      code: "spend_limit_exceeded",
      limit: "spend",
      status: { openai: 429, anthropic: 402 },
      anthropicType: "billing_error",
      retryAfter: true,
    },
    refused: async (d) => {
      const { key } = await setupKey({ ...shape(d), spend_limit: { amount: "0.000001", cycle: "daily" } });
      return send(d, key);
    },
  },
  requests: {
    expect: {
      code: "request_limit_exceeded",
      limit: "requests",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      retryAfter: true,
    },
    refused: async (d) => {
      const { key } = await setupKey({ ...shape(d), request_limit: { count: 1, cycle: "monthly" } });
      expect((await send(d, key)).status).toBe(200);
      return send(d, key);
    },
  },
  rate: {
    expect: {
      code: "rate_limit_exceeded",
      limit: "rate",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      retryAfter: true,
    },
    refused: async (d) => {
      const { key } = await setupKey({ ...shape(d), rate_limit: { rpm: 1, burst: 1 } });
      expect((await send(d, key)).status).toBe(200);
      return send(d, key);
    },
  },
  concurrency: {
    expect: {
      code: "too_many_concurrent_requests",
      limit: "concurrency",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      retryAfter: true,
    },
    refused: async (d) => {
      const { key, id } = await setupKey(shape(d));
      const path = d === "openai" ? "/v1/chat/completions" : "/v1/messages";
      const auth: Record<string, string> = d === "openai" ? { authorization: `Bearer ${key}` } : { "x-api-key": key };
      const model = d === "openai" ? "gpt-4o-mini" : "claude-sonnet-4-20250514";
      const body = JSON.stringify({
        model,
        max_tokens: 5,
        messages: [{ role: "user", content: "[[fault:slow:400]]" }],
      });
      const headers = { ...auth, "content-type": "application/json", "anthropic-version": "2023-06-01" };
      const both = await Promise.all(
        [0, 1].map(() => callWith({ MAX_INFLIGHT_PER_KEY: "1" }, "POST", path, { headers, body })),
      );
      await settled(id);
      expect(both.map((r) => r.status).sort()).toEqual([200, 429]);
      return both.find((r) => r.status === 429) as Response;
    },
  },
  tokens: {
    expect: {
      code: "token_limit_exceeded",
      limit: "tokens",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      retryAfter: true,
    },
    // 100 tokens a day: not even the smallest clamped output (1,024 tokens) fits.
    refused: async (d) => send(d, (await setupKey({ ...shape(d), token_limit: { count: 100, cycle: "daily" } })).key),
  },
  token_rate: {
    expect: {
      code: "token_rate_limit_exceeded",
      limit: "token_rate",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      // a request larger than the whole minute's allowance never fits: no point waiting
      retryAfter: false,
    },
    refused: async (d) => send(d, (await setupKey({ ...shape(d), tokens_per_minute: 100 })).key),
  },
  run_spend: {
    expect: {
      code: "run_spend_limit_exceeded",
      limit: "run_spend",
      status: { openai: 429, anthropic: 402 },
      anthropicType: "billing_error",
      retryAfter: false,
    },
    refused: async (d) => send(d, (await setupKey({ ...shape(d), run_limit: { spend: "0.000001" } })).key, RUN),
  },
  run_requests: {
    expect: {
      code: "run_request_limit_exceeded",
      limit: "run_requests",
      status: { openai: 429, anthropic: 429 },
      anthropicType: "rate_limit_error",
      retryAfter: false,
    },
    refused: async (d) => {
      const { key } = await setupKey({ ...shape(d), run_limit: { requests: 1 } });
      expect((await send(d, key, RUN)).status).toBe(200);
      return send(d, key, RUN);
    },
  },
  carve: {
    expect: {
      code: "carve_exceeded",
      limit: "carve",
      status: { openai: 429, anthropic: 402 },
      anthropicType: "billing_error",
      retryAfter: true,
    },
    // A child key minted by its parent with a carve too small for one request.
    refused: async (d) => {
      const parent = await setupKey({
        ...shape(d),
        spend_limit: { amount: "1.00", cycle: "daily" },
        delegation: { max_depth: 1, max_children: 1 },
      });
      const minted = await call("POST", "/v1/key/children", {
        headers: { authorization: `Bearer ${parent.key}` },
        body: { name: "sub-agent", spend_limit: { amount: "0.000001", cycle: "daily" } },
      });
      return send(d, (await json(minted, 201)).key);
    },
  },
  // `runs` (too_many_runs) needs 1,000 live runs first: runs.test.ts asserts it in both dialects.
  paused: {
    expect: {
      code: "key_paused",
      limit: "paused",
      status: { openai: 403, anthropic: 403 },
      anthropicType: "permission_error",
      retryAfter: false,
    },
    refused: async (d) => send(d, (await setupKey({ ...shape(d), status: "paused" })).key),
  },
  revoked: {
    expect: {
      code: "key_revoked",
      limit: "revoked",
      status: { openai: 401, anthropic: 401 },
      anthropicType: "authentication_error",
      retryAfter: false,
    },
    refused: async (d) => {
      const { wallet, id, key } = await setupKey(shape(d));
      await json(await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`), 200);
      return send(d, key);
    },
  },
  expiry: {
    expect: {
      code: "key_expired",
      limit: "expiry",
      status: { openai: 401, anthropic: 401 },
      anthropicType: "authentication_error",
      retryAfter: false,
    },
    refused: async (d) => {
      const { id, key } = await setupKey({ ...shape(d), expires_at: new Date(Date.now() + 60_000).toISOString() });
      await runInDurableObject(keyGuard(env, id), (g: KeyGuard) => {
        g.now = () => Date.now() + 60_001;
      });
      return send(d, key);
    },
  },
  model: {
    expect: {
      code: "model_not_allowed",
      limit: "model",
      status: { openai: 403, anthropic: 403 },
      anthropicType: "permission_error",
      retryAfter: false,
    },
    refused: async (d) => send(d, (await setupKey({ ...shape(d), allowed_models: ["o3"] })).key),
  },
  key: {
    expect: {
      code: "invalid_api_key",
      limit: "key",
      status: { openai: 401, anthropic: 401 },
      anthropicType: "authentication_error",
      retryAfter: false,
    },
    refused: async (d) => send(d, "sk-sg-not-a-key"),
  },
};

describe("every refusal names its limit, in both dialects", () => {
  for (const [name, { expect: want, refused }] of Object.entries(CASES)) {
    for (const dialect of ["openai", "anthropic"] as const) {
      it(`${name} (${dialect})`, async () => {
        const res = await refused(dialect);
        const body = await json(res);
        expect(res.status, JSON.stringify(body)).toBe(want.status[dialect]);
        expect(res.headers.get("x-spendgate-limit")).toBe(want.limit);
        expect(body.error.code).toBe(want.code);
        if (dialect === "anthropic") expect(body.error.type).toBe(want.anthropicType);
        expect(res.headers.has("retry-after")).toBe(want.retryAfter);
      });
    }
  }

  it("a request that passes carries no limit header", async () => {
    const { key } = await setupKey();
    const res = await chat(key);
    expect(res.status).toBe(200);
    expect(res.headers.has("x-spendgate-limit")).toBe(false);
    // …and management errors do not name a gateway limit either.
    const mgmtError = await call("GET", "/v1/spend_keys", { headers: { authorization: "Bearer nope" } });
    expect(mgmtError.status).toBe(401);
    expect(mgmtError.headers.has("x-spendgate-limit")).toBe(false);
  });
});
