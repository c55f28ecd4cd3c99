import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { json, mgmt, setupKey } from "./helpers.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1); // 2026-10-01

/** Ledger rows written straight into D1 (the usage API reads only D1). */
async function seed(walletId: string, rows: { key: string; model: string; day: number; cost: number; run?: string }[]) {
  let n = 0;
  for (const r of rows) {
    await env.DB.prepare(
      `INSERT INTO requests (request_id, spend_key_id, wallet_id, status, provider, model, endpoint, input_tokens,
        output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, input_cost_femtos, output_cost_femtos,
        cost_nanos, usage_known, stream, latency_ms, metadata, created_at)
       VALUES (?, ?, ?, 'completed', 'openai', ?, '/v1/chat/completions', 10, 5, 2, 0, 0, '0', '0', ?, 1, 0, 1, ?, ?)`,
    )
      .bind(
        `req_seed_${walletId}_${n++}`,
        r.key,
        walletId,
        r.model,
        r.cost,
        JSON.stringify(r.run ? { run: r.run } : {}),
        T0 + r.day * DAY + 3_600_000,
      )
      .run();
  }
}

describe("GET /v1/usage", () => {
  it("sums requests, tokens and exact cost per UTC day, filtered and grouped, for the wallet only", async () => {
    const { wallet, id } = await setupKey();
    const other = await setupKey();
    await seed(wallet.walletId, [
      { key: id, model: "gpt-4o-mini", day: 0, cost: 1_000_000_001, run: "a" },
      { key: id, model: "gpt-4o", day: 0, cost: 2, run: "b" },
      { key: "spk_other", model: "gpt-4o-mini", day: 2, cost: 5 },
    ]);
    await seed(other.wallet.walletId, [{ key: other.id, model: "gpt-4o-mini", day: 0, cost: 999 }]);
    const q = `start=2026-10-01&end=2026-10-04`;
    const all = await json(await mgmt(wallet.key, "GET", `/usage?${q}`), 200);
    expect(all.items.map((i: any) => [i.date, i.total_requests, i.total_cost])).toEqual([
      ["2026-10-01", 2, "1.000000003"],
      ["2026-10-02", 0, "0.00"],
      ["2026-10-03", 1, "0.000000005"],
    ]);
    expect(all.items[0]).toMatchObject({
      start: "2026-10-01T00:00:00.000Z",
      end: "2026-10-02T00:00:00.000Z",
      total_usage_tokens: 34,
    });
    expect(all.totals).toEqual({
      total_requests: 3,
      total_usage_tokens: 51,
      total_cost: "1.000000008",
      total_charge: "1.000000008",
    });

    const filters = encodeURIComponent(JSON.stringify([["run", "a"]]));
    const byRun = await json(await mgmt(wallet.key, "GET", `/usage?${q}&metadata_filters=${filters}`), 200);
    expect(byRun.totals).toMatchObject({ total_requests: 1, total_cost: "1.000000001" });
    const byKey = await json(await mgmt(wallet.key, "GET", `/usage?${q}&spend_key_id=${id}`), 200);
    expect(byKey.totals.total_requests).toBe(2);
    const byModel = await json(await mgmt(wallet.key, "GET", `/usage?${q}&model=gpt-4o`), 200);
    expect(byModel.totals.total_cost).toBe("0.000000002");
    const grouped = await json(await mgmt(wallet.key, "GET", `/usage?${q}&group_by=model`), 200);
    expect(grouped.items.map((i: any) => [i.date, i.model, i.total_requests])).toEqual([
      ["2026-10-01", "gpt-4o", 1],
      ["2026-10-01", "gpt-4o-mini", 1],
      ["2026-10-03", "gpt-4o-mini", 1],
    ]);
    const perKey = await json(await mgmt(wallet.key, "GET", `/usage?${q}&group_by=spend_key`), 200);
    expect(new Set(perKey.items.map((i: any) => i.spend_key_id))).toEqual(new Set([id, "spk_other"]));
    // A partial first and last day are clamped to the range.
    const partial = await json(
      await mgmt(wallet.key, "GET", "/usage?start=2026-10-01T12:00:00Z&end=2026-10-02T06:00:00Z"),
      200,
    );
    expect(partial.items.map((i: any) => [i.start, i.end])).toEqual([
      ["2026-10-01T12:00:00.000Z", "2026-10-02T00:00:00.000Z"],
      ["2026-10-02T00:00:00.000Z", "2026-10-02T06:00:00.000Z"],
    ]);
    expect(partial.totals.total_requests).toBe(0);
  });

  it("refuses bad input with 400 naming the parameter", async () => {
    const { wallet } = await setupKey();
    const cases: [string, string][] = [
      ["", "start"],
      ["start=yesterday", "start"],
      ["start=2026-02-30", "start"],
      ["start=2026-10-01 00:00", "start"],
      ["start=2026-10-01&end=2026-10-02T00:00:00%2B0100", "end"],
      ["start=2026-10-05&end=2026-10-01", "end"],
      ["start=2025-01-01&end=2026-10-01", "end"],
      ["start=2026-10-01&metadata_filters=%7B%22run%22%3A%22a%22%7D", "metadata_filters"],
      ["start=2026-10-01&group_by=day", "group_by"],
    ];
    for (const [query, param] of cases) {
      const res = await mgmt(wallet.key, "GET", `/usage?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as any).error.param, query).toBe(param);
    }
    expect((await mgmt("sgw_nope", "GET", "/usage?start=2026-10-01")).status).toBe(401);
  });
});
