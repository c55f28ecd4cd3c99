import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { RecordedRequest } from "../../scripts/fake-provider/handler.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import type { AdmitInput, GuardState } from "../../src/guard/types.ts";

/** Calls the Worker exactly as a client over HTTP would (its default export's fetch). */
export function call(
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  let body: BodyInit | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  // Redirects are answers to check, not to follow (the dashboard answers its forms with 303s).
  return exports.default.fetch(
    new Request(`http://gateway.test${path}`, { method, headers, body, redirect: "manual" }),
  );
}

export const ADMIN = { authorization: "Bearer test-admin-token" };

export async function json<T = any>(res: Response, status?: number): Promise<T> {
  const text = await res.text();
  if (status !== undefined) expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

export async function createWallet(name = "test wallet") {
  const res = await call("POST", "/admin/wallets", { headers: ADMIN, body: { name } });
  const body = await json(res, 201);
  return { walletId: body.wallet_id as string, key: body.secret_key as string, body };
}

export function mgmt(walletKey: string, method: string, path: string, body?: unknown) {
  return call(method, `/v1${path}`, { headers: { authorization: `Bearer ${walletKey}` }, body });
}

export async function createSpendKey(walletKey: string, body: Record<string, unknown> = {}) {
  const res = await mgmt(walletKey, "POST", "/spend_keys", { name: "agent", ...body });
  return json(res, 201);
}

/** A wallet and one spend key in it. */
export async function setupKey(body: Record<string, unknown> = {}) {
  const wallet = await createWallet();
  const created = await createSpendKey(wallet.key, body);
  return { wallet, key: created.key as string, id: created.spend_key_id as string, created };
}

export function chat(key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return call("POST", "/v1/chat/completions", {
    headers: { authorization: `Bearer ${key}`, ...headers },
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello" }], ...body },
  });
}

export function messages(key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return call("POST", "/v1/messages", {
    headers: { "x-api-key": key, "anthropic-version": "2023-06-01", ...headers },
    body: {
      model: "claude-sonnet-4-20250514",
      max_tokens: 100,
      messages: [{ role: "user", content: "Say hello" }],
      ...body,
    },
  });
}

/** What the fake provider recorded of one request it received. */
export type FakeRecord = RecordedRequest & { body: any };

/** What the fake provider received (reachable through the same outbound service as the Worker's fetches). */
export async function fakeRequests(): Promise<FakeRecord[]> {
  const res = await fetch("http://fake-provider.test/__fake/requests");
  return ((await res.json()) as { data: FakeRecord[] }).data;
}

export async function lastFakeRequest(): Promise<FakeRecord> {
  const all = await fakeRequests();
  return all[all.length - 1]!;
}

/** One POST the fake provider's webhook receiver got (`https://hooks.example.test/…`) and what it answered. */
export interface Hook {
  url: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

/** Every webhook delivery the fake receiver got, oldest first. */
export async function hooks(): Promise<Hook[]> {
  return ((await (await fetch("http://fake-provider.test/__fake/hooks")).json()) as { data: Hook[] }).data;
}

export async function d1All(sql: string): Promise<Record<string, unknown>[]> {
  return (await env.DB.prepare(sql).all()).results as Record<string, unknown>[];
}

/**
 * D1 and KEY_GUARD bindings that throw on any use, for `callWith`: a request served with them proves it made no D1
 * query and no Durable Object call.
 */
const noIo = new Proxy(
  {},
  {
    get: () => {
      throw new Error("I/O attempted");
    },
  },
);
export const NO_STORAGE = { DB: noIo, KEY_GUARD: noIo } as never;

/** The KEY_GUARD binding, with `settle` failing the first `failures` times (a settle lost in transit). */
export function flakyGuards(failures: number) {
  let left = failures;
  return {
    getByName(name: string) {
      const stub = env.KEY_GUARD.getByName(name) as unknown as Record<string, unknown>;
      return new Proxy(stub, {
        get(target, prop) {
          if (prop === "settle" && left > 0) {
            left--;
            return () => Promise.reject(new Error("settle lost"));
          }
          // RPC stubs answer every property with a remote method: call through the stub itself.
          return (...args: unknown[]) => (target[prop as string] as (...a: unknown[]) => unknown)(...args);
        },
      });
    },
  };
}

/** Calls the Worker with some bindings changed (limits, timeouts, base URLs) for one request. */
export async function callWith(
  overrides: Record<string, string | undefined>,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Response> {
  const { app } = await import("../../src/app.ts");
  const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`http://gateway.test${path}`, {
      method,
      headers: init.headers,
      body: init.body,
      duplex: "half",
    } as RequestInit),
    { ...env, ...overrides },
    ctx,
  );
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

/** Calls the fake provider directly (the baseline a gateway response is compared with). */
export function direct(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** gpt-4o-mini's token prices, in nano-dollars per 1M tokens. */
export const MINI_RATES = { input_mtok: 150_000_000, output_mtok: 600_000_000, cache_read_mtok: 75_000_000 };

/**
 * An admission target whose hold is exactly `holdNanos` (priced through a per-picture unit of 1 nano-dollar that
 * the settles' token usage never reports), with `rates` pricing the tokens.
 */
export function holdTarget(holdNanos: number, rates: Record<string, number> = MINI_RATES) {
  return {
    provider: "openai",
    pricedModel: "gpt-4o-mini",
    prices: { rates: { ...rates, images_each: 1 } },
    worst: {
      inputTokens: 0,
      outputTokens: 0,
      choices: 1,
      extraOutputTokens: 0,
      counts: { images: holdNanos },
      serviceTier: null,
    },
    clampable: false,
  };
}

/**
 * What the Worker would ask a KeyGuard to admit for a plain gpt-4o-mini chat request holding exactly `holdNanos`
 * (holdTarget), for tests that call the guard directly; `over` changes any field.
 */
export function admitInput(secretHash: string, holdNanos: number, over: Partial<AdmitInput> = {}): AdmitInput {
  return {
    requestId: "req_1",
    endpoint: "/v1/chat/completions",
    stream: false,
    metadata: {},
    secretHash,
    routeShape: "openai",
    model: "gpt-4o-mini",
    target: holdTarget(holdNanos),
    metered: true,
    maxInflight: 10,
    holdTtlMs: 600_000,
    ...over,
  };
}

/**
 * Waits until the key's KeyGuard holds no open hold, and answers its state then: a JSON answer is returned
 * before its settle lands (the settle follows on the next timer turn), so a test that reads the ledger or
 * counters right after an answer waits for it, as a client reading `GET /v1/key` a moment later would.
 */
export async function settled(spendKeyId: string, timeoutMs = 5_000): Promise<GuardState> {
  const stub = keyGuard(env, spendKeyId);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await stub.inspect();
    if (state.held.count === 0) return state;
    if (Date.now() > until) throw new Error(`holds of ${spendKeyId} still open after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Waits until everything the key's KeyGuard owes D1 is there: its holds settled, its alarm run (the hand-over to
 * the bookkeeping queue), and the consumer's receipt back — as a client reading a list a few seconds later would.
 */
export async function booked(spendKeyId: string, timeoutMs = 10_000): Promise<GuardState> {
  const { runDurableObjectAlarm } = await import("cloudflare:test");
  await settled(spendKeyId, timeoutMs);
  const stub = keyGuard(env, spendKeyId);
  const until = Date.now() + timeoutMs;
  await runDurableObjectAlarm(stub);
  for (;;) {
    const state = await stub.inspect();
    if (state.unconfirmed === 0) return state;
    if (Date.now() > until) throw new Error(`${spendKeyId} still owes D1 ${state.unconfirmed} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const WRITES = /^\s*(insert|update|delete|replace)\b/i;

/**
 * D1 as seen during an outage, to install with `withD1`: "writes" refuses every write — a statement that writes,
 * or a batch holding one — as D1 does while another process holds its write lock; "all" refuses every call.
 * `writeTransactions` counts the write transactions that got through (a batch is one).
 */
export function faultyD1(real: D1Database) {
  const state = {
    mode: "ok" as "ok" | "writes" | "all",
    writeTransactions: 0,
    /** refuse just the statements this picks (a crash at one step) */
    refuseWhen: null as ((sql: string) => boolean) | null,
  };
  const refuse = (sql: string) => {
    const refused = state.mode === "all" || (state.mode === "writes" && WRITES.test(sql)) || state.refuseWhen?.(sql);
    if (refused) throw new Error("D1_ERROR: injected");
  };
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const counted =
      <T>(run: () => Promise<T>) =>
      async () => {
        refuse(sql);
        const out = await run();
        if (WRITES.test(sql)) state.writeTransactions++;
        return out;
      };
    return new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args), sql);
        if (prop === "__sql") return sql;
        if (prop === "__real") return target;
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (["run", "all", "first", "raw"].includes(String(prop))) {
          return (...args: unknown[]) => counted(() => value.apply(target, args))();
        }
        return value.bind(target);
      },
    });
  };
  const db = new Proxy(real, {
    get(target, prop) {
      if (state.mode === "all") throw new Error("D1_ERROR: injected");
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === "batch") {
        return async (stmts: D1PreparedStatement[]) => {
          const sqls = stmts.map((s) => (s as unknown as { __sql: string }).__sql);
          for (const sql of sqls) refuse(sql);
          const out = await target.batch(stmts.map((s) => (s as unknown as { __real: D1PreparedStatement }).__real));
          if (sqls.some((sql) => WRITES.test(sql))) state.writeTransactions++;
          return out;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, state };
}

/**
 * Serves every handler of this isolate — the Worker's routes, the queue consumers, the KeyGuards — with `db` as
 * `env.DB` until the returned function restores the real one (the runtime hands them all this one `env`).
 */
export function withD1(db: D1Database): () => void {
  const real = env.DB;
  (env as { DB: D1Database }).DB = db;
  return () => {
    (env as { DB: D1Database }).DB = real;
  };
}
