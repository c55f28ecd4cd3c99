import * as z from "zod/mini";
import { rawRowsFrom } from "../bookkeeping/retention.ts";
import { walletD1 } from "../db/client.ts";
import { ERRORS, Instant } from "../lib/api-schemas.ts";
import { ApiError } from "../lib/errors.ts";
import { formatUsd } from "../lib/money.ts";
import { ApiRouter, named } from "../lib/openapi.ts";
import { DAY_MS } from "../lib/time.ts";

const MAX_RANGE_DAYS = 366;

/** `metadata_filters`: a JSON array of `[key, value]` string pairs (as the Lava SDK sends it), all must match. */
const MetadataFilters = z.pipe(
  z.string().check(z.maxLength(4_000)),
  z.transform((text, ctx) => {
    try {
      const parsed: unknown = JSON.parse(text);
      if (
        Array.isArray(parsed) &&
        parsed.length <= 16 &&
        parsed.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string")
      ) {
        return parsed as [string, string][];
      }
    } catch {
      // reported below
    }
    ctx.issues.push({
      code: "custom",
      input: text,
      message: "must be a JSON array of at most 16 [key, value] string pairs",
    });
    return z.NEVER;
  }),
);

const UsageQuery = z.object({
  start: Instant,
  end: z.optional(Instant),
  metadata_filters: z.optional(MetadataFilters),
  spend_key_id: z.optional(z.string().check(z.maxLength(100))),
  model: z.optional(z.string().check(z.maxLength(200))),
  group_by: z.optional(z.enum(["model", "spend_key", "run"])),
});

const Totals = {
  total_requests: z.number(),
  total_usage_tokens: z.number(),
  total_cost: z.string(),
  total_charge: z.string(),
};
export const Usage = named(
  "Usage",
  z.object({
    items: z.array(
      z.object({
        date: z.string(),
        start: z.string(),
        end: z.string(),
        model: z.optional(z.string()),
        spend_key_id: z.optional(z.string()),
        /** with `group_by=run`: the run the requests named (`x-spendgate-run`) */
        run: z.optional(z.string()),
        ...Totals,
      }),
    ),
    totals: z.object(Totals),
  }),
);

type Query = z.infer<typeof UsageQuery>;

interface Row {
  day: number;
  grp: string | null;
  n: number;
  tokens: number;
  cost: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const TOKENS = "input_tokens + cache_read_tokens + cache_write_tokens + media_input_tokens + output_tokens";

/**
 * Whole UTC days come from the rollups (`usage_daily`, exact and kept for ever); the raw ledger answers only what
 * rollups cannot: the partial days at either end of the range, and every day when filtering by metadata. Raw rows
 * are complete only from the retention window's start, so such a question about earlier times is a 400 that
 * names the window. Both reads go in one round trip. Rollups carry no run, so `group_by=run` reads raw rows
 * throughout (only the rows that named a run) and, like metadata filters, answers only inside the window.
 */
async function usageRows(db: D1Database, walletId: string, query: Query, from: number, to: number): Promise<Row[]> {
  const group = { model: "model", spend_key: "spend_key_id", run: "run_id", none: "''" }[query.group_by ?? "none"];
  const filters: string[] = [];
  const values: (string | number)[] = [];
  for (const [column, value] of [
    ["spend_key_id", query.spend_key_id],
    ["model", query.model],
  ] as const) {
    if (value === undefined) continue;
    filters.push(`${column} = ?`);
    values.push(value);
  }
  if (query.group_by === "run") filters.push("run_id IS NOT NULL");
  const byMetadata = (query.metadata_filters ?? []).length > 0;
  const rawOnly = byMetadata || query.group_by === "run";
  // Whole days inside the range, [firstDay, endDay); none when metadata filters or runs need raw rows throughout.
  const firstDay = rawOnly ? 0 : Math.ceil(from / DAY_MS);
  const endDay = rawOnly ? 0 : Math.max(firstDay, Math.floor(to / DAY_MS));
  const raw: [number, number][] = rawOnly
    ? [[from, to]]
    : [
        [from, Math.min(to, firstDay * DAY_MS)],
        [Math.max(from, endDay * DAY_MS), to],
      ];
  const spans = raw.filter(([a, b]) => b > a);
  const rawFrom = spans.length ? await rawRowsFrom(db) : 0;
  if (spans.some(([a]) => a < rawFrom)) {
    const since = iso(rawFrom);
    const why = rawOnly
      ? `${byMetadata ? "metadata_filters need" : "group_by=run needs"} the raw ledger, which is kept from ${since}; ` +
        "start at or after it"
      : `before ${since} usage is kept per UTC day: start and end must fall on midnight UTC there`;
    throw new ApiError("invalid_request", `start: ${why} (older rows are in the R2 archive).`, { param: "start" });
  }
  const statements: D1PreparedStatement[] = [];
  if (endDay > firstDay) {
    statements.push(
      db
        .prepare(
          `SELECT day, ${group} AS grp, sum(requests) AS n, sum(${TOKENS}) AS tokens, sum(cost_nanos) AS cost
          FROM usage_daily WHERE ${["wallet_id = ?", "day >= ?", "day < ?", ...filters].join(" AND ")}
          GROUP BY 1, 2`,
        )
        .bind(walletId, firstDay, endDay, ...values),
    );
  }
  for (const [a, b] of spans) {
    const where = ["wallet_id = ?", "created_at >= ?", "created_at < ?", ...filters];
    const params: (string | number)[] = [walletId, a, b, ...values];
    for (const [key, value] of query.metadata_filters ?? []) {
      // The key goes in as a bound JSON path, quoted, so no key can change the query.
      where.push("json_extract(metadata, ?) = ?");
      params.push(`$."${key.replace(/["\\]/g, "")}"`, value);
    }
    // The day is an integer division of the millisecond timestamp by an integer literal.
    statements.push(
      db
        .prepare(
          `SELECT created_at / ${DAY_MS} AS day, ${group} AS grp, count(*) AS n, sum(${TOKENS}) AS tokens,
          sum(cost_nanos) AS cost FROM requests WHERE ${where.join(" AND ")} GROUP BY 1, 2`,
        )
        .bind(...params),
    );
  }
  if (!statements.length) return [];
  const merged = new Map<string, Row>();
  for (const { results } of await db.batch<Row>(statements)) {
    for (const r of results) {
      const k = `${r.day}\u0000${r.grp}`;
      const had = merged.get(k);
      merged.set(k, had ? { ...had, n: had.n + r.n, tokens: had.tokens + r.tokens, cost: had.cost + r.cost } : r);
    }
  }
  const order = (a: Row, b: Row) => a.day - b.day || ((a.grp ?? "") < (b.grp ?? "") ? -1 : a.grp === b.grp ? 0 : 1);
  return [...merged.values()].sort(order);
}

/**
 * `GET /v1/usage` (the Lava SDK's `usage.retrieve`): the wallet's requests per UTC day between `start` and `end`
 * (default now; at most a year), with totals. Spendgate charges at cost, so `total_charge` = `total_cost`.
 */
export const usageRoutes = new ApiRouter().route(
  {
    method: "get",
    path: "/usage",
    summary: "Requests, tokens and cost per UTC day, optionally per model or per spend key",
    tags: ["Usage"],
    security: "walletKey",
    query: UsageQuery,
    responses: {
      200: {
        description:
          "Usage per day and in total: whole days from exact daily rollups kept for ever; partial days and " +
          "metadata_filters from the raw ledger, which covers the retention window only (400 before it)",
        schema: Usage,
      },
      ...ERRORS,
    },
  },
  async (c, { query }) => {
    const from = Date.parse(query.start);
    const to = query.end === undefined ? Date.now() : Date.parse(query.end);
    if (to <= from) throw new ApiError("invalid_request", "end: must be after start", { param: "end" });
    if (to - from > MAX_RANGE_DAYS * DAY_MS) {
      throw new ApiError("invalid_request", `end: the range may span at most ${MAX_RANGE_DAYS} days`, { param: "end" });
    }
    const rows = await usageRows(walletD1(c.env, c.get("walletId")), c.get("walletId"), query, from, to);
    const money = (nanos: number) => formatUsd(nanos);
    const item = (day: number, r: Row | undefined) => ({
      date: iso(day * DAY_MS).slice(0, 10),
      start: iso(Math.max(from, day * DAY_MS)),
      end: iso(Math.min(to, (day + 1) * DAY_MS)),
      ...(query.group_by === "model" && r?.grp ? { model: r.grp } : {}),
      ...(query.group_by === "spend_key" && r?.grp ? { spend_key_id: r.grp } : {}),
      ...(query.group_by === "run" && r?.grp ? { run: r.grp } : {}),
      total_requests: r?.n ?? 0,
      total_usage_tokens: r?.tokens ?? 0,
      total_cost: money(r?.cost ?? 0),
      total_charge: money(r?.cost ?? 0),
    });
    // Without grouping every day of the range is listed (zeros included); grouped, only what has requests.
    let items: ReturnType<typeof item>[];
    if (query.group_by) {
      items = rows.map((r) => item(r.day, r));
    } else {
      const byDay = new Map(rows.map((r) => [r.day, r]));
      items = [];
      for (let day = Math.floor(from / DAY_MS); day * DAY_MS < to; day++) items.push(item(day, byDay.get(day)));
    }
    const cost = rows.reduce((sum, r) => sum + r.cost, 0);
    return c.json({
      items,
      totals: {
        total_requests: rows.reduce((sum, r) => sum + r.n, 0),
        total_usage_tokens: rows.reduce((sum, r) => sum + r.tokens, 0),
        total_cost: money(cost),
        total_charge: money(cost),
      },
    });
  },
);
