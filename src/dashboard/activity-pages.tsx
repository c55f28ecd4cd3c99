import type { FC } from "hono/jsx";
import { DayChart, Pager, Usd } from "./layout.tsx";
import { LedgerTable, type LedgerWire } from "./ledger-table.tsx";

export interface RequestFilters {
  spend_key_id?: string | undefined;
  model?: string | undefined;
  status?: string | undefined;
  start?: string | undefined;
  end?: string | undefined;
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
  keys: { id: string; name: string }[];
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
              {k.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Model
        <input name="model" value={p.filters.model ?? ""} />
      </label>
      <label>
        Status
        <select name="status">
          {["", "completed", "error", "aborted"].map((s) => (
            <option value={s} selected={(p.filters.status ?? "") === s}>
              {s || "any"}
            </option>
          ))}
        </select>
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
    <LedgerTable rows={p.rows} keyNames={new Map(p.keys.map((k) => [k.id, k.name]))} />
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
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Model</th>
            <th class="num">Requests</th>
            <th class="num">Tokens</th>
            <th class="num">Spend</th>
          </tr>
        </thead>
        <tbody>
          {p.models.map((m) => (
            <tr>
              <td data-label="Model">{m.model}</td>
              <td data-label="Requests" class="num">
                {m.requests.toLocaleString("en-US")}
              </td>
              <td data-label="Tokens" class="num">
                {m.tokens.toLocaleString("en-US")}
              </td>
              <td data-label="Spend" class="num">
                <Usd amount={m.cost} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    <h2>Per day</h2>
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Day (UTC)</th>
            <th class="num">Requests</th>
            <th class="num">Tokens</th>
            <th class="num">Spend</th>
          </tr>
        </thead>
        <tbody>
          {p.days.map((d) => (
            <tr>
              <td data-label="Day">{d.date}</td>
              <td data-label="Requests" class="num">
                {d.total_requests.toLocaleString("en-US")}
              </td>
              <td data-label="Tokens" class="num">
                {d.total_usage_tokens.toLocaleString("en-US")}
              </td>
              <td data-label="Spend" class="num">
                <Usd amount={d.total_cost} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </>
);
