import { Hono } from "hono";
import { formatUsd, parseUsd } from "../lib/money.ts";
import { type RequestFilters, Requests, Usage, type UsageWire } from "./activity-pages.tsx";
import { api } from "./api.ts";
import type { DashboardEnv } from "./env.ts";
import { keyNames } from "./key-data.ts";
import type { LedgerWire } from "./ledger-table.tsx";
import { page } from "./page.tsx";

/** The ledger and usage pages. */
export const activityRoutes = new Hono<DashboardEnv>();

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

activityRoutes.get("/requests", async (c) => {
  const wallet = c.get("session").walletId;
  const filters: RequestFilters = {};
  const q = new URLSearchParams({ limit: "50" });
  for (const k of ["spend_key_id", "model", "status", "start", "end", "run_id"] as const) {
    const v = c.req.query(k)?.trim();
    if (v) {
      filters[k] = v;
      q.set(k, v);
    }
  }
  const cursor = c.req.query("cursor");
  if (cursor) q.set("cursor", cursor);
  // Every key's name, revoked keys' too: their requests stay in the ledger.
  const [rows, names] = await Promise.all([
    api<{ data: LedgerWire[]; next_cursor?: string }>(c, wallet, "GET", `/requests?${q}`),
    keyNames(c),
  ]);
  const body = (
    <Requests
      rows={rows.ok ? rows.body.data : []}
      keys={names}
      filters={filters}
      next={rows.ok ? rows.body.next_cursor : undefined}
      error={rows.error?.message}
    />
  );
  return page(c, "Requests", body, rows.ok ? 200 : 400);
});

activityRoutes.get("/usage", async (c) => {
  const wallet = c.get("session").walletId;
  const end = c.req.query("end") || day(Date.now());
  const start = c.req.query("start") || day(Date.parse(end) - 29 * 86_400_000);
  // `end` is inclusive on this page; the API's end is the instant after.
  const until = Number.isNaN(Date.parse(end)) ? end : day(Date.parse(end) + 86_400_000);
  const range = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(until)}`;
  const [daily, byModel] = await Promise.all([
    api<UsageWire>(c, wallet, "GET", `/usage?${range}`),
    api<UsageWire>(c, wallet, "GET", `/usage?${range}&group_by=model`),
  ]);
  const zero = { total_requests: 0, total_usage_tokens: 0, total_cost: "0.00" };
  if (!daily.ok) {
    const body = <Usage start={start} end={end} days={[]} totals={zero} models={[]} error={daily.error?.message} />;
    return page(c, "Usage", body, 400);
  }
  // Per model over the range, summed exactly in nano-dollars.
  const models = new Map<string, { requests: number; tokens: number; nanos: number }>();
  for (const item of byModel.body.items ?? []) {
    const name = item.model ?? "";
    const m = models.get(name) ?? { requests: 0, tokens: 0, nanos: 0 };
    m.requests += item.total_requests;
    m.tokens += item.total_usage_tokens;
    m.nanos += parseUsd(item.total_cost) ?? 0;
    models.set(name, m);
  }
  const perModel = [...models.entries()]
    .map(([model, m]) => ({ model, requests: m.requests, tokens: m.tokens, cost: formatUsd(m.nanos) }))
    .sort((a, b) => (parseUsd(b.cost) ?? 0) - (parseUsd(a.cost) ?? 0));
  const days = daily.body.items.filter((d) => d.date < until);
  return page(c, "Usage", <Usage start={start} end={end} days={days} totals={daily.body.totals} models={perModel} />);
});
