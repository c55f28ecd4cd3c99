import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import {
  admitInput,
  booked,
  call,
  chat,
  d1All,
  type FakeRecord,
  json,
  lastFakeRequest,
  messages,
  mgmt,
  settled,
  setupKey,
} from "./helpers.ts";

/** List prices (USD per 1M tokens) written out independently of the catalog code. */
const PRICES: Record<string, { in: string; out: string; cr: string; cw: string }> = {
  "gpt-4o-mini": { in: "0.15", out: "0.60", cr: "0.075", cw: "0.15" },
  "gpt-5-mini": { in: "0.25", out: "2", cr: "0.025", cw: "0.25" },
  "text-embedding-3-small": { in: "0.02", out: "0", cr: "0.02", cw: "0.02" },
  "claude-sonnet-4-20250514": { in: "3", out: "15", cr: "0.30", cw: "3.75" },
  "mistral-small-latest": { in: "0.10", out: "0.30", cr: "0.10", cw: "0.10" },
};

/** USD decimal → units of 1e-15 USD per token (a USD-per-1M price is exactly that many nano-dollars per 1M). */
const femtoPerToken = (usd: string) => {
  const [w, f = ""] = usd.split(".");
  return BigInt(w!) * 1_000_000_000n + BigInt(f.padEnd(9, "0"));
};

/** The expected charge: exact femto-dollars, rounded up to a nano-dollar, as a decimal string. */
function expectedCost(model: string, u: NonNullable<FakeRecord["usage"]>, anthropicInput = false): string {
  const p = PRICES[model]!;
  const uncached = anthropicInput ? u.input - u.cacheRead - u.cacheWrite : u.input - u.cacheRead;
  const femtos =
    BigInt(uncached) * femtoPerToken(p.in) +
    BigInt(u.cacheRead) * femtoPerToken(p.cr) +
    BigInt(u.cacheWrite) * femtoPerToken(p.cw) +
    BigInt(u.output) * femtoPerToken(p.out);
  const nanos = (femtos + 999_999n) / 1_000_000n;
  const whole = nanos / 1_000_000_000n;
  let frac = (nanos % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${whole}.${frac}`;
}

async function flush(id: string) {
  await booked(id);
}

async function ledger(walletKey: string, id: string) {
  return (await json(await mgmt(walletKey, "GET", `/requests?spend_key_id=${id}&limit=100`), 200)).data;
}

describe("the recorded cost equals usage × list price, for every route and dialect", () => {
  const cases: {
    name: string;
    shape?: "anthropic";
    path: string;
    model: string;
    body: Record<string, unknown>;
    anthropicInput?: boolean;
  }[] = [
    {
      name: "chat JSON",
      path: "/v1/chat/completions",
      model: "gpt-4o-mini",
      body: { messages: [{ role: "user", content: "one two three [cached:2]" }] },
    },
    {
      name: "chat stream, usage asked",
      path: "/v1/chat/completions",
      model: "gpt-4o-mini",
      body: { stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "a b c d" }] },
    },
    {
      name: "chat stream, usage not asked",
      path: "/v1/chat/completions",
      model: "gpt-4o-mini",
      body: { stream: true, messages: [{ role: "user", content: "a b c d e f" }] },
    },
    {
      name: "chat with reasoning tokens",
      path: "/v1/chat/completions",
      model: "gpt-5-mini",
      body: { messages: [{ role: "user", content: "think hard [cached:3]" }] },
    },
    { name: "responses JSON", path: "/v1/responses", model: "gpt-4o-mini", body: { input: "hello there [cached:1]" } },
    {
      name: "responses stream",
      path: "/v1/responses",
      model: "gpt-4o-mini",
      body: { input: "hello there", stream: true },
    },
    {
      name: "embeddings",
      path: "/v1/embeddings",
      model: "text-embedding-3-small",
      body: { input: ["alpha beta", "gamma"] },
    },
    {
      name: "Mistral stream (usage always sent, nothing added)",
      path: "/v1/chat/completions",
      model: "mistral-small-latest",
      body: { stream: true, messages: [{ role: "user", content: "bonjour" }] },
    },
    {
      name: "Claude via the OpenAI shape",
      path: "/v1/chat/completions",
      model: "claude-sonnet-4-20250514",
      body: { stream: true, messages: [{ role: "user", content: "hi" }] },
    },
    {
      name: "messages JSON with cache read and write",
      shape: "anthropic",
      path: "/v1/messages",
      model: "claude-sonnet-4-20250514",
      anthropicInput: true,
      body: { max_tokens: 100, messages: [{ role: "user", content: "x y z w [cached:2] [cache_write:3]" }] },
    },
    {
      name: "messages stream with cache read and write",
      shape: "anthropic",
      path: "/v1/messages",
      model: "claude-sonnet-4-20250514",
      anthropicInput: true,
      body: {
        max_tokens: 100,
        stream: true,
        messages: [{ role: "user", content: "x y z w [cached:1] [cache_write:2]" }],
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { wallet, key, id } = await setupKey(c.shape ? { request_shape: c.shape } : {});
      const res = await call("POST", c.path, {
        headers: { authorization: `Bearer ${key}` },
        body: { model: c.model, ...c.body },
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      const seen = await lastFakeRequest();
      const usage = seen.usage!;
      if (c.model.startsWith("mistral")) expect(seen.body.stream_options).toBeUndefined();
      const expected = expectedCost(c.model, usage, c.anthropicInput);
      if (!c.body.stream) expect(res.headers.get("x-spendgate-cost")).toBe(expected);
      expect(text.length).toBeGreaterThan(0);
      // exact as soon as the response has been read
      const live = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
      expect(live.total_spend).toBe(expected);
      expect(live.current_spend).toBe(expected);
      expect(live.total_requests).toBe(1);
      await flush(id);
      const [row] = await ledger(wallet.key, id);
      expect(row).toMatchObject({
        status: "completed",
        model: c.model,
        endpoint: c.path,
        cost: expected,
        stream: c.body.stream === true,
        usage_known: true,
      });
      expect(row.model_usage.total_cost).toBe(expected);
      expect(row.model_usage.output_tokens).toBe(usage.output);
      expect(row.model_usage.input_tokens).toBe(usage.input);
      expect(row.model_usage.cache_read_tokens).toBe(usage.cacheRead);
      expect(row.model_usage.cache_write_tokens).toBe(usage.cacheWrite);
      expect(row.model_usage.reasoning_tokens).toBe(usage.reasoning);
      // component costs are exact; their sum rounds up to the charged cost
      const exact = Number(row.model_usage.input_cost) + Number(row.model_usage.output_cost);
      expect(Math.abs(exact - Number(expected))).toBeLessThanOrEqual(1e-9);
    });
  }
});

describe("holds", () => {
  it("a request whose worst case does not fit is refused even though spend is below the limit", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "0.001", cycle: "total" } });
    // claude-sonnet-4: 1,000 output tokens × $15/M = $0.015 worst case > $0.001.
    const res = await chat(key, { model: "claude-sonnet-4-20250514", max_tokens: 1000 });
    expect(res.status).toBe(429);
    expect((await json(res)).error.message).toMatch(/worst-case cost \(\$0\.015/);
    expect((await chat(key, { model: "claude-sonnet-4-20250514", max_tokens: 20 })).status).toBe(200);
  });

  it("a Responses request that continues stored state holds for the model's whole context window", async () => {
    // gpt-4o-mini: 128k context × $0.15/M = $0.0192 of input alone.
    const { key } = await setupKey({ spend_limit: { amount: "0.01", cycle: "total" } });
    const auth = { authorization: `Bearer ${key}` };
    const cont = await call("POST", "/v1/responses", {
      headers: auth,
      body: { model: "gpt-4o-mini", max_output_tokens: 10, input: "and then?", previous_response_id: "resp_123" },
    });
    expect(cont.status).toBe(429);
    expect((await json(cont)).error.code).toBe("spend_limit_exceeded");
    const fresh = await call("POST", "/v1/responses", {
      headers: auth,
      body: { model: "gpt-4o-mini", max_output_tokens: 10, input: "hello" },
    });
    expect(fresh.status).toBe(200);
  });

  it("the worst case counts every one of n choices", async () => {
    // gpt-4o-mini: 100 output tokens × $0.60/M = $0.00006 per choice; with n = 4 the hold is ≥ $0.00024.
    const { key } = await setupKey({ spend_limit: { amount: "0.0002", cycle: "total" } });
    const four = await chat(key, { max_tokens: 100, n: 4 });
    expect(four.status).toBe(429);
    expect((await json(four)).error.code).toBe("spend_limit_exceeded");
    expect((await chat(key, { max_tokens: 100, n: 1 })).status).toBe(200);
    expect((await chat(key, { max_tokens: 100, n: 0 })).status).toBe(400);
  });

  it("upstream errors without usage release the hold; the ledger says error", async () => {
    const { wallet, key, id } = await setupKey({ spend_limit: { amount: "1", cycle: "daily" } });
    expect((await chat(key, { messages: [{ role: "user", content: "[[fault:500]]" }] })).status).toBe(500);
    await settled(id);
    const live = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(live.current_spend).toBe("0.00");
    expect((await keyGuard(env, id).snapshot()).heldNanos).toBe(0);
    await flush(id);
    expect((await ledger(wallet.key, id))[0]).toMatchObject({ status: "error", cost: "0.00", http_status: 500 });
  });

  it("a JSON success without usage is charged its worst case, never free", async () => {
    const { wallet, key, id } = await setupKey();
    const res = await chat(key, { max_tokens: 10, messages: [{ role: "user", content: "[[fault:nousage]]" }] });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("x-spendgate-cost"))).toBeGreaterThan(0);
    await flush(id);
    expect((await ledger(wallet.key, id))[0]).toMatchObject({ status: "completed", usage_known: false });
  });

  it("a cut stream is charged for what was received, at most the hold", async () => {
    const { wallet, key, id } = await setupKey();
    await (
      await chat(key, { stream: true, max_tokens: 12, messages: [{ role: "user", content: "[[fault:truncate]]" }] })
    ).text();
    const snap = await keyGuard(env, id).snapshot();
    expect(snap.heldNanos).toBe(0);
    expect(snap.totalSpendNanos).toBeGreaterThan(0);
    await flush(id);
    const [row] = await ledger(wallet.key, id);
    expect(row).toMatchObject({ status: "error", usage_known: false });
  });

  it("a client that aborts a stream midway is charged the real usage, read on after it left", async () => {
    const { wallet, key, id } = await setupKey();
    const res = await chat(key, { stream: true, messages: [{ role: "user", content: "[[fault:gap:50]] tell me" }] });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const usage = (await lastFakeRequest()).usage!;
    const expected = expectedCost("gpt-4o-mini", usage);
    let snap = await keyGuard(env, id).snapshot();
    for (let i = 0; i < 100 && snap.openHolds > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      snap = await keyGuard(env, id).snapshot();
    }
    expect(snap.openHolds).toBe(0);
    await flush(id);
    const [row] = await ledger(wallet.key, id);
    expect(row).toMatchObject({ status: "aborted", cost: expected, usage_known: true });
  });

  it("a client gone for longer than the drain bound aborts the upstream and is charged what was seen", async () => {
    // The tests run with DISCONNECT_DRAIN_MS = 2000; this stream would take 14 × 400 ms.
    const { wallet, key, id } = await setupKey();
    const res = await chat(key, {
      stream: true,
      max_tokens: 12,
      messages: [{ role: "user", content: "[[fault:gap:400]] slow" }],
    });
    const reader = res.body!.getReader();
    await reader.read();
    const left = Date.now();
    await reader.cancel();
    let snap = await keyGuard(env, id).snapshot();
    for (let i = 0; i < 200 && snap.openHolds > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      snap = await keyGuard(env, id).snapshot();
    }
    const settledAfter = Date.now() - left;
    expect(snap.openHolds).toBe(0);
    expect(settledAfter).toBeGreaterThanOrEqual(1_900);
    expect(settledAfter).toBeLessThan(4_500);
    expect(snap.totalSpendNanos).toBeGreaterThan(0);
    await flush(id);
    expect((await ledger(wallet.key, id))[0]).toMatchObject({ status: "aborted", usage_known: false });
  });

  it("a backlog of more rows than one flush carries reaches D1 whole, each row once, as D1 stores them", async () => {
    const { id } = await setupKey({ spend_limit: { amount: "100", cycle: "total" } });
    const stub = keyGuard(env, id);
    const secretHash = (await stub.inspect()).config!.secretHash;
    const n = 450; // more than two flush batches (200 rows each)
    for (let i = 0; i < n; i++) {
      const requestId = `req_backlog_${i}`;
      const metadata = { run: "backlog", "it's": `row ${i}` };
      const admitted = await stub.admit(
        admitInput(secretHash, 1_000_000, { requestId, stream: i % 2 === 0, metadata }),
      );
      expect(admitted.ok).toBe(true);
      const usage = i % 3 === 0 ? null : { input_tokens: 10 + i, output_tokens: 5 };
      await stub.settle({
        requestId,
        status: usage ? "completed" : "error",
        usage,
        fallbackNanos: usage ? 0 : 7,
        responseId: null,
        httpStatus: 200,
        latencyMs: 1,
      });
    }
    const count = "SELECT count(*) AS n, count(DISTINCT request_id) AS ids, sum(cost_nanos) AS total FROM requests";
    const rowsInD1 = async () => (await d1All(`${count} WHERE spend_key_id = '${id}'`))[0]!;
    // One message carries at most 200 rows: the guard sends the rest at once, and D1 confirms each.
    await booked(id);
    const { totalSpendNanos } = await stub.snapshot();
    expect(await rowsInD1()).toEqual({ n, ids: n, total: totalSpendNanos });
    // Another flush finds nothing left to send: no row twice.
    await runDurableObjectAlarm(stub);
    await booked(id);
    expect((await rowsInD1()).n).toBe(n);
    // Booleans as 0/1, JSON columns as their text, exactly as the guard recorded each row.
    const [sample] = await d1All(
      `SELECT stream, usage_known, overage, metadata, usage FROM requests WHERE request_id = 'req_backlog_4'`,
    );
    expect(sample).toMatchObject({ stream: 1, usage_known: 1, overage: 0 });
    expect(JSON.parse(String(sample!.metadata))).toEqual({ run: "backlog", "it's": "row 4" });
    expect(JSON.parse(String(sample!.usage))).toEqual({ input_tokens: 14, output_tokens: 5 });
    const [unmetered] = await d1All(`SELECT stream, usage_known FROM requests WHERE request_id = 'req_backlog_3'`);
    expect(unmetered).toEqual({ stream: 0, usage_known: 0 });
  });

  it("a hold never settled expires through the alarm and is charged", async () => {
    const { wallet, id } = await setupKey({ spend_limit: { amount: "1", cycle: "total" } });
    const stub = keyGuard(env, id);
    let now = Date.now();
    await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => now));
    const cfg = (await stub.inspect()).config!;
    const admitted = await stub.admit(
      admitInput(cfg.secretHash, 12_345, { requestId: "req_crashed_worker", holdTtlMs: 60_000 }),
    );
    expect(admitted.ok).toBe(true);
    now += 60_001;
    await runDurableObjectAlarm(stub);
    await runDurableObjectAlarm(stub); // a second run changes nothing
    const snap = await stub.snapshot();
    expect(snap).toMatchObject({ openHolds: 0, heldNanos: 0, totalSpendNanos: 12_345 });
    await booked(id);
    const rows = await ledger(wallet.key, id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      request_id: "req_crashed_worker",
      status: "aborted",
      cost: "0.000012345",
      usage_known: false,
    });
  });

  it("settle is idempotent", async () => {
    const { id, key } = await setupKey();
    const res = await chat(key);
    const requestId = res.headers.get("x-request-id")!;
    await settled(id);
    const stub = keyGuard(env, id);
    const before = await stub.snapshot();
    const again = await stub.settle({
      requestId,
      status: "completed",
      usage: { input_tokens: 1000, output_tokens: 1000 },
      fallbackNanos: 0,
      responseId: null,
      httpStatus: 200,
      latencyMs: 1,
    });
    expect(again.applied).toBe(false);
    expect(again.costNanos).toBe(before.totalSpendNanos);
    expect(await stub.snapshot()).toEqual(before);
  });
});

describe("counters and the ledger", () => {
  it("list shows the counters within a few seconds (the guard's alarm, then the bookkeeping queue)", async () => {
    const { wallet, key, id } = await setupKey();
    await chat(key);
    await chat(key);
    const started = Date.now();
    let listed: any;
    for (;;) {
      listed = (await json(await mgmt(wallet.key, "GET", "/spend_keys"), 200)).data.find(
        (k: any) => k.spend_key_id === id,
      );
      if (listed.total_requests === 2 || Date.now() - started > 6_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed.total_requests).toBe(2);
    // About 1–2 s at rest (a second for the alarm, up to a second for the queue's batch); 5 s on a loaded machine.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(listed.last_used_at).not.toBeNull();
    const retrieved = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(listed.total_spend).toBe(retrieved.total_spend);
  });

  it("GET /v1/requests pages newest first, filters by key, and hides other wallets' rows", async () => {
    const a = await setupKey();
    const b = await setupKey();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await chat(a.key, {}, { "x-spendgate-metadata": JSON.stringify({ run: String(i) }) })).headers.get(
          "x-request-id",
        )!,
      );
    await chat(b.key);
    await flush(a.id);
    await flush(b.id);
    const p1 = await json(await mgmt(a.wallet.key, "GET", "/requests?limit=2"), 200);
    const p2 = await json(await mgmt(a.wallet.key, "GET", `/requests?limit=2&cursor=${p1.next_cursor}`), 200);
    expect([...p1.data, ...p2.data].map((r: any) => r.request_id)).toEqual([...ids].reverse());
    expect(p1.data[0].metadata).toEqual({ run: "2" });
    const one = await json(await mgmt(a.wallet.key, "GET", `/requests/${ids[0]}`), 200);
    expect(one.request_id).toBe(ids[0]);
    expect((await mgmt(b.wallet.key, "GET", `/requests/${ids[0]}`)).status).toBe(404);
    expect((await json(await mgmt(b.wallet.key, "GET", `/requests?spend_key_id=${a.id}`), 200)).data).toHaveLength(0);
  });

  it("success responses carry the remaining budget; JSON ones the cost", async () => {
    const { key } = await setupKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const res = await chat(key, { max_tokens: 12 });
    const cost = res.headers.get("x-spendgate-cost")!;
    expect(Number(res.headers.get("x-spendgate-budget-remaining"))).toBeCloseTo(1 - Number(cost), 9);
    const stream = await chat(key, { stream: true, max_tokens: 12 });
    expect(stream.headers.get("x-spendgate-budget-remaining")).toMatch(/^0\.\d+$/);
    await stream.text();
    const open = await setupKey();
    expect((await chat(open.key)).headers.get("x-spendgate-budget-remaining")).toBe("unlimited");
  });

  it("an Anthropic stream's usage is message_start input + the last cumulative message_delta output", async () => {
    const { key, wallet, id } = await setupKey({ request_shape: "anthropic" });
    await (
      await messages(key, { stream: true, messages: [{ role: "user", content: "count [[fault:words:7]]" }] })
    ).text();
    await flush(id);
    const [row] = await ledger(wallet.key, id);
    expect(row.model_usage.output_tokens).toBe(7);
  });
});
