import * as z from "zod/mini";
import { ApiError } from "../lib/errors.ts";
import { formatUsd } from "../lib/money.ts";
import { ApiRouter, named } from "../lib/openapi.ts";
import { ERRORS, Instant } from "./schemas.ts";

const DAY_MS = 86_400_000;
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
  group_by: z.optional(z.enum(["model", "spend_key"])),
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
        ...Totals,
      }),
    ),
    totals: z.object(Totals),
  }),
);

interface Row {
  day: number;
  grp: string | null;
  n: number;
  tokens: number;
  cost: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

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
    responses: { 200: { description: "Usage per day and in total", schema: Usage }, ...ERRORS },
  },
  async (c, { query }) => {
    const from = Date.parse(query.start);
    const to = query.end === undefined ? Date.now() : Date.parse(query.end);
    if (to <= from) throw new ApiError("invalid_request", "end: must be after start", { param: "end" });
    if (to - from > MAX_RANGE_DAYS * DAY_MS) {
      throw new ApiError("invalid_request", `end: the range may span at most ${MAX_RANGE_DAYS} days`, { param: "end" });
    }
    const group = query.group_by === "model" ? "model" : query.group_by === "spend_key" ? "spend_key_id" : "''";
    const where = ["wallet_id = ?", "created_at >= ?", "created_at < ?"];
    const params: (string | number)[] = [c.get("walletId"), from, to];
    const add = (clause: string, ...values: (string | number)[]) => {
      where.push(clause);
      params.push(...values);
    };
    if (query.spend_key_id) add("spend_key_id = ?", query.spend_key_id);
    if (query.model) add("model = ?", query.model);
    for (const [key, value] of query.metadata_filters ?? []) {
      // The key goes in as a bound JSON path, quoted, so no key can change the query.
      add("json_extract(metadata, ?) = ?", `$."${key.replace(/["\\]/g, "")}"`, value);
    }
    // The day is an integer division of the millisecond timestamp by an integer literal.
    const { results: rows } = await c.env.DB.prepare(
      `SELECT created_at / ${DAY_MS} AS day, ${group} AS grp, count(*) AS n,
        sum(input_tokens + cache_read_tokens + cache_write_tokens + media_input_tokens + output_tokens) AS tokens,
        sum(cost_nanos) AS cost
      FROM requests WHERE ${where.join(" AND ")}
      GROUP BY 1, 2 ORDER BY 1, 2`,
    )
      .bind(...params)
      .all<Row>();
    const money = (nanos: number) => formatUsd(nanos);
    const item = (day: number, r: Row | undefined) => ({
      date: iso(day * DAY_MS).slice(0, 10),
      start: iso(Math.max(from, day * DAY_MS)),
      end: iso(Math.min(to, (day + 1) * DAY_MS)),
      ...(query.group_by === "model" && r?.grp ? { model: r.grp } : {}),
      ...(query.group_by === "spend_key" && r?.grp ? { spend_key_id: r.grp } : {}),
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
