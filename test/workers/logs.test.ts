import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { stepRetention } from "../../src/bookkeeping/retention.ts";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { issueKey } from "../../src/lib/keys.ts";
import { log } from "../../src/lib/log.ts";
import { TEST_PROVIDER_KEYS } from "../provider-keys.ts";
import {
  booked,
  call,
  callWith,
  chat,
  faultyD1,
  flakyGuards,
  json,
  messages,
  mgmt,
  settled,
  setupKey,
  withD1,
} from "./helpers.ts";

/**
 * The operator's log (src/lib/log.ts, docs/deploy.md "Logs"): each refusal and each failure writes exactly one
 * JSON line with its fields, and no line carries a secret, a prompt or a completion.
 */

/** In every prompt sent here: no line may carry it. */
const PROMPT = "prompt-canary-7731";
/** What the fake provider answers (its fixed reply): no line may carry it either. */
const COMPLETION = "Spendgate fake provider says hello and meters every token it streams back to you today";

interface Line {
  method: "log" | "info" | "warn" | "error" | "debug";
  text: string;
}
let lines: Line[] = [];
const all: Line[] = [];
/** Every secret the tests handed out: no line of the file may contain one. */
const secrets = new Set<string>([...Object.values(TEST_PROVIDER_KEYS), "test-admin-token"]);

beforeEach(() => {
  lines = [];
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      const line = { method, text: args.map(String).join(" ") };
      lines.push(line);
      all.push(line);
    });
  }
});

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
  vi.restoreAllMocks();
});

afterAll(() => {
  const text = all.map((l) => l.text).join("\n");
  expect(all.length).toBeGreaterThan(20);
  for (const secret of [...secrets, PROMPT, COMPLETION, "fake provider says hello"]) {
    expect(text, "a line carries a secret, the prompt or the completion").not.toContain(secret);
  }
});

/** The lines written since `from` (an index into `lines`), parsed: each must be one JSON object. */
function parsed(from = 0): Record<string, any>[] {
  return lines.slice(from).map((l) => {
    const line = JSON.parse(l.text) as Record<string, any>;
    // The console method matches the level, so Workers Logs files the line under it.
    expect(l.method).toBe({ info: "log", warn: "warn", error: "error" }[line.level as string]);
    return line;
  });
}

const prompt = (extra = "") => [{ role: "user", content: `${PROMPT} ${extra}`.trim() }];

/** A wallet and a spend key, their secrets remembered for the file's final check. */
async function keyFor(body: Record<string, unknown> = {}) {
  const k = await setupKey(body);
  secrets.add(k.key);
  secrets.add(k.wallet.key);
  return k;
}

const requestId = (res: Response) => res.headers.get("x-request-id") ?? res.headers.get("request-id");

/**
 * Sends one request and answers its one line: exactly one is written while it is answered (settles and alarms
 * included), and it is the request's own.
 */
async function oneLine(send: () => Promise<Response>, status: number): Promise<Record<string, any>> {
  const from = lines.length;
  const res = await send();
  expect(res.status).toBe(status);
  await res.arrayBuffer();
  await new Promise((r) => setTimeout(r, 50));
  const mine = parsed(from);
  expect(mine, JSON.stringify(mine)).toHaveLength(1);
  expect(mine[0]!.request_id).toBe(requestId(res));
  return mine[0]!;
}

const chatPrompt = (key: string, body: Record<string, unknown> = {}) => chat(key, { messages: prompt(), ...body });
const post = (key: string, body: unknown) => ({
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: JSON.stringify(body),
});
const CHAT = "/v1/chat/completions";

describe("a refusal: one request.refused line naming the limit", () => {
  it("no key, a malformed key, a key no one issued", async () => {
    const none = await oneLine(() => chatPrompt("", { model: "gpt-4o-mini" }), 401);
    expect(none).toEqual({
      level: "info",
      msg: "request.refused",
      request_id: expect.stringMatching(/^req_/),
      route: CHAT,
      status: 401,
      code: "invalid_api_key",
      limit: "key",
    });
    const garbage = await oneLine(() => chatPrompt("sk-sg-garbage"), 401);
    expect(garbage).toMatchObject({ msg: "request.refused", limit: "key", status: 401 });
    expect(garbage).not.toHaveProperty("spend_key_id");
    const forged = issueKey("spend");
    secrets.add(forged.key);
    const unknown = await oneLine(() => chatPrompt(forged.key), 401);
    expect(unknown).toMatchObject({ limit: "key", spend_key_id: forged.id, model: "gpt-4o-mini", route: CHAT });
    expect(unknown).not.toHaveProperty("wallet_id");
  });

  it("revoked, paused, expired", async () => {
    const revoked = await keyFor();
    await json(await mgmt(revoked.wallet.key, "DELETE", `/spend_keys/${revoked.id}`), 200);
    expect(await oneLine(() => chatPrompt(revoked.key), 401)).toEqual({
      level: "info",
      msg: "request.refused",
      request_id: expect.stringMatching(/^req_/),
      route: CHAT,
      spend_key_id: revoked.id,
      wallet_id: revoked.wallet.walletId,
      model: "gpt-4o-mini",
      provider: "openai",
      status: 401,
      code: "key_revoked",
      limit: "revoked",
    });

    const paused = await keyFor({ status: "paused" });
    expect(await oneLine(() => chatPrompt(paused.key), 403)).toMatchObject({
      spend_key_id: paused.id,
      wallet_id: paused.wallet.walletId,
      code: "key_paused",
      limit: "paused",
    });

    const expiring = await keyFor({ expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    await runInDurableObject(keyGuard(env, expiring.id), (guard: KeyGuard) => {
      guard.now = () => Date.now() + 3_600_001;
    });
    expect(await oneLine(() => chatPrompt(expiring.key), 401)).toMatchObject({
      spend_key_id: expiring.id,
      wallet_id: expiring.wallet.walletId,
      limit: "expiry",
    });
  });

  it("model, provider, shape and catalog scopes", async () => {
    const scoped = await keyFor({ allowed_models: ["gpt-4o-mini"] });
    expect(await oneLine(() => chatPrompt(scoped.key, { model: "gpt-4o" }), 403)).toMatchObject({
      spend_key_id: scoped.id,
      wallet_id: scoped.wallet.walletId,
      model: "gpt-4o",
      provider: "openai",
      code: "model_not_allowed",
      limit: "model",
    });
    const byProvider = await keyFor({ allowed_providers: ["anthropic"] });
    expect(await oneLine(() => chatPrompt(byProvider.key), 403)).toMatchObject({ limit: "provider" });
    const anthropicRoute = () => messages(scoped.key, { messages: prompt() });
    expect(await oneLine(anthropicRoute, 403)).toMatchObject({ route: "/v1/messages", limit: "shape" });
    expect(await oneLine(() => chatPrompt(byProvider.key, { model: "gpt-99-ultra" }), 404)).toMatchObject({
      model: "gpt-99-ultra",
      code: "model_not_found",
      limit: "catalog",
    });
  });

  it("rate, request limit, spend limit (both dialects)", async () => {
    const rate = await keyFor({ rate_limit: { rpm: 60, burst: 1 } });
    expect((await chatPrompt(rate.key)).status).toBe(200);
    await settled(rate.id);
    expect(await oneLine(() => chatPrompt(rate.key), 429)).toMatchObject({
      spend_key_id: rate.id,
      code: "rate_limit_exceeded",
      limit: "rate",
    });

    const requests = await keyFor({ request_limit: { count: 1, cycle: "daily" } });
    expect((await chatPrompt(requests.key)).status).toBe(200);
    await settled(requests.id);
    expect(await oneLine(() => chatPrompt(requests.key), 429)).toMatchObject({ limit: "requests" });

    const spend = await keyFor({ spend_limit: { amount: "0.005", cycle: "monthly" }, clamp_output: false });
    expect(await oneLine(() => chatPrompt(spend.key), 429)).toMatchObject({
      status: 429,
      code: "spend_limit_exceeded",
      limit: "spend",
    });
    const anthropic = await keyFor({ request_shape: "anthropic", spend_limit: { amount: "0.0001", cycle: "total" } });
    expect(await oneLine(() => messages(anthropic.key, { messages: prompt() }), 402)).toMatchObject({
      route: "/v1/messages",
      model: "claude-sonnet-4-20250514",
      provider: "anthropic",
      status: 402,
      limit: "spend",
    });
  });

  it("too many in flight", async () => {
    const { key, id } = await keyFor();
    const slow = post(key, { model: "gpt-4o-mini", max_tokens: 5, messages: prompt("[[fault:slow:400]]") });
    const from = lines.length;
    const results = await Promise.all([0, 1].map(() => callWith({ MAX_INFLIGHT_PER_KEY: "1" }, "POST", CHAT, slow)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 429]);
    await settled(id);
    const refused = results.find((r) => r.status === 429)!;
    const mine = parsed(from);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      msg: "request.refused",
      request_id: requestId(refused),
      spend_key_id: id,
      code: "too_many_concurrent_requests",
      limit: "concurrency",
    });
  });

  it("a malformed body, an oversized one", async () => {
    const { key } = await keyFor();
    const bad = () => call("POST", CHAT, { headers: { authorization: `Bearer ${key}` }, body: `{"x":"${PROMPT}"` });
    expect(await oneLine(bad, 400)).toMatchObject({ code: "invalid_request", limit: "body" });
    const big = JSON.stringify({ model: "gpt-4o-mini", messages: prompt("x".repeat(5000)) });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const large = () => callWith({ MAX_BODY_BYTES: "1000" }, "POST", CHAT, { headers, body: big });
    expect(await oneLine(large, 413)).toMatchObject({ route: CHAT, code: "request_too_large", limit: "size" });
  });

  it("a successful request writes no line at all", async () => {
    const { key, id } = await keyFor();
    const from = lines.length;
    const res = await chatPrompt(key);
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { choices: { message: { content: string } }[] };
    // The completion the provider answered: the file's final check looks for it in every line.
    expect(COMPLETION).toContain(answer.choices[0]!.message.content);
    await booked(id);
    expect(parsed(from)).toEqual([]);
  });
});

describe("a failure: one line with what failed", () => {
  it("upstream unreachable: upstream.error with the reason, and no request.refused", async () => {
    const { key, id, wallet } = await keyFor();
    // In this pool every outbound fetch reaches the fake provider, so the closed port refuses as a closed port
    // does: the fetch itself fails (the conformance project's gateway-faults test meets a real closed port).
    const real = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) =>
      String(input instanceof Request ? input.url : input).startsWith("http://127.0.0.1:9/")
        ? Promise.reject(new TypeError("connect ECONNREFUSED 127.0.0.1:9"))
        : real(input, init),
    );
    const body = post(key, { model: "gpt-4o-mini", messages: prompt() });
    const line = await oneLine(() => callWith({ OPENAI_BASE_URL: "http://127.0.0.1:9/v1" }, "POST", CHAT, body), 502);
    expect(line).toEqual({
      level: "error",
      msg: "upstream.error",
      request_id: expect.stringMatching(/^req_/),
      route: CHAT,
      spend_key_id: id,
      wallet_id: wallet.walletId,
      model: "gpt-4o-mini",
      provider: "openai",
      status: 502,
      code: "upstream_unreachable",
      error: expect.stringContaining("http://127.0.0.1:9 unreachable"),
    });
  });

  it("upstream timeout, a relayed provider error, a stream cut", async () => {
    const { key, id } = await keyFor();
    const hang = post(key, { model: "gpt-4o-mini", messages: prompt("[[fault:hang]]") });
    expect(await oneLine(() => callWith({ UPSTREAM_TIMEOUT_MS: "200" }, "POST", CHAT, hang), 504)).toMatchObject({
      level: "error",
      msg: "upstream.error",
      code: "upstream_timeout",
      spend_key_id: id,
    });
    expect(await oneLine(() => chatPrompt(key, { messages: prompt("[[fault:500]]") }), 500)).toMatchObject({
      level: "error",
      msg: "upstream.error",
      status: 500,
      error: "the provider answered HTTP 500",
    });
    expect(await oneLine(() => chatPrompt(key, { messages: prompt("[[fault:429]]") }), 429)).toMatchObject({
      level: "warn",
      msg: "upstream.error",
      status: 429,
    });
    const cut = await oneLine(() => chatPrompt(key, { stream: true, messages: prompt("[[fault:truncate]]") }), 200);
    expect(cut).toMatchObject({ msg: "upstream.error", error: "the stream ended before the provider's usage" });
    await settled(id);
  });

  it("a settle lost twice: settle.retry then settle.lost, each once", async () => {
    const { key, id, wallet } = await keyFor();
    const from = lines.length;
    const res = await callWith(
      { KEY_GUARD: flakyGuards(2) as never } as never,
      "POST",
      CHAT,
      post(key, { model: "gpt-4o-mini", max_tokens: 12, messages: prompt() }),
    );
    expect(res.status).toBe(200);
    const mine = parsed(from);
    const common = {
      request_id: requestId(res),
      route: CHAT,
      spend_key_id: id,
      wallet_id: wallet.walletId,
      model: "gpt-4o-mini",
      provider: "openai",
      error: "settle lost",
    };
    expect(mine).toEqual([
      { level: "warn", msg: "settle.retry", ...common },
      { level: "error", msg: "settle.lost", ...common },
    ]);
    // One failure only: retried, no settle.lost.
    const again = lines.length;
    const once = await callWith(
      { KEY_GUARD: flakyGuards(1) as never } as never,
      "POST",
      CHAT,
      post(key, { model: "gpt-4o-mini", max_tokens: 12, messages: prompt() }),
    );
    expect(once.status).toBe(200);
    expect(parsed(again).map((l) => l.msg)).toEqual(["settle.retry"]);
  });

  it("a bookkeeping hand-over the queue refuses: books.handover_failed", async () => {
    const { key, id, wallet } = await keyFor();
    expect((await chatPrompt(key)).status).toBe(200);
    await settled(id);
    const stub = keyGuard(env, id);
    const from = lines.length;
    await runInDurableObject(stub, (guard: KeyGuard) => {
      const own = guard as unknown as { env: { LEDGER: unknown } };
      const real = own.env.LEDGER;
      own.env.LEDGER = { send: () => Promise.reject(new Error("queue refused")) };
      (guard as unknown as { restoreLedger: () => void }).restoreLedger = () => {
        own.env.LEDGER = real;
      };
    });
    await runDurableObjectAlarm(stub);
    await runInDurableObject(stub, (guard: KeyGuard) =>
      (guard as unknown as { restoreLedger: () => void }).restoreLedger(),
    );
    expect(parsed(from)).toEqual([
      {
        level: "warn",
        msg: "books.handover_failed",
        spend_key_id: id,
        wallet_id: wallet.walletId,
        rows: 1,
        events: expect.any(Number),
        error: "queue refused",
      },
    ]);
    await booked(id);
  });

  it("a bookkeeping write D1 refuses: books.write_failed, once per batch", async () => {
    const { key, id } = await keyFor();
    expect((await chatPrompt(key)).status).toBe(200);
    await settled(id);
    const faulty = faultyD1(env.DB);
    faulty.state.mode = "writes";
    restore = withD1(faulty.db);
    const from = lines.length;
    await runDurableObjectAlarm(keyGuard(env, id));
    const deadline = Date.now() + 10_000;
    while (!parsed(from).some((l) => l.msg === "books.write_failed") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    restore();
    restore = undefined;
    // One line for the batch, which may hold other keys' messages too (their guards' alarms run meanwhile).
    const mine = parsed(from);
    expect(mine).toEqual([
      {
        level: "error",
        msg: "books.write_failed",
        messages: expect.any(Number),
        rows: expect.any(Number),
        spend_key_ids: expect.arrayContaining([id]),
        error: expect.stringContaining("D1_ERROR: injected"),
      },
    ]);
    expect(mine[0]!.messages).toBe(mine[0]!.spend_key_ids.length);
    expect(mine[0]!.rows).toBeGreaterThanOrEqual(1);
    // The queue retries the batch in 10 s; the guard sends it again sooner once its clock passes the resend delay.
    await runInDurableObject(keyGuard(env, id), (guard: KeyGuard) => {
      const base = guard.now();
      guard.now = () => base + 31_000 + (Date.now() - base);
    });
    await booked(id);
  });

  it("a webhook receiver that always fails: one webhook.delivery_failed per attempt, the last one dead", async () => {
    const { wallet, id } = await keyFor();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", {
        name: "down",
        url: `https://hooks.example.test/x-${id}?fail=1000`,
      }),
      201,
    );
    secrets.add(hook.webhook_secret);
    const from = lines.length;
    await json(await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`), 200);
    const deadline = Date.now() + 20_000;
    const failures = () => parsed(from).filter((l) => l.msg === "webhook.delivery_failed");
    while (!failures().some((l) => l.dead) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const mine = parsed(from);
    expect(
      mine.every((l) => l.msg === "webhook.delivery_failed"),
      JSON.stringify(mine),
    ).toBe(true);
    expect(mine.map((l) => l.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const deliveryId = mine[0]!.delivery_id as string;
    for (const line of mine) {
      expect(line).toMatchObject({
        delivery_id: deliveryId,
        webhook_id: hook.webhook_id,
        wallet_id: wallet.walletId,
        event_id: expect.stringContaining(id.slice(4)),
        event_type: "spend_key.revoked",
        status: 500,
        error: "HTTP 500",
      });
      expect(JSON.stringify(line)).not.toContain("hooks.example.test");
    }
    expect(mine.slice(0, 7).every((l) => l.level === "warn" && l.dead === false && l.retry_in_s === 0)).toBe(true);
    expect(mine[7]).toMatchObject({ level: "error", dead: true });
    expect(mine[7]).not.toHaveProperty("retry_in_s");
  }, 30_000);

  it("a retention step D1 refuses: retention.failed", async () => {
    const faulty = faultyD1(env.DB);
    faulty.state.mode = "all";
    const from = lines.length;
    await stepRetention({ ...env, DB: faulty.db });
    expect(parsed(from)).toEqual([
      { level: "error", msg: "retention.failed", archived: 0, parts: 0, error: "D1_ERROR: injected" },
    ]);
  });

  it("settings that break a rule: config.invalid on every request, and nothing else", async () => {
    const { key } = await keyFor();
    const send = () =>
      callWith({ HOLD_TTL_MS: "1000", UPSTREAM_TIMEOUT_MS: "1000" }, "POST", CHAT, post(key, { messages: prompt() }));
    expect(await oneLine(send, 500)).toEqual({
      level: "error",
      msg: "config.invalid",
      request_id: expect.stringMatching(/^req_/),
      route: CHAT,
      status: 500,
      error: expect.stringContaining("HOLD_TTL_MS (1000) must exceed"),
    });
  });

  it("a spend or wallet key in an error text is cut out of the line", async () => {
    const spend = issueKey("spend");
    const wallet = issueKey("wallet");
    const from = lines.length;
    log("error", "internal.error", { error: `failed with ${spend.key} and Bearer ${wallet.key}` });
    const [line] = parsed(from);
    expect(line!.error).toBe(
      `failed with sk-sg-${spend.id.slice(4)}_[redacted] and Bearer sgw_${wallet.id.slice(4)}_[redacted]`,
    );
    expect(JSON.stringify(line)).not.toContain(spend.key);
  });
});
