import type { FC } from "hono/jsx";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../keys/record.ts";
import type { BudgetState, ListedKey } from "./key-data.ts";
import type { KeyWire } from "./key-form.tsx";
import { DayChart, Pager, PostForm, per, ShownOnce, Status, Usd } from "./layout.tsx";
import { LedgerTable, type LedgerWire } from "./ledger-table.tsx";

const when = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "never");

/** A share of a limit as people read it: "<1 %" for a tiny spend rather than "0 %", never "100 %" before it is. */
export function percentOf(current: string, limit: string): { text: string; width: number } {
  const cur = Number(current);
  const max = Number(limit);
  if (!(max > 0) || !(cur > 0)) return { text: "0 %", width: 0 };
  const pct = (cur / max) * 100;
  const text = pct < 1 ? "<1 %" : pct >= 100 ? (pct > 100 ? ">100 %" : "100 %") : `${Math.floor(pct)} %`;
  // Any spend at all shows: a bar of at least 2 % (widths are classes: the CSP allows no inline style).
  return { text, width: Math.min(100, Math.max(2, Math.round(pct))) };
}

/** Spend against its limit: a bar (role=meter) and the figures, exhausted in the colour of danger. */
export const SpendMeter: FC<{ k: ListedKey; state?: BudgetState | null }> = ({ k, state }) => {
  if (!k.spend_limit) {
    return (
      <span>
        <Usd amount={k.current_spend} /> <span class="muted">no limit</span>
      </span>
    );
  }
  const { text, width } = percentOf(k.current_spend, k.spend_limit.amount);
  const spendBound = state?.badge === "Budget exhausted" || state?.badge === "Cannot afford another request";
  const level = spendBound ? "bad" : width >= 80 ? "warn" : "ok";
  return (
    <span class="spend">
      <meter
        class="visually-hidden"
        min={0}
        max={Number(k.spend_limit.amount)}
        value={Number(k.current_spend)}
        aria-label={`Spend: $${k.current_spend} of $${k.spend_limit.amount} (${text})`}
      />
      <span class="spend-bar" aria-hidden="true">
        <span class={`fill w${width} ${level}`} />
      </span>{" "}
      <span class="pct">{text}</span> · <Usd amount={k.current_spend} /> of <Usd amount={k.spend_limit.amount} />{" "}
      {per(k.spend_limit.cycle)}
      {k.spend_resets_at && k.spend_limit.cycle !== "total" && (
        <span class="small muted"> · resets {when(k.spend_resets_at)}</span>
      )}
    </span>
  );
};

/** The budget's state as a badge, its reason in the title and, where there is room, in words. */
export const BudgetBadge: FC<{ state: BudgetState | null | undefined }> = ({ state }) =>
  state ? (
    <span class="status budget" title={state.detail}>
      {state.badge}
    </span>
  ) : null;

const scope = (k: ListedKey) =>
  [k.allowed_providers?.join(", ") ?? "all providers", k.allowed_models?.join(", ") ?? "all models"].join(" · ");

/** A name that may be 200 characters long: cut to the cell, the whole of it in its title. */
const Name: FC<{ k: ListedKey }> = ({ k }) => (
  <a class="name" href={`/keys/${k.spend_key_id}`} title={k.name}>
    {k.name}
  </a>
);

export const KeyList: FC<{
  keys: ListedKey[];
  states: Map<string, BudgetState | null>;
  q: string;
  status: string;
  next?: string | undefined;
}> = (p) => (
  <>
    <div class="actions">
      <a class="button primary" href="/keys/new">
        Create key
      </a>
    </div>
    <form method="get" action="/keys" class="row" aria-label="Filter">
      <label>
        Search
        <input name="q" value={p.q} placeholder="name or preview" />
      </label>
      <label>
        Status
        <select name="status">
          {[
            ["", "active and paused"],
            ["active", "active"],
            ["paused", "paused"],
            ["revoked", "revoked"],
            ["all", "all, revoked too"],
          ].map(([v, label]) => (
            <option value={v} selected={p.status === v}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit">Filter</button>
    </form>
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Name</th>
            <th>Key</th>
            <th>Status</th>
            <th>Scope</th>
            <th>Spend</th>
            <th class="num">Requests</th>
            <th class="num">RPM</th>
            <th>Last used</th>
          </tr>
        </thead>
        <tbody>
          {p.keys.map((k) => (
            <tr>
              <td data-label="Name" class="cell-name">
                <Name k={k} />
              </td>
              <td data-label="Key" class="nowrap">
                <code>{k.key_preview}</code>
              </td>
              <td data-label="Status">
                <span class="badges">
                  <Status value={k.status} />{" "}
                  {k.status !== "revoked" && <BudgetBadge state={p.states.get(k.spend_key_id)} />}
                </span>
              </td>
              <td data-label="Scope" class="small wrap">
                {scope(k)}
              </td>
              <td data-label="Spend">
                <SpendMeter k={k} state={p.states.get(k.spend_key_id)} />
              </td>
              <td data-label="Requests" class="num">
                {k.current_requests}
                {k.request_limit ? ` / ${k.request_limit.count} ${per(k.request_limit.cycle)}` : ""}
              </td>
              <td data-label="RPM" class="num">
                {k.rate_limit ? `${k.rate_limit.rpm} (burst ${k.rate_limit.burst})` : "—"}
              </td>
              <td data-label="Last used" class="small">
                {when(k.last_used_at)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {p.keys.length === 0 && (
      <p class="muted">No keys match.{p.status === "" ? " Revoked keys are listed under Status: revoked." : ""}</p>
    )}
    <Pager next={p.next} base="/keys" query={{ q: p.q, status: p.status }} />
  </>
);

/** A created or rotated key's page opened again: the secret is gone for good, and says so. */
export const SecretGone: FC<{ k: KeyWire }> = ({ k }) => (
  <>
    <p>
      The secret of <a href={`/keys/${k.spend_key_id}`}>{k.name}</a> was shown once and cannot be shown again: Spendgate
      keeps only its hash. Nothing was created by opening this page again.
    </p>
    <p>
      Lost it? <a href={`/keys/${k.spend_key_id}/rotate`}>Rotate the key</a> for a new secret (the old one stops
      working).
    </p>
  </>
);

/** The new key once, and how to use it from the SDKs and tools people already have. */
export const KeyCreated: FC<{
  k: KeyWire;
  secret: string;
  origin: string;
  rotated?: boolean;
  /** a model the key may call, for the snippets (null: none it may call) */
  model: string | null;
}> = (p) => {
  const v1 = `${p.origin}/v1`;
  const model = p.model ?? "MODEL";
  const lines = (...l: string[]) => l.join("\n");
  const openai =
    p.k.request_shape === "openai"
      ? lines(
          'import OpenAI from "openai";',
          `const client = new OpenAI({ baseURL: "${v1}", apiKey: process.env.OPENAI_API_KEY });`,
        )
      : null;
  const anthropic =
    p.k.request_shape === "anthropic"
      ? lines(
          'import Anthropic from "@anthropic-ai/sdk";',
          `const client = new Anthropic({ baseURL: "${p.origin}", apiKey: process.env.ANTHROPIC_API_KEY });`,
        )
      : null;
  const curl =
    p.k.request_shape === "openai"
      ? lines(
          `curl ${v1}/chat/completions -H "Authorization: Bearer $OPENAI_API_KEY" \\`,
          `  -H "Content-Type: application/json" \\`,
          `  -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'`,
        )
      : lines(
          `curl ${p.origin}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" -H "anthropic-version: 2023-06-01" \\`,
          `  -H "Content-Type: application/json" \\`,
          `  -d '{"model":"${model}","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'`,
        );
  const env =
    p.k.request_shape === "openai"
      ? lines(`export OPENAI_BASE_URL=${v1}`, `export OPENAI_API_KEY=${p.secret}`)
      : lines(`export ANTHROPIC_BASE_URL=${p.origin}`, `export ANTHROPIC_API_KEY=${p.secret}`);
  return (
    <>
      <p>
        {p.rotated ? "The key was rotated: the old key no longer works. " : ""}
        <a href={`/keys/${p.k.spend_key_id}`}>{p.k.name}</a> is ready.
      </p>
      <ShownOnce id="new-key" value={p.secret} what="key" />
      <h2>Use it</h2>
      {p.model === null && (
        <p class="alert">This key may call no model of the catalog as it stands: widen its providers or models.</p>
      )}
      <p class="muted small">Environment variables for coding tools and SDKs:</p>
      <pre>{env}</pre>
      {openai && (
        <>
          <p class="muted small">OpenAI SDK (any OpenAI-compatible tool: set its base URL):</p>
          <pre>{openai}</pre>
        </>
      )}
      {anthropic && (
        <>
          <p class="muted small">Anthropic SDK:</p>
          <pre>{anthropic}</pre>
        </>
      )}
      <p class="muted small">curl:</p>
      <pre>{curl}</pre>
    </>
  );
};

const pcts = (t: number[]) => t.map((x) => `${Math.round(x * 1000) / 10} %`).join(", ");

export const KeyDetail: FC<{
  k: ListedKey;
  csrf: string;
  days: { date: string; cost: string }[];
  total: string;
  recent: LedgerWire[];
  /** what the next request may cost at most (`GET /v1/key`'s next_request.max_cost); null: no spend limit */
  maxCost: string | null;
  state: BudgetState | null;
}> = ({ k, csrf, days, total, recent, maxCost, state }) => {
  const revoked = k.status === "revoked";
  return (
    <>
      {revoked && (
        <p class="notice">
          This key is revoked: every request with it is refused, and it cannot be brought back. Its settings and history
          are shown read-only.
        </p>
      )}
      {state && (
        <p class="alert budget-state" role="status">
          <strong>{state.badge}.</strong> {state.detail}
        </p>
      )}
      <div class="cards">
        <div class="card">
          <div class="muted small">Status</div>
          <div class="value badges">
            <Status value={k.status} /> <BudgetBadge state={state} />
          </div>
        </div>
        <div class="card">
          <div class="muted small">Spend this cycle</div>
          <div class="value">
            <Usd amount={k.current_spend} />
          </div>
          <SpendMeter k={k} state={state} />
        </div>
        {!revoked && k.spend_limit && (
          <div class="card">
            <div class="muted small">Next request may cost at most</div>
            <div class="value">
              <Usd amount={maxCost} />
            </div>
            <div class="small muted">what is left after spend and requests in flight</div>
          </div>
        )}
        <div class="card">
          <div class="muted small">Requests</div>
          <div class="value">{k.current_requests}</div>
          {k.request_limit && (
            <div class="small">
              of {k.request_limit.count} {per(k.request_limit.cycle)}
            </div>
          )}
        </div>
        <div class="card">
          <div class="muted small">Total spend</div>
          <div class="value">
            <Usd amount={k.total_spend} />
          </div>
        </div>
      </div>
      <h2>Settings</h2>
      <dl class="settings">
        <dt>Key</dt>
        <dd>
          <code>{k.key_preview}</code> · {k.request_shape === "anthropic" ? "Anthropic" : "OpenAI-compatible"} shape
        </dd>
        <dt>Providers</dt>
        <dd class="wrap">{k.allowed_providers?.join(", ") ?? "every provider"}</dd>
        <dt>Models</dt>
        <dd class="wrap">{k.allowed_models?.join(", ") ?? "every model"}</dd>
        <dt>Spend limit</dt>
        <dd>{k.spend_limit ? `$${k.spend_limit.amount} ${per(k.spend_limit.cycle)}` : "none"}</dd>
        <dt>Request limit</dt>
        <dd>{k.request_limit ? `${k.request_limit.count} requests ${per(k.request_limit.cycle)}` : "none"}</dd>
        <dt>Rate limit</dt>
        <dd>
          {k.rate_limit ? `${k.rate_limit.rpm} requests per minute, bursts of up to ${k.rate_limit.burst}` : "none"}
        </dd>
        <dt>Webhook alerts at</dt>
        <dd>
          {k.spend_limit
            ? `${pcts(k.alert_thresholds)} of the spend limit`
            : `${pcts(k.alert_thresholds)} (once a spend limit is set)`}
        </dd>
        <dt>Output clamping</dt>
        <dd>
          {k.clamp_output
            ? "on: a request the budget cannot cover in full gets a lower output limit (down to " +
              `${MIN_CLAMPED_OUTPUT_TOKENS.toLocaleString("en-US")} tokens)`
            : "off: a request the budget cannot cover in full is refused"}
        </dd>
        <dt>Expires</dt>
        <dd>{when(k.expires_at)}</dd>
        <dt>Last used</dt>
        <dd>{when(k.last_used_at)}</dd>
        <dt>Created</dt>
        <dd>{when(k.created_at)}</dd>
      </dl>
      {!revoked && (
        <div class="actions">
          <a class="button" href={`/keys/${k.spend_key_id}/edit`}>
            Edit settings
          </a>
          <PostForm action={`/keys/${k.spend_key_id}/${k.status === "paused" ? "resume" : "pause"}`} csrf={csrf}>
            <button type="submit">{k.status === "paused" ? "Resume" : "Pause"}</button>
          </PostForm>
          <a class="button" href={`/keys/${k.spend_key_id}/rotate`}>
            Rotate…
          </a>
          <a class="button danger" href={`/keys/${k.spend_key_id}/revoke`}>
            Revoke…
          </a>
        </div>
      )}
      <h2>Spend per day</h2>
      <DayChart days={days} total={total} label={`Spend per day, last ${days.length} days`} />
      <h2>Recent requests</h2>
      <LedgerTable rows={recent} />
      <p>
        <a href={`/requests?spend_key_id=${k.spend_key_id}`}>All of this key's requests →</a>
      </p>
    </>
  );
};

/** Rotate and revoke ask first, on a page of their own (no script needed). */
export const Confirm: FC<{ k: KeyWire; csrf: string; action: "rotate" | "revoke" }> = ({ k, csrf, action }) => (
  <>
    <p>
      {action === "rotate" ? "Rotating issues a new key for " : "Revoking permanently disables "}
      <strong>{k.name}</strong> (<code>{k.key_preview}</code>).{" "}
      {action === "rotate"
        ? "The current key stops working at once; limits and spend stay."
        : "Every request with it fails at once, and it cannot be brought back."}
    </p>
    <div class="actions">
      <PostForm action={`/keys/${k.spend_key_id}/${action}`} csrf={csrf}>
        <button class={action === "revoke" ? "danger" : "primary"} type="submit" autofocus={action === "rotate"}>
          {action === "rotate" ? "Rotate the key" : "Revoke the key"}
        </button>
      </PostForm>
      <a class="button" href={`/keys/${k.spend_key_id}`}>
        Cancel
      </a>
    </div>
  </>
);
