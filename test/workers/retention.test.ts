import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ROW_BYTES, stepRetention } from "../../src/bookkeeping/retention.ts";
import { writeToD1 } from "../../src/bookkeeping/write.ts";
import { LEDGER_COLUMNS } from "../../src/db/ledger-columns.ts";
import type { LedgerRow } from "../../src/db/schema.ts";
import type { BooksMessage } from "../../src/guard/books.ts";
import { DAY_MS } from "../../src/lib/time.ts";
import { createWallet, d1All, faultyD1, json, mgmt, withD1 } from "./helpers.ts";

/**
 * Ledger retention over ~200 simulated days with a 30-day window: raw rows leave D1 for the R2 archive exactly
 * once, the rollups keep their exact totals, and usage answers the same before and after.
 */

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
  vi.restoreAllMocks();
});

const DAYS = 200;
const WINDOW = 30;
const MODELS = ["gpt-4o-mini", "claude-sonnet-4-20250514"];
const KEYS = ["spk_retentionAAAAAAAA", "spk_retentionBBBBBBBB"];

/** A ledger row as the guard makes it; amounts vary with `n` so no two days sum alike. */
function row(walletId: string, day: number, n: number): LedgerRow {
  const input = 100 + ((n * 37) % 900);
  return {
    requestId: `req_ret_${walletId.slice(-6)}_${day}_${n}`,
    spendKeyId: KEYS[n % 2]!,
    walletId,
    status: n % 11 ? "completed" : "error",
    provider: n % 3 ? "openai" : "anthropic",
    model: MODELS[n % 3 ? 0 : 1]!,
    pricedModel: MODELS[n % 3 ? 0 : 1]!,
    endpoint: "/v1/chat/completions",
    responseId: `resp_${n}`,
    httpStatus: 200,
    inputTokens: input,
    outputTokens: n % 50,
    cacheReadTokens: n % 7,
    cacheWriteTokens: n % 5,
    reasoningTokens: n % 3,
    mediaInputTokens: n % 4,
    units: 0,
    usage: { input_tokens: input, output_tokens: n % 50 },
    inputCostFemtos: String(input * 150_000_000),
    outputCostFemtos: "0",
    feeCostFemtos: "0",
    costNote: null,
    costNanos: 1_000 + ((n * 7919) % 100_003),
    usageKnown: true,
    overage: false,
    stream: n % 2 === 0,
    latencyMs: n % 400,
    metadata: { run: `run-${n % 4}` },
    // Spread over the day, not all at midnight.
    createdAt: day * DAY_MS + ((n * 3_600_007) % DAY_MS),
  };
}

/** Rows packed the way a KeyGuard packs them: arrays in column order, JSON as text, booleans as 0/1. */
function message(walletId: string, rows: LedgerRow[]): BooksMessage {
  const packed = rows.map((r) =>
    LEDGER_COLUMNS.map(({ key }) => {
      const v = (r as Record<string, unknown>)[key];
      return typeof v === "boolean" ? Number(v) : v !== null && typeof v === "object" ? JSON.stringify(v) : (v ?? null);
    }),
  );
  return {
    v: 1,
    keyId: KEYS[0]!,
    walletId,
    rows: JSON.stringify(packed),
    rowIds: JSON.stringify(rows.map((r) => r.requestId)),
    record: null,
    counters: null,
    events: [],
  };
}

async function gunzipLines(body: ArrayBuffer): Promise<Record<string, unknown>[]> {
  const text = await new Response(new Blob([body]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("retention: a 30-day raw window, exact rollups, an R2 archive", () => {
  it("keeps the window's rows, archives every other row exactly once, and usage answers the same", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const wallet = await createWallet("retention");
    const w = wallet.walletId;
    const day0 = Math.floor(Date.now() / DAY_MS) - 400;
    const all = new Map<string, LedgerRow>();
    // 200 days of ledger, 12 rows a day, written by the bookkeeping consumer's own statements in daily batches;
    // every tenth day's batch arrives twice (a replayed message), which must add nothing.
    for (let d = 0; d < DAYS; d++) {
      const rows = Array.from({ length: 12 }, (_, n) => row(w, day0 + d, d * 12 + n));
      for (const r of rows) all.set(r.requestId, r);
      await writeToD1(env.DB, [message(w, rows)], Date.now());
      if (d % 10 === 0) await writeToD1(env.DB, [message(w, rows)], Date.now());
    }
    const at = (ms: number) => new Date(ms).toISOString();
    const range = `start=${at(day0 * DAY_MS)}&end=${at((day0 + DAYS) * DAY_MS)}`;
    const usage = async (extra = "") => json(await mgmt(wallet.key, "GET", `/usage?${range}${extra}`), 200);
    const before = {
      plain: await usage(),
      byModel: await usage("&group_by=model"),
      byKey: await usage("&group_by=spend_key"),
    };
    expect(before.plain.totals.total_requests).toBe(all.size);

    // The clock runs from day 0 to day 200; retention steps as the cron would. Once, the delete after an archive
    // write fails (a crash between the two); once, a late row for an archived day arrives.
    const faulty = faultyD1(env.DB);
    restore = withD1(faulty.db);
    let crashed = false;
    let late: LedgerRow | undefined;
    for (let d = 0; d <= DAYS; d++) {
      const now = (day0 + d) * DAY_MS + 3_600_000;
      if (d === 90) {
        faulty.state.refuseWhen = (sql) => !crashed && /^DELETE FROM requests/.test(sql) && (crashed = true);
      }
      if (d === 120) {
        late = row(w, day0 + 40, 99_999);
        all.set(late.requestId, late);
        await writeToD1(env.DB, [message(w, [late])], Date.now());
      }
      for (let i = 0; i < 4; i++) if (!(await stepRetention(env, now)).parts.length) break;
    }
    expect(crashed).toBe(true);
    faulty.state.refuseWhen = null;
    const today = day0 + DAYS;
    // Steps at "today" until nothing is left to do (the crashed part is finished by the next step).
    for (let i = 0; i < 50 && (await stepRetention(env, today * DAY_MS + 3_600_000)).parts.length; i++);

    // D1 keeps only the window's raw rows: the 30 whole days before today (and today's, if any).
    const kept = await d1All(`SELECT request_id, created_at FROM requests WHERE wallet_id = '${w}'`);
    const inWindow = [...all.values()].filter((r) => Math.floor(r.createdAt / DAY_MS) >= today - WINDOW);
    expect(kept.map((r) => r.request_id).sort()).toEqual(inWindow.map((r) => r.requestId).sort());
    expect((await d1All(`SELECT count(*) AS n FROM requests WHERE archive_part IS NOT NULL`))[0]!.n).toBe(0);

    // The archive holds every removed row exactly once, equal to what D1 held.
    const archived: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    do {
      const page = await env.ARCHIVE.list({ prefix: "ledger/v1/", cursor });
      for (const o of page.objects) {
        const got = await env.ARCHIVE.get(o.key);
        const lines = await gunzipLines(await got!.arrayBuffer());
        expect(got!.customMetadata?.rows).toBe(String(lines.length));
        // Each object sits under the UTC day of its rows.
        for (const l of lines)
          expect(o.key).toContain(`date=${new Date(Number(l.created_at)).toISOString().slice(0, 10)}/`);
        archived.push(...lines.filter((l) => l.wallet_id === w));
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    const removed = [...all.values()].filter((r) => Math.floor(r.createdAt / DAY_MS) < today - WINDOW);
    expect(archived).toHaveLength(removed.length);
    expect(new Set(archived.map((a) => a.request_id)).size).toBe(removed.length);
    for (const r of removed) {
      const a = archived.find((x) => x.request_id === r.requestId)!;
      expect(a).toMatchObject({
        spend_key_id: r.spendKeyId,
        model: r.model,
        cost_nanos: r.costNanos,
        input_tokens: r.inputTokens,
        stream: r.stream,
        metadata: r.metadata,
        usage: r.usage,
        created_at: r.createdAt,
      });
    }

    // The rollups equal the sums of every row ever written (raw or archived), exactly, per key × model × day.
    const sums = new Map<string, number[]>();
    for (const r of all.values()) {
      const k = `${Math.floor(r.createdAt / DAY_MS)}|${r.spendKeyId}|${r.model}`;
      const s = sums.get(k) ?? [0, 0, 0, 0, 0, 0, 0, 0];
      const add = [1, r.inputTokens, r.outputTokens, r.cacheReadTokens, r.cacheWriteTokens, r.reasoningTokens];
      for (const [i, v] of [...add, r.mediaInputTokens, r.costNanos].entries()) s[i]! += v ?? 0;
      sums.set(k, s);
    }
    const rollups = await d1All(`SELECT * FROM usage_daily WHERE wallet_id = '${w}'`);
    expect(rollups).toHaveLength(sums.size);
    for (const u of rollups) {
      const cols = ["requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"];
      const got = [...cols, "reasoning_tokens", "media_input_tokens", "cost_nanos"].map((c) => u[c]);
      expect(got).toEqual(sums.get(`${u.day}|${u.spend_key_id}|${u.model}`));
    }

    // Usage answers the same as before archiving, plus the late row.
    restore();
    restore = undefined;
    const after = {
      plain: await usage(),
      byModel: await usage("&group_by=model"),
      byKey: await usage("&group_by=spend_key"),
    };
    const lateCost = late!.costNanos / 1e9;
    expect(after.plain.totals.total_requests).toBe(before.plain.totals.total_requests + 1);
    expect(Number(after.plain.totals.total_cost)).toBeCloseTo(Number(before.plain.totals.total_cost) + lateCost, 9);
    // Day by day and group by group, the same figures; the late row's day has one more request.
    const lateDay = new Date(late!.createdAt).toISOString().slice(0, 10);
    for (const g of ["plain", "byModel", "byKey"] as const) {
      expect(after[g].items.filter((i: { date: string }) => i.date !== lateDay)).toEqual(
        before[g].items.filter((i: { date: string }) => i.date !== lateDay),
      );
    }

    // What rollups cannot answer before the window is a 400 that names the window.
    const early = `start=${at((day0 + 10) * DAY_MS)}&end=${at((day0 + 20) * DAY_MS)}`;
    const run1 = `&metadata_filters=${encodeURIComponent('[["run","run-1"]]')}`;
    expect((await usage()).totals.total_requests).toBe(all.size);
    const filtered = await mgmt(wallet.key, "GET", `/usage?${early}${run1}`);
    expect(filtered.status).toBe(400);
    expect(await filtered.text()).toMatch(/kept from \d{4}-\d\d-\d\dT/);
    const partial = await mgmt(
      wallet.key,
      "GET",
      `/usage?start=${at((day0 + 10) * DAY_MS + 5)}&end=${at((day0 + 20) * DAY_MS)}`,
    );
    expect(partial.status).toBe(400);
    // Inside the window, metadata filters read the raw rows.
    const recent = new Date((today - WINDOW) * DAY_MS).toISOString();
    const q = `/usage?start=${recent}&end=${new Date(today * DAY_MS).toISOString()}`;
    const byRun = await json(await mgmt(wallet.key, "GET", `${q}${run1}`), 200);
    expect(byRun.totals.total_requests).toBe(inWindow.filter((r) => r.metadata.run === "run-1").length);
  }, 240_000);

  it("archives the oldest days first once raw rows outgrow the size budget, never today's", async () => {
    const wallet = await createWallet("budget");
    const today = Math.floor(Date.now() / DAY_MS);
    // Five recent days of 20 rows, all well inside the 30-day window; a budget of 50 rows' bytes. (Older rows
    // left by the test above go first.)
    for (let d = 4; d >= 0; d--) {
      const rows = Array.from({ length: 20 }, (_, n) => row(wallet.walletId, today - d, n));
      await writeToD1(env.DB, [message(wallet.walletId, rows)], Date.now());
    }
    const small = { ...env, RETENTION_MAX_BYTES: String(ROW_BYTES * 50) };
    for (let i = 0; i < 20 && (await stepRetention(small, Date.now())).parts.length; i++);
    const days = await d1All("SELECT created_at / 86400000 AS day, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1");
    // 100 → 80 → 60 → 40 rows: the three oldest days left, the two newest (today among them) stayed.
    expect(days).toEqual([
      { day: today - 1, n: 20 },
      { day: today, n: 20 },
    ]);
  });
});
