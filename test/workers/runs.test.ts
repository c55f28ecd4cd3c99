import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { MAX_RUNS_PER_KEY, RUN_IDLE_MS } from "../../src/guard/runs.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import type { AdmitInput } from "../../src/guard/types.ts";
import {
  admitInput,
  booked,
  call,
  chat,
  d1All,
  fakeRequests,
  json,
  lastFakeRequest,
  messages,
  mgmt,
  settled,
  setupKey,
} from "./helpers.ts";

const RUN = "x-spendgate-run";
const nanos = (usd: string) => Math.round(Number(usd) * 1e9);

/** `GET /v1/key?run=<id>` as the key's holder sees it. */
async function runOf(key: string, run: string, status = 200) {
  const res = await call("GET", `/v1/key?run=${encodeURIComponent(run)}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return json(res, status);
}

/** A request straight to the key's guard (as admission sends it), in a run, holding exactly `hold` nano-dollars. */
function runInput(
  secretHash: string,
  requestId: string,
  run: string | undefined,
  hold: number,
  routeShape: AdmitInput["routeShape"] = "openai",
): AdmitInput {
  const where = { requestId, routeShape, maxInflight: 100_000, holdTtlMs: 900_000 };
  return admitInput(secretHash, hold, { ...where, ...(run === undefined ? {} : { run }) });
}

const setClock = (id: string, now: () => number) =>
  runInDurableObject(keyGuard(env, id), (g: KeyGuard) => void (g.now = now));

/** Fills a key with `n` runs through its guard's own admit and settle (each run one request of 1 nano-dollar). */
async function fillRuns(id: string, n: number, prefix: string) {
  const stub = keyGuard(env, id);
  const { secretHash, requestShape } = (await stub.inspect()).config!;
  for (let i = 0; i < n; i += 100) {
    const ids = Array.from({ length: Math.min(100, n - i) }, (_, j) => `${prefix}${i + j}`);
    const admitted = await Promise.all(
      ids.map((r) => stub.admit(runInput(secretHash, `req_${prefix}${r}`, r, 1, requestShape))),
    );
    expect(admitted.every((a) => a.ok)).toBe(true);
    await Promise.all(
      ids.map((r) =>
        stub.settle({
          requestId: `req_${prefix}${r}`,
          status: "error",
          usage: null,
          fallbackNanos: 0,
          responseId: null,
          httpStatus: 500,
          latencyMs: 1,
        }),
      ),
    );
  }
}

describe("runs: each run's own exact budget inside its key", () => {
  it("many runs' concurrent requests (JSON, streams) never pass a run's budget nor the key's (property)", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          // Worst cases are about 15,000 nano-dollars (gpt-4o-mini, ≤ 40 output tokens): budgets of a few requests.
          runSpend: fc.option(fc.integer({ min: 10_000, max: 120_000 }), { nil: null }),
          runRequests: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
          keySpend: fc.integer({ min: 40_000, max: 400_000 }),
          requests: fc.array(
            fc.record({
              run: fc.integer({ min: -1, max: 3 }),
              stream: fc.boolean(),
              worst: fc.boolean(),
              maxTokens: fc.integer({ min: 1, max: 40 }),
            }),
            { minLength: 4, maxLength: 36 },
          ),
        }),
        async ({ runSpend, runRequests, keySpend, requests }) => {
          const runLimit = {
            spend: runSpend === null ? null : (runSpend / 1e9).toFixed(9),
            requests: runSpend === null && runRequests === null ? 3 : runRequests,
          };
          const { key, id } = await setupKey({
            name: `runs-prop-${n++}`,
            spend_limit: { amount: (keySpend / 1e9).toFixed(9), cycle: "total" },
            run_limit: runLimit,
          });
          const runId = (i: number) => `prop.${n}:run-${i}`;
          const answers = await Promise.all(
            requests.map(async (r, i) => {
              // [[fault:worst]] bills every token the hold allowed for: cost = hold, the tightest case.
              const content = `${r.worst ? "[[fault:worst]] " : ""}request ${i}`;
              const res = await chat(
                key,
                { max_tokens: r.maxTokens, stream: r.stream, messages: [{ role: "user", content }] },
                r.run < 0 ? {} : { [RUN]: runId(r.run) },
              );
              const text = await res.text();
              return { r, status: res.status, text, limit: res.headers.get("x-spendgate-limit") };
            }),
          );
          const state = await settled(id);
          const rows = state.ledger;
          const limitNanos = runLimit.spend === null ? null : nanos(runLimit.spend);
          for (let k = 0; k < 4; k++) {
            const mine = rows.filter((row) => row.runId === runId(k));
            const spent = mine.reduce((a, row) => a + row.costNanos, 0);
            if (limitNanos !== null) expect(spent).toBeLessThanOrEqual(limitNanos);
            if (runLimit.requests !== null) expect(mine.length).toBeLessThanOrEqual(runLimit.requests);
            // The guard's own figures for the run are the ledger's, and nothing is left held.
            const seen = (await runOf(key, runId(k))).run;
            expect(seen).toMatchObject({ id: runId(k), requests: mine.length, held_spend: "0.00" });
            expect(nanos(seen.spend)).toBe(spent);
            const refusals = answers.filter((a) => a.r.run === k && a.status !== 200);
            // A run refused for its request count had admitted exactly that many.
            if (refusals.some((a) => a.text.includes("run_request_limit_exceeded"))) {
              expect(mine.length).toBe(runLimit.requests);
            }
          }
          const total = rows.reduce((a, row) => a + row.costNanos, 0);
          expect(total).toBeLessThanOrEqual(keySpend);
          expect(rows.length).toBe(answers.filter((a) => a.status === 200).length);
          for (const a of answers) {
            if (a.status === 200) continue;
            const code = JSON.parse(a.text).error.code;
            const allowed =
              a.r.run < 0 ? ["spend_limit_exceeded"] : ["spend_limit_exceeded", "run_spend_limit_exceeded"];
            if (a.r.run >= 0) allowed.push("run_request_limit_exceeded");
            expect(allowed).toContain(code);
            expect(a.limit).toBe(
              { spend_limit_exceeded: "spend", run_spend_limit_exceeded: "run_spend" }[code as string] ??
                "run_requests",
            );
          }
        },
      ),
      // Each run is a fresh key and dozens of requests: a failure is reported as found, not shrunk for minutes.
      { numRuns: 40, endOnFailure: true },
    );
  }, 120_000);

  it("a run's refusal leaves other runs and the key usable; a request with no run is not a run", async () => {
    const { key, id } = await setupKey({ run_limit: { spend: null, requests: 1 } });
    expect((await chat(key, {}, { [RUN]: "a" })).status).toBe(200);
    const refused = await chat(key, {}, { [RUN]: "a" });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-spendgate-limit")).toBe("run_requests");
    expect((await json(refused)).error.code).toBe("run_request_limit_exceeded");
    expect((await chat(key, {}, { [RUN]: "b" })).status).toBe(200);
    // Without a run only the key's limits apply: any number of requests.
    for (let i = 0; i < 3; i++) expect((await chat(key)).status).toBe(200);
    const state = await settled(id);
    expect(state.counters.totalRequests).toBe(5);
    expect(state.ledger.map((r) => r.runId ?? null).sort()).toEqual(["a", "b", null, null, null]);
    const a = (await runOf(key, "a")).run;
    expect(a).toMatchObject({ id: "a", requests: 1, remaining: { spend: null, requests: 0 } });
  });

  it("a run's budget is exact: what it spends, holds and has left; an unseen run is whole", async () => {
    const { key, id } = await setupKey({ run_limit: { spend: "0.0001", requests: 10 } });
    const unseen = await runOf(key, "never");
    expect(unseen.run).toEqual({
      id: "never",
      spend: "0.00",
      requests: 0,
      held_spend: "0.00",
      remaining: { spend: "0.0001", requests: 10 },
    });
    expect(unseen.run_limit).toEqual({ spend: "0.0001", requests: 10 });
    const res = await chat(key, { max_tokens: 10 }, { [RUN]: "r1" });
    const cost = nanos(res.headers.get("x-spendgate-cost")!);
    await res.text();
    await settled(id);
    const seen = (await runOf(key, "r1")).run;
    expect(cost).toBeGreaterThan(0);
    expect(seen).toMatchObject({ id: "r1", requests: 1, held_spend: "0.00", remaining: { requests: 9 } });
    expect(nanos(seen.spend)).toBe(cost);
    expect(nanos(seen.remaining.spend)).toBe(100_000 - cost);
    // A key without run_limit does not track runs: the id only tags the ledger row.
    const plain = await setupKey();
    expect((await chat(plain.key, {}, { [RUN]: "r1" })).status).toBe(200);
    expect((await runOf(plain.key, "r1")).run).toBeNull();
    const state = await settled(plain.id);
    expect(state.runs).toBe(0);
    expect(state.ledger[0]!.runId).toBe("r1");
  });

  it("metadata `run` names the run too; the clamp grants what the smaller of key and run budget affords", async () => {
    // gpt-4o-mini without max_tokens holds its 16,384-token max output (≈ $0.0098): more than the run's $0.001.
    const { key, id } = await setupKey({ run_limit: { spend: "0.001", requests: null } });
    const res = await chat(key, {}, { "x-spendgate-metadata": JSON.stringify({ run: "tagged" }) });
    expect(res.status).toBe(200);
    const granted = Number(res.headers.get("x-spendgate-output-limit"));
    expect(granted).toBeGreaterThanOrEqual(1024);
    // The grant fits the run: 600 nano-dollars an output token, beside the small body's input bound (< 400 tokens
    // at 150 nano-dollars), within the run's 1,000,000 nano-dollars.
    expect(granted * 600).toBeLessThanOrEqual(1_000_000);
    expect(granted * 600).toBeGreaterThan(1_000_000 - 60_000);
    expect((await lastFakeRequest()).body.max_completion_tokens).toBe(granted);
    await res.text();
    const state = await settled(id);
    expect(state.ledger[0]).toMatchObject({ runId: "tagged", metadata: { run: "tagged" } });

    // A key whose own budget is the smaller: the key's remainder decides the grant.
    const small = await setupKey({
      spend_limit: { amount: "0.0008", cycle: "total" },
      run_limit: { spend: "0.005", requests: null },
    });
    const clamped = await chat(small.key, {}, { [RUN]: "x" });
    expect(clamped.status).toBe(200);
    const byKey = Number(clamped.headers.get("x-spendgate-output-limit"));
    expect(byKey * 600).toBeLessThanOrEqual(800_000);
    expect(byKey * 600).toBeGreaterThan(800_000 - 60_000);
    await clamped.text();
    await settled(small.id);
  });

  it("a hold that lapses (its settle lost) is charged to its run in full", async () => {
    const { key, id } = await setupKey({ run_limit: { spend: "0.001", requests: null } });
    const stub = keyGuard(env, id);
    const secretHash = (await stub.inspect()).config!.secretHash;
    expect((await stub.admit(runInput(secretHash, "req_lapse", "lapse", 5_000))).ok).toBe(true);
    expect((await runOf(key, "lapse")).run).toMatchObject({ spend: "0.00", held_spend: "0.000005", requests: 1 });
    await setClock(id, () => Date.now() + 900_001);
    await runDurableObjectAlarm(stub);
    await setClock(id, () => Date.now());
    expect((await runOf(key, "lapse")).run).toMatchObject({
      spend: "0.000005",
      held_spend: "0.00",
      remaining: { spend: "0.000995", requests: null },
    });
  });
});

describe("runs: refusals in both dialects", () => {
  it("run spend and run requests: codes, statuses, x-spendgate-limit and details, OpenAI and Anthropic", async () => {
    const oa = await setupKey({ run_limit: { spend: "0.000000001", requests: null } });
    const spend = await chat(oa.key, {}, { [RUN]: "s" });
    expect(spend.status).toBe(429);
    expect(spend.headers.get("x-spendgate-limit")).toBe("run_spend");
    expect(spend.headers.get("x-should-retry")).toBe("false");
    expect(spend.headers.get("retry-after")).toBeNull();
    const body = await json(spend);
    expect(body.error).toMatchObject({ type: "insufficient_quota", code: "run_spend_limit_exceeded" });
    expect(body.error.message).toContain("run 's'");
    expect(body.details).toEqual({ limit: "run_spend", run: "s", amount: "0.000000001", current: "0.00" });

    const an = await setupKey({
      request_shape: "anthropic",
      run_limit: { spend: "0.000000001", requests: null },
    });
    const billing = await messages(an.key, {}, { [RUN]: "s" });
    expect(billing.status).toBe(402);
    expect(billing.headers.get("x-spendgate-limit")).toBe("run_spend");
    const ab = await json(billing);
    expect(ab).toMatchObject({ type: "error", error: { type: "billing_error" }, details: { limit: "run_spend" } });

    const anReq = await setupKey({ request_shape: "anthropic", run_limit: { spend: null, requests: 1 } });
    expect((await messages(anReq.key, {}, { [RUN]: "q" })).status).toBe(200);
    const count = await messages(anReq.key, {}, { [RUN]: "q" });
    expect(count.status).toBe(429);
    expect(count.headers.get("x-spendgate-limit")).toBe("run_requests");
    expect(await json(count)).toMatchObject({
      error: { type: "rate_limit_error" },
      details: { limit: "run_requests", run: "q", count: 1, current: 1 },
    });
    const oaReq = await setupKey({ run_limit: { spend: null, requests: 1 } });
    expect((await chat(oaReq.key, {}, { [RUN]: "q" })).status).toBe(200);
    const oaCount = await chat(oaReq.key, {}, { [RUN]: "q" });
    expect(oaCount.status).toBe(429);
    expect(await json(oaCount)).toMatchObject({
      error: { type: "insufficient_quota", code: "run_request_limit_exceeded" },
    });
    for (const k of [oa, an, anReq, oaReq]) await settled(k.id);
  });

  it("keeps at most 1,000 live runs: a new one is too_many_runs until the longest-idle run ends", async () => {
    for (const shape of ["openai", "anthropic"] as const) {
      const { key, id } = await setupKey({ request_shape: shape, run_limit: { spend: null, requests: 1000 } });
      const send = (run: string) =>
        shape === "openai" ? chat(key, {}, { [RUN]: run }) : messages(key, {}, { [RUN]: run });
      expect(MAX_RUNS_PER_KEY).toBe(1_000);
      const t0 = Date.now();
      await fillRuns(id, MAX_RUNS_PER_KEY, "fill-");
      const refused = await send("one-too-many");
      expect(refused.status).toBe(429);
      expect(refused.headers.get("x-spendgate-limit")).toBe("runs");
      expect(refused.headers.get("x-should-retry")).toBeNull();
      // Until the longest-idle run (fill-0, used at about t0) has been idle for RUN_IDLE_MS.
      const retry = Number(refused.headers.get("retry-after"));
      expect(retry).toBeLessThanOrEqual(RUN_IDLE_MS / 1000);
      expect(retry).toBeGreaterThanOrEqual((RUN_IDLE_MS - (Date.now() - t0) - 1000) / 1000);
      const body = await json(refused);
      if (shape === "openai") expect(body.error).toMatchObject({ type: "requests", code: "too_many_runs" });
      else expect(body.error.type).toBe("rate_limit_error");
      expect(body.details).toEqual({
        limit: "runs",
        count: MAX_RUNS_PER_KEY,
        current: MAX_RUNS_PER_KEY,
        run: "one-too-many",
      });
      // A live run carries on; the refusal changed nothing.
      const reused = Date.now();
      expect((await send("fill-5")).status).toBe(200);
      let state = await settled(id);
      expect(state.runs).toBe(MAX_RUNS_PER_KEY);
      // Once the longest-idle run has ended, the new run takes its place at admission (the alarm, which would
      // delete ended runs by itself, is cleared here so the admission's own replacement is what is seen).
      await runInDurableObject(keyGuard(env, id), async (g: KeyGuard, s: DurableObjectState) => {
        // the first runs filled have ended; fill-5, used again since, has not
        g.now = () => reused + RUN_IDLE_MS - 1;
        await s.storage.deleteAlarm();
      });
      expect((await send("one-too-many")).status).toBe(200);
      state = await settled(id);
      expect(state.runs).toBe(MAX_RUNS_PER_KEY);
      expect((await runOf(key, "one-too-many")).run.requests).toBe(1);
      expect((await runOf(key, "fill-5")).run.requests).toBe(2);
    }
  });

  it("a malformed run id is a 400 in the key's dialect that changes nothing", async () => {
    const oa = await setupKey({ run_limit: { spend: null, requests: 5 } });
    const an = await setupKey({ request_shape: "anthropic", run_limit: { spend: null, requests: 5 } });
    const before = (await fakeRequests()).length;
    const bad: Record<string, string>[] = [
      { [RUN]: "" },
      { [RUN]: "has space" },
      { [RUN]: "a/b" },
      { [RUN]: "x".repeat(129) },
      { [RUN]: "ünïcode" },
      { "x-spendgate-metadata": JSON.stringify({ run: "no way" }) },
      { [RUN]: "one", "x-spendgate-metadata": JSON.stringify({ run: "two" }) },
    ];
    for (const headers of bad) {
      const o = await chat(oa.key, {}, headers);
      expect(o.status).toBe(400);
      expect((await json(o)).error).toMatchObject({ type: "invalid_request_error", code: "invalid_request" });
      const a = await messages(an.key, {}, headers);
      expect(a.status).toBe(400);
      expect(await json(a)).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    }
    // Up to 128 characters of the allowed set are a run.
    expect((await chat(oa.key, {}, { [RUN]: `A-z_0.9:${"x".repeat(120)}` })).status).toBe(200);
    expect((await fakeRequests()).length).toBe(before + 1);
    const oaState = await settled(oa.id);
    expect(oaState.counters.totalRequests).toBe(1);
    expect(oaState.runs).toBe(1);
    expect((await settled(an.id)).counters.totalRequests).toBe(0);
    // GET /v1/key?run= with a malformed id: a 400 in the key's dialect.
    const q = await call("GET", "/v1/key?run=a%20b", { headers: { "x-api-key": an.key } });
    expect(q.status).toBe(400);
    expect(await json(q)).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    // The ledger's run filter takes the same format, and says so for any other.
    const listed = await mgmt(oa.wallet.key, "GET", "/requests?run_id=a%20b");
    expect(listed.status).toBe(400);
    expect((await json(listed)).error.param).toBe("run_id");
  });
});

describe("runs: lifetime and bookkeeping", () => {
  it("a run idle 24 h with nothing in flight ends: the alarm drops it, its id starts afresh", async () => {
    const { key, id } = await setupKey({ run_limit: { spend: null, requests: 2 } });
    expect((await chat(key, {}, { [RUN]: "idle" })).status).toBe(200);
    expect((await chat(key, {}, { [RUN]: "idle" })).status).toBe(200);
    expect((await chat(key, {}, { [RUN]: "idle" })).status).toBe(429);
    await booked(id);
    const t = Date.now();
    const stub = keyGuard(env, id);
    // Just before the end: still the same run, still spent.
    await setClock(id, () => t + RUN_IDLE_MS - 5_000);
    expect((await runOf(key, "idle")).run.requests).toBe(2);
    await runDurableObjectAlarm(stub);
    expect((await stub.inspect()).runs).toBe(1);
    // After it: ended (reads as new), and the alarm deletes it.
    await setClock(id, () => t + RUN_IDLE_MS + 1_000);
    expect((await runOf(key, "idle")).run).toMatchObject({ requests: 0, remaining: { requests: 2 } });
    await runDurableObjectAlarm(stub);
    expect((await stub.inspect()).runs).toBe(0);
    expect((await chat(key, {}, { [RUN]: "idle" })).status).toBe(200);
    expect((await runOf(key, "idle")).run.requests).toBe(1);
  });

  it("usage by run (raw rows) equals the ledger and the guard's figures; outside the raw window, a 400", async () => {
    const { wallet, key, id } = await setupKey({ run_limit: { spend: "1.00", requests: null } });
    const plan = [
      ["alpha", 3],
      ["beta", 2],
      [null, 2],
    ] as const;
    for (const [run, times] of plan) {
      for (let i = 0; i < times; i++) {
        const res = await chat(key, { max_tokens: 5 + i, stream: i % 2 === 1 }, run ? { [RUN]: run } : {});
        expect(res.status).toBe(200);
        await res.text();
      }
    }
    await booked(id);
    const ledger = await d1All(
      `SELECT run_id, count(*) AS n, sum(cost_nanos) AS cost FROM requests WHERE spend_key_id = '${id}' ` +
        "AND run_id IS NOT NULL GROUP BY run_id ORDER BY run_id",
    );
    expect(ledger.map((r) => [r.run_id, r.n])).toEqual([
      ["alpha", 3],
      ["beta", 2],
    ]);
    const start = new Date(Date.now() - 3_600_000).toISOString();
    const usage = await json(await mgmt(wallet.key, "GET", `/usage?start=${start}&group_by=run`), 200);
    const byRun = new Map<string, { n: number; cost: number }>();
    for (const item of usage.items) {
      const had = byRun.get(item.run) ?? { n: 0, cost: 0 };
      byRun.set(item.run, { n: had.n + item.total_requests, cost: had.cost + nanos(item.total_cost) });
    }
    expect([...byRun.keys()].sort()).toEqual(["alpha", "beta"]);
    for (const row of ledger) {
      expect(byRun.get(row.run_id as string)).toEqual({ n: row.n, cost: row.cost });
      const seen = (await runOf(key, row.run_id as string)).run;
      expect(nanos(seen.spend)).toBe(row.cost);
      expect(seen.requests).toBe(row.n);
    }
    expect(usage.totals.total_requests).toBe(5);
    // The ledger shows each row's run, and lists one run's rows.
    const alpha = await json(await mgmt(wallet.key, "GET", "/requests?run_id=alpha"), 200);
    expect(alpha.data.map((r: any) => r.run_id)).toEqual(["alpha", "alpha", "alpha"]);
    const all = await json(await mgmt(wallet.key, "GET", `/requests?spend_key_id=${id}`), 200);
    expect(all.data.map((r: any) => r.run_id ?? "none").sort()).toEqual([
      "alpha",
      "alpha",
      "alpha",
      "beta",
      "beta",
      "none",
      "none",
    ]);
    // Raw rows are kept only for the retention window: asking by run before it is refused, naming the window.
    const archivedBefore = Date.now() - 1_800_000;
    await env.DB.prepare("INSERT OR REPLACE INTO retention_state (name, value) VALUES ('archived_before', ?)")
      .bind(archivedBefore)
      .run();
    try {
      const old = await mgmt(wallet.key, "GET", `/usage?start=${start}&group_by=run`);
      expect(old.status).toBe(400);
      expect((await json(old)).error.message).toContain("group_by=run needs the raw ledger");
    } finally {
      await env.DB.prepare("DELETE FROM retention_state WHERE name = 'archived_before'").run();
    }
  });

  it("run_limit on create, update (PUT/PATCH) and in the view; null clears it", async () => {
    const { wallet, id, created } = await setupKey({ run_limit: { spend: "0.50", requests: 20 } });
    expect(created.run_limit).toEqual({ spend: "0.50", requests: 20 });
    const patched = await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { run_limit: { spend: "1.25" } }),
      200,
    );
    expect(patched.run_limit).toEqual({ spend: "1.25", requests: null });
    const put = await json(await mgmt(wallet.key, "PUT", `/spend_keys/${id}`, { run_limit: { requests: 3 } }), 200);
    expect(put.run_limit).toEqual({ spend: null, requests: 3 });
    const both = await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { run_limit: { spend: null, requests: null } }),
      200,
    );
    expect(both.run_limit).toBeNull();
    await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { run_limit: { spend: "2" } });
    const cleared = await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { run_limit: null }), 200);
    expect(cleared.run_limit).toBeNull();
    const other = await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { name: "renamed" }), 200);
    expect(other.run_limit).toBeNull();
    for (const bad of [{ spend: "-1" }, { spend: "abc" }, { requests: 0 }, { requests: 1.5 }, { other: 1 }]) {
      expect((await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { run_limit: bad })).status).toBe(400);
    }
    const plain = await setupKey();
    expect(plain.created.run_limit).toBeNull();
    await booked(id);
    const [row] = await d1All(`SELECT run_spend_limit_nanos, run_request_limit FROM spend_keys WHERE id = '${id}'`);
    expect(row).toEqual({ run_spend_limit_nanos: null, run_request_limit: null });
  });
});
