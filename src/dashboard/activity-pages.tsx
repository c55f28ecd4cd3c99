import type { FC } from "hono/jsx";
import { Choice, DayChart, Pager, Usd } from "./layout.tsx";
import { LedgerTable, type LedgerWire } from "./ledger-table.tsx";

export interface RequestFilters {
  spend_key_id?: string | undefined;
  model?: string | undefined;
  status?: string | undefined;
  start?: string | undefined;
  end?: string | undefined;
  run_id?: string | undefined;
}

export const SignIn: FC<{ error?: string | undefined; locked?: boolean }> = (p) => (
  <form method="post" action="/signin" class="stack">
    <p>Sign in with a wallet secret key. It is exchanged for a session and never stored by your browser.</p>
    {p.error && (
      <p class="alert" role="alert" id="secret-error">
        {p.error}
      </p>
    )}
    <label>
      Wallet secret key
      <input
        name="secret_key"
        type="password"
        autocomplete="current-password"
        required
        aria-describedby={p.error ? "secret-error" : undefined}
        disabled={p.locked}
      />
    </label>
    <div class="actions">
      <button class="primary" type="submit" disabled={p.locked}>
        Sign in
      </button>
    </div>
  </form>
);

export const Requests: FC<{
  rows: LedgerWire[];
  keys: { id: string; name: string; revoked: boolean; parent: string | null }[];
  filters: RequestFilters;
  next?: string | undefined;
  error?: string | undefined;
}> = (p) => (
  <>
    <form method="get" action="/requests" class="row" aria-label="Filter requests">
      <label>
        Key
        <select name="spend_key_id">
          <option value="">any</option>
          {p.keys.map((k) => (
            <option value={k.id} selected={p.filters.spend_key_id === k.id}>
              {k.name.length > 60 ? `${k.name.slice(0, 60)}…` : k.name}
              {k.revoked ? " (revoked)" : ""}
            </option>
          ))}
        </select>
      </label>
      <label>
        Model
        <input name="model" value={p.filters.model ?? ""} />
      </label>
      <Choice label="Status" name="status" value={p.filters.status ?? ""} options={["completed", "error", "aborted"]} />
      <label>
        Run
        <input name="run_id" value={p.filters.run_id ?? ""} />
      </label>
      <label>
        From
        <input type="date" name="start" value={p.filters.start ?? ""} />
      </label>
      <label>
        Before
        <input type="date" name="end" value={p.filters.end ?? ""} />
      </label>
      <button type="submit">Filter</button>
    </form>
    {p.error && (
      <p class="alert" role="alert">
        {p.error}
      </p>
    )}
    <LedgerTable
      rows={p.rows}
      keyNames={new Map(p.keys.map((k) => [k.id, k.name]))}
      parents={new Map(p.keys.map((k) => [k.id, k.parent]))}
    />
    <Pager next={p.next} base="/requests" query={{ ...p.filters }} />
  </>
);

export interface UsageWire {
  items: (UsageDay & { model?: string })[];
  totals: { total_requests: number; total_usage_tokens: number; total_cost: string };
}

export interface UsageDay {
  date: string;
  total_requests: number;
  total_usage_tokens: number;
  total_cost: string;
}

export const Usage: FC<{
  start: string;
  end: string;
  days: UsageDay[];
  totals: { total_requests: number; total_usage_tokens: number; total_cost: string };
  models: { model: string; requests: number; tokens: number; cost: string }[];
  error?: string | undefined;
}> = (p) => (
  <>
    <form method="get" action="/usage" class="row" aria-label="Range">
      <label>
        From
        <input type="date" name="start" value={p.start} />
      </label>
      <label>
        To (inclusive)
        <input type="date" name="end" value={p.end} />
      </label>
      <button type="submit">Show</button>
    </form>
    {p.error && (
      <p class="alert" role="alert">
        {p.error}
      </p>
    )}
    <div class="cards">
      <div class="card">
        <div class="muted small">Spend</div>
        <div class="value">
          <Usd amount={p.totals.total_cost} />
        </div>
      </div>
      <div class="card">
        <div class="muted small">Requests</div>
        <div class="value">{p.totals.total_requests.toLocaleString("en-US")}</div>
      </div>
      <div class="card">
        <div class="muted small">Tokens</div>
        <div class="value">{p.totals.total_usage_tokens.toLocaleString("en-US")}</div>
      </div>
    </div>
    <DayChart
      days={p.days.map((d) => ({ date: d.date, cost: d.total_cost }))}
      total={p.totals.total_cost}
      label="Spend per day"
    />
    <h2>Per model</h2>
    <TotalsTable
      first="Model"
      rows={p.models.map((m) => ({ label: m.model, requests: m.requests, tokens: m.tokens, cost: m.cost }))}
    />
    <h2>Per day</h2>
    <TotalsTable
      first="Day (UTC)"
      rows={p.days.map((d) => ({
        label: d.date,
        requests: d.total_requests,
        tokens: d.total_usage_tokens,
        cost: d.total_cost,
      }))}
    />
  </>
);

/** Requests, tokens and spend per row (a model, a day). */
const TotalsTable: FC<{ first: string; rows: { label: string; requests: number; tokens: number; cost: string }[] }> = (
  p,
) => (
  <div class="scroll">
    <table class="responsive">
      <thead>
        <tr>
          <th>{p.first}</th>
          <th class="num">Requests</th>
          <th class="num">Tokens</th>
          <th class="num">Spend</th>
        </tr>
      </thead>
      <tbody>
        {p.rows.map((r) => (
          <tr>
            <td data-label={p.first}>{r.label}</td>
            <td data-label="Requests" class="num">
              {r.requests.toLocaleString("en-US")}
            </td>
            <td data-label="Tokens" class="num">
              {r.tokens.toLocaleString("en-US")}
            </td>
            <td data-label="Spend" class="num">
              <Usd amount={r.cost} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);
