import { and, eq, gte, lt, or } from "drizzle-orm";
import { database, walletD1 } from "../db/client.ts";
import { requests } from "../db/schema.ts";
import { ERRORS, listOf } from "../lib/api-schemas.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { formatFemtoUsd, formatUsd } from "../lib/money.ts";
import { ApiRouter } from "../lib/openapi.ts";
import { LedgerEntry, RequestIdParam, RequestsQuery } from "./schemas.ts";

type Row = typeof requests.$inferSelect;

/** A ledger row on the wire: component costs exact, `cost` = what was charged (rounded up to 1 nano-dollar). */
export function serializeLedgerRow(r: Row) {
  // Rows with a usage record count media in input_tokens; older rows kept it apart.
  const input = r.usage
    ? r.inputTokens + r.cacheReadTokens + r.cacheWriteTokens
    : r.inputTokens + r.cacheReadTokens + r.cacheWriteTokens + r.mediaInputTokens;
  const priced = r.costNote === null;
  return {
    request_id: r.requestId,
    spend_key_id: r.spendKeyId,
    status: r.status,
    provider: r.provider,
    model: r.model,
    priced_model: r.pricedModel ?? r.model,
    endpoint: r.endpoint,
    response_id: r.responseId,
    model_usage: {
      input_tokens: input,
      output_tokens: r.outputTokens,
      total_tokens: input + r.outputTokens,
      cache_read_tokens: r.cacheReadTokens,
      cache_write_tokens: r.cacheWriteTokens,
      reasoning_tokens: r.reasoningTokens,
      media_input_tokens: r.mediaInputTokens,
      units: r.units,
      input_cost: formatFemtoUsd(BigInt(r.inputCostFemtos)),
      output_cost: formatFemtoUsd(BigInt(r.outputCostFemtos)),
      fee_cost: formatFemtoUsd(BigInt(r.feeCostFemtos)),
      total_cost: priced ? formatUsd(r.costNanos) : null,
      usage: r.usage ?? {},
    },
    cost: priced ? formatUsd(r.costNanos) : null,
    cost_note: r.costNote,
    usage_known: r.usageKnown,
    overage: r.overage,
    stream: r.stream,
    http_status: r.httpStatus,
    latency_ms: r.latencyMs,
    metadata: r.metadata,
    run_id: r.runId ?? null,
    created_at: new Date(r.createdAt).toISOString(),
  };
}

const tags = ["Requests"];
const security = "walletKey" as const;

export const requestRoutes = new ApiRouter()
  .route(
    {
      method: "get",
      path: "/requests",
      summary: "The per-request ledger, newest first (the last RETENTION_DAYS days; older rows are archived to R2)",
      tags,
      security,
      query: RequestsQuery,
      responses: {
        200: {
          description:
            "Ledger rows: each lands about 1–2 s after its request settles and stays RETENTION_DAYS (default 30) " +
            "whole days; older rows are in the R2 archive (ledger/v1/date=YYYY-MM-DD/*.ndjson.gz).",
          schema: listOf("RequestList", LedgerEntry),
        },
        ...ERRORS,
      },
    },
    async (c, { query }) => {
      const { spend_key_id: key, model, status, start, end, run_id: run } = query;
      const mine = and(
        eq(requests.walletId, c.get("walletId")),
        key ? eq(requests.spendKeyId, key) : undefined,
        model ? or(eq(requests.model, model), eq(requests.pricedModel, model)) : undefined,
        status ? eq(requests.status, status) : undefined,
        run ? eq(requests.runId, run) : undefined,
        start ? gte(requests.createdAt, Date.parse(start)) : undefined,
        end ? lt(requests.createdAt, Date.parse(end)) : undefined,
      );
      return c.json(
        await listPage(
          walletD1(c.env, c.get("walletId")),
          requests,
          requests.requestId,
          mine,
          query,
          serializeLedgerRow,
        ),
      );
    },
  )
  .route(
    {
      method: "get",
      path: "/requests/{request_id}",
      summary: "One ledger row",
      tags,
      security,
      params: RequestIdParam,
      responses: { 200: { description: "The ledger row", schema: LedgerEntry }, ...ERRORS },
    },
    async (c, { params: { request_id: id } }) => {
      const row = await database(walletD1(c.env, c.get("walletId")))
        .select()
        .from(requests)
        .where(and(eq(requests.requestId, id), eq(requests.walletId, c.get("walletId"))))
        .get();
      if (!row) throw new ApiError("not_found", `No request with id '${id}'.`, { param: "request_id" });
      return c.json(serializeLedgerRow(row));
    },
  );
