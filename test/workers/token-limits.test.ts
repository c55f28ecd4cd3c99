import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../../src/keys/record.ts";
import {
  admitInput,
  booked,
  call,
  chat,
  d1All,
  holdTarget,
  json,
  lastFakeRequest,
  messages,
  mgmt,
  settled,
  setupKey,
} from "./helpers.ts";

/** The key's own view, as its holder reads it. */
async function keyView(key: string) {
  return json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } }), 200);
}

function responses(key: string, body: Record<string, unknown>) {
  return call("POST", "/v1/responses", {
    headers: { authorization: `Bearer ${key}` },
    body: { model: "gpt-4o-mini", ...body },
  });
}

/** Text that makes the fake provider report exactly this usage object (its own shape). */
const reporting = (usage: Record<string, unknown>) => `Hello [[usage:${JSON.stringify(usage)}]]`;

/** The tokens the guard's ledger rows counted: input (cache included) + output, as the provider reported them. */
const ledgerTokens = (rows: { usage?: Record<string, number> | null }[]) =>
  rows.reduce((n, r) => n + (r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0), 0);

describe("token limits: settings", () => {
  it("are null when unset, set on create, changed and cleared on update, and shown in every view", async () => {
    const { wallet, id, key, created } = await setupKey();
    expect(created).toMatchObject({
      token_limit: null,
      tokens_per_minute: null,
      current_tokens: 0,
      total_tokens: 0,
      tokens_resets_at: null,
    });
    const set = await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, {
      token_limit: { count: 50_000, cycle: "daily" },
      tokens_per_minute: 9_000,
    });
    const view = await json(set, 200);
    expect(view).toMatchObject({ token_limit: { count: 50_000, cycle: "daily" }, tokens_per_minute: 9_000 });
    expect(Date.parse(view.tokens_resets_at)).toBeGreaterThan(Date.now());
    const live = await keyView(key);
    expect(live.remaining).toMatchObject({ tokens: 50_000, tokens_this_minute: 9_000 });
    const list = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    expect(list.data[0]).toMatchObject({ token_limit: { count: 50_000, cycle: "daily" }, tokens_per_minute: 9_000 });
    const cleared = await json(
      await mgmt(wallet.key, "PUT", `/spend_keys/${id}`, { token_limit: null, tokens_per_minute: null }),
      200,
    );
    expect(cleared).toMatchObject({ token_limit: null, tokens_per_minute: null, tokens_resets_at: null });
    expect((await keyView(key)).remaining).toMatchObject({ tokens: null, tokens_this_minute: null });
  });

  it("refuses negative, zero, fractional and malformed values: a 400 naming the field, nothing changed", async () => {
    const { wallet, id } = await setupKey({ token_limit: { count: 1_000, cycle: "weekly" }, tokens_per_minute: 100 });
    const bad: [Record<string, unknown>, string][] = [
      [{ token_limit: { count: -5, cycle: "daily" } }, "token_limit"],
      [{ token_limit: { count: 0, cycle: "daily" } }, "token_limit"],
      [{ token_limit: { count: 10.5, cycle: "daily" } }, "token_limit"],
      [{ token_limit: { count: "100", cycle: "daily" } }, "token_limit"],
      [{ token_limit: { count: 100, cycle: "hourly" } }, "token_limit"],
      [{ token_limit: { count: 100 } }, "token_limit"],
      [{ tokens_per_minute: -1 }, "tokens_per_minute"],
      [{ tokens_per_minute: 2.5 }, "tokens_per_minute"],
      [{ tokens_per_minute: 0 }, "tokens_per_minute"],
    ];
    for (const [body, field] of bad) {
      for (const method of ["PATCH", "PUT"]) {
        const res = await mgmt(wallet.key, method, `/spend_keys/${id}`, body);
        const err = await json(res, 400);
        expect(err.error.code).toBe("invalid_request");
        expect(`${err.error.param} ${err.error.message}`).toContain(field);
      }
      const created = await mgmt(wallet.key, "POST", "/spend_keys", { name: "bad", ...body });
      expect(created.status).toBe(400);
    }
    const after = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(after).toMatchObject({ token_limit: { count: 1_000, cycle: "weekly" }, tokens_per_minute: 100 });
    const keys = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    expect(keys.data).toHaveLength(1);
  });
});

describe("token limits: what counts", () => {
  // Cached input is part of the input and reasoning part of the output, each counted once: 100 + 40.
  const chatUsage = {
    prompt_tokens: 100,
    completion_tokens: 40,
    prompt_tokens_details: { cached_tokens: 60 },
    completion_tokens_details: { reasoning_tokens: 30 },
  };
  const responsesUsage = {
    input_tokens: 100,
    input_tokens_details: { cached_tokens: 60 },
    output_tokens: 40,
    output_tokens_details: { reasoning_tokens: 30 },
  };
  // Anthropic reports uncached input apart from cache reads and writes: 10 + 60 + 30 input, 40 output.
  const anthropicUsage = {
    input_tokens: 10,
    cache_read_input_tokens: 60,
    cache_creation_input_tokens: 30,
    output_tokens: 40,
  };

  it("OpenAI chat and Responses, JSON and streams: input with cached reads, output with reasoning", async () => {
    const { key, id } = await setupKey({ token_limit: { count: 100_000, cycle: "monthly" } });
    const chatText = reporting(chatUsage);
    const asked = { messages: [{ role: "user", content: chatText }], max_tokens: 200 };
    await json(await chat(key, asked), 200);
    await (await chat(key, { ...asked, stream: true })).text();
    const input = reporting(responsesUsage);
    await json(await responses(key, { input, max_output_tokens: 200 }), 200);
    await (await responses(key, { input, max_output_tokens: 200, stream: true })).text();
    const state = await settled(id);
    expect(state.ledger).toHaveLength(4);
    for (const row of state.ledger) {
      expect(row.usageKnown).toBe(true);
      expect(row.cacheReadTokens).toBe(60);
      expect(row.reasoningTokens).toBe(30);
    }
    expect(state.counters.totalTokens).toBe(4 * 140);
    expect(await keyView(key)).toMatchObject({
      current_tokens: 560,
      total_tokens: 560,
      remaining: { tokens: 100_000 - 560 },
    });
  });

  it("Anthropic Messages, JSON and streams: uncached input, cache reads and cache writes, and output", async () => {
    const { key, id } = await setupKey({ request_shape: "anthropic", token_limit: { count: 100_000, cycle: "total" } });
    const body = { messages: [{ role: "user", content: reporting(anthropicUsage) }], max_tokens: 200 };
    await json(await messages(key, body), 200);
    await (await messages(key, { ...body, stream: true })).text();
    const state = await settled(id);
    expect(state.ledger.map((r) => [r.cacheReadTokens, r.cacheWriteTokens])).toEqual([
      [60, 30],
      [60, 30],
    ]);
    expect(state.counters.totalTokens).toBe(2 * 140);
    expect(await keyView(key)).toMatchObject({ current_tokens: 280, remaining: { tokens: 100_000 - 280 } });
  });

  it("a cut Anthropic stream counts its reported input and its text at one token per 3 characters", async () => {
    const { key, id } = await setupKey({ request_shape: "anthropic", token_limit: { count: 100_000, cycle: "daily" } });
    const text = `${reporting(anthropicUsage)} [[fault:truncate]] [[fault:words:40]]`;
    const res = await messages(key, { messages: [{ role: "user", content: text }], max_tokens: 200, stream: true });
    const sse = await res.text();
    const delivered = [...sse.matchAll(/"text_delta","text":"([^"]*)"/g)].reduce((n, m) => n + m[1]!.length, 0);
    expect(delivered).toBeGreaterThan(0);
    const state = await settled(id);
    expect(state.ledger[0]!.usageKnown).toBe(false);
    expect(state.counters.totalTokens).toBe(100 + Math.ceil(delivered / 3));
  });

  it("pictures priced each count no tokens; a lapsed hold counts its whole token hold, as the spend does", async () => {
    const { key, id } = await setupKey({ token_limit: { count: 100_000, cycle: "daily" } });
    const picture = await call("POST", "/v1/images/generations", {
      headers: { authorization: `Bearer ${key}` },
      body: { model: "dall-e-3", prompt: "a lighthouse", size: "1024x1024" },
    });
    expect(picture.status).toBe(200);
    await picture.text();
    expect((await settled(id)).counters.totalTokens).toBe(0);

    const stub = keyGuard(env, id);
    const base = Date.now();
    await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => base));
    const target = holdTarget(1_000);
    target.worst = { ...target.worst, inputTokens: 700, outputTokens: 100, choices: 2, extraOutputTokens: 50 };
    const secretHash = (await stub.inspect()).config!.secretHash;
    const input = admitInput(secretHash, 1_000, { requestId: "req_lapsed_tokens", target, holdTtlMs: 60_000 });
    const admitted = await stub.admit(input);
    expect(admitted).toMatchObject({ ok: true, holdTokens: 700 + 100 * 2 + 50 });
    expect((await keyView(key)).remaining.tokens).toBe(100_000 - 950);
    await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => base + 61_000));
    await runDurableObjectAlarm(stub);
    const state = await stub.inspect();
    expect(state.held.count).toBe(0);
    expect(state.counters.totalTokens).toBe(950);
  });
});

describe("token limits: exact under concurrency", () => {
  it("200 concurrent JSON and streamed requests never count past the limit; counters equal the ledger", async () => {
    const limit = 30_000;
    const { key, id, wallet } = await setupKey({ token_limit: { count: limit, cycle: "daily" } });
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        // Half bill their worst case (the whole hold), half a little; JSON and streams, chat and Responses.
        const text = `request ${i} ${i % 2 ? "[[fault:worst]]" : "short"}`;
        const stream = i % 4 >= 2;
        const res =
          i % 3 === 0
            ? await responses(key, { input: text, max_output_tokens: 300, stream })
            : await chat(key, { messages: [{ role: "user", content: text }], max_tokens: 300, stream });
        const body = await res.text();
        return { status: res.status, limit: res.headers.get("x-spendgate-limit"), body };
      }),
    );
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    expect(admitted.length).toBeGreaterThan(20);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.limit).toBe("tokens");
      expect(JSON.parse(r.body).error.code).toBe("token_limit_exceeded");
    }
    const state = await settled(id);
    expect(state.ledger).toHaveLength(admitted.length);
    expect(state.ledger.every((r) => r.usageKnown)).toBe(true);
    // What the provider reported for the admitted requests never passes the limit, and the counters are its sum.
    const counted = ledgerTokens(state.ledger);
    expect(counted).toBeLessThanOrEqual(limit);
    expect(state.counters.currentTokens).toBe(counted);
    expect(state.counters.totalTokens).toBe(counted);
    // The worst-case half billed every token held: the limit was the binding constraint, not a loose bound.
    expect(counted).toBeGreaterThan(limit / 3);

    // D1, through the bookkeeping consumer: the key's counters and the ledger's token sums agree.
    await booked(id);
    const [row] = await d1All(`SELECT current_tokens, total_tokens FROM spend_keys WHERE id = '${id}'`);
    const [sum] = await d1All(
      "SELECT sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens) AS n, count(*) AS rows " +
        `FROM requests WHERE spend_key_id = '${id}'`,
    );
    expect(sum).toEqual({ n: counted, rows: admitted.length });
    expect(row).toEqual({ current_tokens: counted, total_tokens: counted });
    const listed = await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200);
    expect(listed.data[0]).toMatchObject({ current_tokens: counted, total_tokens: counted });
  });

  it("tokens_per_minute: 200 concurrent requests admit no more than the minute allows", async () => {
    const perMinute = 20_000;
    const { key, id } = await setupKey({ tokens_per_minute: perMinute });
    const stub = keyGuard(env, id);
    // One UTC minute for the whole burst: its start plus the real time elapsed, well under a minute.
    const minute = Date.UTC(2031, 4, 6, 9, 30);
    const started = Date.now();
    await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => minute + (Date.now() - started)));
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const text = `request ${i} [[fault:worst]]`;
        const res = await chat(key, {
          messages: [{ role: "user", content: text }],
          max_tokens: 200,
          stream: i % 2 === 1,
        });
        await res.text();
        return { status: res.status, limit: res.headers.get("x-spendgate-limit") };
      }),
    );
    const admitted = results.filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThan(10);
    expect(results.filter((r) => r.status !== 200).every((r) => r.status === 429 && r.limit === "token_rate")).toBe(
      true,
    );
    const state = await settled(id);
    expect(ledgerTokens(state.ledger)).toBeLessThanOrEqual(perMinute);
    expect(state.counters.minuteTokens).toBe(ledgerTokens(state.ledger));
  });
});

describe("token limits: refusals", () => {
  it("token_limit_exceeded, OpenAI dialect: 429 insufficient_quota, limit header, retry at the cycle end", async () => {
    const { key } = await setupKey({ token_limit: { count: 300, cycle: "daily" }, clamp_output: false });
    const res = await chat(key, { max_tokens: 400 });
    const body = await json(res, 429);
    expect(body.error).toMatchObject({ code: "token_limit_exceeded", type: "insufficient_quota" });
    expect(body.error.message).toContain("does not fit the token limit");
    expect(body.details).toMatchObject({ limit: "tokens", count: 300, current: 0, cycle: "daily" });
    expect(res.headers.get("x-spendgate-limit")).toBe("tokens");
    const retry = Number(res.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(86_400);
    expect(Date.parse(body.details.resets_at)).toBe(Date.parse((await keyView(key)).tokens_resets_at));
    expect(await keyView(key)).toMatchObject({ current_tokens: 0, total_requests: 0 });
  });

  it("token_limit_exceeded, Anthropic dialect, once the tokens are used; no retry on a total limit", async () => {
    const { key, id } = await setupKey({ request_shape: "anthropic", token_limit: { count: 1_000, cycle: "total" } });
    const usage = { input_tokens: 900, output_tokens: 100 };
    await json(await messages(key, { messages: [{ role: "user", content: reporting(usage) }] }), 200);
    await settled(id);
    const res = await messages(key);
    const body = await json(res, 429);
    expect(body).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    expect(body.error.message).toBe("Token limit reached: 1000 of 1000 tokens per key lifetime used.");
    expect(body.details).toMatchObject({
      limit: "tokens",
      count: 1_000,
      current: 1_000,
      cycle: "total",
      resets_at: null,
    });
    expect(res.headers.get("x-spendgate-limit")).toBe("tokens");
    expect(res.headers.get("retry-after")).toBeNull();
    expect((await keyView(key)).remaining.tokens).toBe(0);
  });

  it("tokens_per_minute refuses within the minute (both dialects) and admits once the minute has passed", async () => {
    for (const shape of ["openai", "anthropic"] as const) {
      const { key, id } = await setupKey({ request_shape: shape, tokens_per_minute: 1_000 });
      const stub = keyGuard(env, id);
      let now = Date.UTC(2031, 4, 6, 9, 30, 10);
      await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => now));
      const send = (content: string) =>
        shape === "openai"
          ? chat(key, { messages: [{ role: "user", content }], max_tokens: 350 })
          : messages(key, { messages: [{ role: "user", content }], max_tokens: 350 });
      const used =
        shape === "openai" ? { prompt_tokens: 500, completion_tokens: 100 } : { input_tokens: 500, output_tokens: 100 };
      expect((await send(reporting(used))).status).toBe(200);
      await settled(id);
      expect((await keyView(key)).remaining.tokens_this_minute).toBe(400);
      const refused = await send("Say hello");
      const body = await json(refused, 429);
      expect(refused.headers.get("x-spendgate-limit")).toBe("token_rate");
      expect(refused.headers.get("retry-after")).toBe("50");
      expect(body.details).toEqual({
        limit: "token_rate",
        count: 1_000,
        current: 600,
        resets_at: new Date(Date.UTC(2031, 4, 6, 9, 31)).toISOString(),
      });
      if (shape === "openai") expect(body.error).toMatchObject({ code: "token_rate_limit_exceeded", type: "tokens" });
      else expect(body.error.type).toBe("rate_limit_error");
      now += 50_000;
      expect((await send("Say hello")).status).toBe(200);
      await settled(id);
      expect((await keyView(key)).remaining.tokens_this_minute).toBeLessThan(1_000);
    }
  });

  it("a request no minute can hold is refused for good, without a retry-after", async () => {
    const { key } = await setupKey({ tokens_per_minute: 200, clamp_output: false });
    const res = await chat(key, { max_tokens: 500 });
    const body = await json(res, 429);
    expect(body.error.code).toBe("token_rate_limit_exceeded");
    expect(body.error.message).toContain("is more than the key's 200 tokens per minute");
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.headers.get("x-should-retry")).toBe("false");
  });
});

describe("token limits: no safe bound", () => {
  it("a model with no known max output is refused on a token-limited key without an output limit", async () => {
    const put = await call("PUT", "/admin/models/token-house-model", {
      headers: { authorization: "Bearer test-admin-token" },
      body: { provider: "openai", input_price: "1", output_price: "2" },
    });
    expect(put.status).toBe(200);
    for (const settings of [{ token_limit: { count: 1_000_000, cycle: "daily" } }, { tokens_per_minute: 1_000_000 }]) {
      const { key, id } = await setupKey(settings);
      const refused = await chat(key, { model: "token-house-model" });
      const err = await json(refused, 400);
      expect(err.error.code).toBe("invalid_request");
      expect(err.error.message).toContain("This spend key has a token limit: set max_tokens");
      expect((await chat(key, { model: "token-house-model", max_tokens: 500 })).status).toBe(200);
      expect((await settled(id)).ledger).toHaveLength(1);
    }
    const open = await setupKey();
    expect((await chat(open.key, { model: "token-house-model" })).status).toBe(200);
    await call("DELETE", "/admin/models/token-house-model", { headers: { authorization: "Bearer test-admin-token" } });
  });
});

describe("token limits: clamping", () => {
  /** The output limit a key grants a gpt-4o-mini request that sends none (its own max is 16,384). */
  async function granted(settings: Record<string, unknown>) {
    const { key } = await setupKey(settings);
    const res = await chat(key, {});
    expect(res.status).toBe(200);
    await res.text();
    const header = res.headers.get("x-spendgate-output-limit");
    if (header !== null) expect((await lastFakeRequest()).body.max_completion_tokens).toBe(Number(header));
    return header === null ? null : Number(header);
  }

  it("lowers the output to what the tokens afford, and to the smaller of what spend and tokens afford", async () => {
    const byTokens = await granted({ token_limit: { count: 2_500, cycle: "daily" } });
    expect(byTokens).toBeGreaterThanOrEqual(MIN_CLAMPED_OUTPUT_TOKENS);
    expect(byTokens).toBeLessThan(2_500);
    const bySpend = await granted({ spend_limit: { amount: "0.001", cycle: "daily" } });
    expect(bySpend).toBeGreaterThanOrEqual(MIN_CLAMPED_OUTPUT_TOKENS);
    expect(bySpend).toBeLessThan(byTokens!);
    // Both: whichever affords less.
    const tight = { amount: "0.001", cycle: "daily" };
    expect(await granted({ token_limit: { count: 2_500, cycle: "daily" }, spend_limit: tight })).toBe(bySpend);
    const loose = { amount: "1.00", cycle: "daily" };
    expect(await granted({ token_limit: { count: 2_500, cycle: "daily" }, spend_limit: loose })).toBe(byTokens);
  });

  it("refuses when not even the minimum output fits, or when the key does not clamp", async () => {
    const { key } = await setupKey({ token_limit: { count: 1_000, cycle: "daily" } });
    const res = await chat(key, {});
    expect((await json(res, 429)).error.message).toContain(`Even ${MIN_CLAMPED_OUTPUT_TOKENS} output tokens`);
    // A request asking for less than the clamp's minimum is told about its own output, as the spend limit tells it.
    const small = await setupKey({ token_limit: { count: 50, cycle: "daily" } });
    const asked = await chat(small.key, { max_tokens: 100 });
    const told = (await json(asked, 429)).error.message;
    expect(told).toContain("Even 100 output tokens");
    expect(told).not.toContain(`${MIN_CLAMPED_OUTPUT_TOKENS}`);
    const strict = await setupKey({ token_limit: { count: 5_000, cycle: "daily" }, clamp_output: false });
    const refused = await chat(strict.key, {});
    expect((await json(refused, 429)).error.code).toBe("token_limit_exceeded");
    expect(refused.headers.get("x-spendgate-output-limit")).toBeNull();
  });
});
