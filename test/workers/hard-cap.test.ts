import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { admitInput, chat, d1All, json, MINI_RATES, mgmt, settled, setupKey } from "./helpers.ts";

const PRICES = { input: MINI_RATES.input_mtok, output: MINI_RATES.output_mtok };

describe("hard cap: settled spend + open holds ≤ limit", () => {
  it("holds under any sequence of admit / settle / release / evict / time advance (property)", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 50_000, max: 2_000_000 }),
        fc.constantFrom("daily", "weekly", "monthly", "total"),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("admit" as const), worst: fc.integer({ min: 1, max: 400_000 }) }),
            fc.record({
              op: fc.constant("settle" as const),
              pick: fc.nat(),
              input: fc.nat({ max: 500 }),
              output: fc.nat({ max: 500 }),
            }),
            fc.record({ op: fc.constant("release" as const), pick: fc.nat() }),
            fc.record({ op: fc.constant("evict" as const) }),
            fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 3 * 86_400_000 }) }),
          ),
          { minLength: 5, maxLength: 25 },
        ),
        async (limitNanos, cycle, ops) => {
          const amount = (limitNanos / 1e9).toFixed(9);
          const { id } = await setupKey({ name: `prop-${run++}`, spend_limit: { amount, cycle } });
          const stub = keyGuard(env, id);
          let now = Date.UTC(2028, 1, 27, 12);
          const setClock = () => runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => now));
          await setClock();
          const secretHash = (await stub.inspect()).config!.secretHash;
          const open: { id: string; worst: number }[] = [];
          let n = 0;
          for (const step of ops) {
            if (step.op === "admit") {
              const input = admitInput(secretHash, step.worst, {
                requestId: `req_p${n++}`,
                maxInflight: 1000,
                holdTtlMs: 10 * 86_400_000,
              });
              const r = await stub.admit(input);
              if (r.ok) open.push({ id: input.requestId, worst: step.worst });
              else expect(r.code).toBe("spend_limit_exceeded");
            } else if ((step.op === "settle" || step.op === "release") && open.length) {
              const [h] = open.splice(step.pick % open.length, 1);
              // Real usage never exceeds the worst case the hold was sized for.
              const usage = step.op === "settle" ? { input_tokens: step.input, output_tokens: step.output } : null;
              const cost = usage
                ? Math.ceil((usage.input_tokens * PRICES.input + usage.output_tokens * PRICES.output) / 1e6)
                : 0;
              const fits = usage === null || cost <= h!.worst;
              await stub.settle({
                requestId: h!.id,
                status: usage ? "completed" : "error",
                usage: fits ? usage : null,
                fallbackNanos: 0,
                responseId: null,
                httpStatus: 200,
                latencyMs: 1,
              });
              // replays change nothing
              await stub.settle({
                requestId: h!.id,
                status: "completed",
                usage: { input_tokens: 9999, output_tokens: 9999 },
                fallbackNanos: 0,
                responseId: null,
                httpStatus: 200,
                latencyMs: 1,
              });
            } else if (step.op === "evict") {
              await evictDurableObject(stub);
              await setClock();
            } else if (step.op === "advance") {
              now += step.ms;
              await setClock();
            }
            const s = await stub.snapshot();
            expect(s.currentSpendNanos + s.heldNanos).toBeLessThanOrEqual(limitNanos);
            expect(s.openHolds).toBe(open.length);
            expect(s.heldNanos).toBe(open.reduce((a, h) => a + h.worst, 0));
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("200 simultaneous requests at a key whose budget fits a few dozen: no overspend, nothing lost", async () => {
    // Each request's worst case ≈ $0.000024 and real cost ≈ $0.0000079: the $0.0003 budget fits a few dozen.
    const { wallet, key, id } = await setupKey({ spend_limit: { amount: "0.0003", cycle: "total" } });
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        chat(key, { max_tokens: 12, messages: [{ role: "user", content: `req ${i}` }] }),
      ),
    );
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status !== 200);
    expect(ok.length).toBeGreaterThanOrEqual(12);
    expect(refused.length).toBeGreaterThan(100);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.headers.get("x-should-retry")).toBe("false");
      expect((await json(r)).error.code).toBe("spend_limit_exceeded");
    }
    let charged = 0;
    for (const r of ok) {
      charged += Math.round(Number(r.headers.get("x-spendgate-cost")) * 1e9);
      await r.text();
    }
    await settled(id);
    const snap = await keyGuard(env, id).snapshot();
    expect(snap.heldNanos).toBe(0);
    expect(snap.totalSpendNanos).toBe(charged);
    expect(snap.totalSpendNanos).toBeLessThanOrEqual(300_000);
    expect(snap.totalRequests).toBe(ok.length);
    // Every admitted request has exactly one ledger row, once flushed.
    for (let i = 0; i < 10; i++) {
      const rows = await d1All(
        `SELECT count(*) AS n, sum(cost_nanos) AS total FROM requests WHERE spend_key_id = '${id}'`,
      );
      if (rows[0]!.n === ok.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const [row] = await d1All(
      `SELECT count(*) AS n, sum(cost_nanos) AS total FROM requests WHERE spend_key_id = '${id}'`,
    );
    expect(row).toEqual({ n: ok.length, total: charged });
    const retrieved = await json(await mgmt(wallet.key, "GET", `/spend_keys/${id}`), 200);
    expect(Math.round(Number(retrieved.total_spend) * 1e9)).toBe(charged);
  });

  it("a burst of N among 50 simultaneous requests admits exactly N", async () => {
    const { key } = await setupKey({ rate_limit: { rpm: 1, burst: 7 } });
    const res = await Promise.all(Array.from({ length: 50 }, () => chat(key, { max_tokens: 5 })));
    expect(res.filter((r) => r.status === 200)).toHaveLength(7);
    expect(res.filter((r) => r.status === 429)).toHaveLength(43);
    await Promise.all(res.map((r) => r.text()));
  });
});
