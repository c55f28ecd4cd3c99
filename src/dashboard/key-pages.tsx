import type { FC } from "hono/jsx";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../keys/record.ts";
import { formatUsd, parseUsd } from "../lib/money.ts";
import type { BudgetState, ListedKey, RunSummary } from "./key-data.ts";
import { type KeyWire, percent } from "./key-form.tsx";
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

/**
 * Spend against its limit: a bar (role=meter) and the figures, exhausted in the colour of danger. A parent's live
 * children's carves take their share of the bar (hatched) and of the figures: what is left stays honest.
 */
export const SpendMeter: FC<{ k: ListedKey; state?: BudgetState | null }> = ({ k, state }) => {
  if (!k.spend_limit) {
    return (
      <span>
        <Usd amount={k.current_spend} /> <span class="muted">no limit</span>
      </span>
    );
  }
  const carved = parseUsd(k.carved_spend) ?? 0;
  const used = formatUsd((parseUsd(k.current_spend) ?? 0) + carved);
  const { text, width } = percentOf(used, k.spend_limit.amount);
  const own = carved > 0 ? percentOf(k.current_spend, k.spend_limit.amount).width : width;
  const spendBound = state?.badge === "Budget exhausted" || state?.badge === "Cannot afford another request";
  const level = spendBound ? "bad" : width >= 80 ? "warn" : "ok";
  const label =
    `Spend: $${k.current_spend} of $${k.spend_limit.amount}` +
    (carved > 0 ? `, and $${k.carved_spend} carved for child keys` : "") +
    ` (${text})`;
  return (
    <span class="spend">
      <meter
        class="visually-hidden"
        min={0}
        max={Number(k.spend_limit.amount)}
        value={Number(used)}
        aria-label={label}
      />
      <span class="spend-bar" aria-hidden="true">
        {own > 0 && <span class={`fill w${own} ${level}`} />}
        {carved > 0 && <span class={`fill carved w${Math.max(0, width - own)}`} />}
      </span>{" "}
      <span class="pct">{text}</span> · <Usd amount={k.current_spend} /> of <Usd amount={k.spend_limit.amount} />{" "}
      {per(k.spend_limit.cycle)}
      {carved > 0 && (
        <span class="small">
          {" "}
          · <Usd amount={k.carved_spend} /> carved for child keys
        </span>
      )}
      {k.spend_resets_at && k.spend_limit.cycle !== "total" && (
        <span class="small muted"> · resets {when(k.spend_resets_at)}</span>
      )}
    </span>
  );
};

const count = (n: number) => n.toLocaleString("en-US");

/** Tokens against the token limit, like spend's meter; without a limit, the count alone. */
export const TokenMeter: FC<{ k: ListedKey }> = ({ k }) => {
  if (!k.token_limit) {
    return (
      <span>
        {count(k.current_tokens)} tokens <span class="muted">no limit</span>
      </span>
    );
  }
  const { text, width } = percentOf(String(k.current_tokens), String(k.token_limit.count));
  const level = k.current_tokens >= k.token_limit.count ? "bad" : width >= 80 ? "warn" : "ok";
  return (
    <span class="spend">
      <meter
        class="visually-hidden"
        min={0}
        max={k.token_limit.count}
        value={k.current_tokens}
        aria-label={`Tokens: ${count(k.current_tokens)} of ${count(k.token_limit.count)} (${text})`}
      />
      <span class="spend-bar" aria-hidden="true">
        <span class={`fill w${width} ${level}`} />
      </span>{" "}
      <span class="pct">{text}</span> · {count(k.current_tokens)} of {count(k.token_limit.count)}{" "}
      {per(k.token_limit.cycle)}
      {k.tokens_resets_at && k.token_limit.cycle !== "total" && (
        <span class="small muted"> · resets {when(k.tokens_resets_at)}</span>
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

/** A child key's note in lists: the key that minted it, linked. */
const ChildOf: FC<{ k: ListedKey; names: Map<string, string> }> = ({ k, names }) =>
  k.parent_key_id ? (
    <span class="small muted child-of">
      child of{" "}
      <a href={`/keys/${k.parent_key_id}`} title={names.get(k.parent_key_id) ?? k.parent_key_id}>
        {names.get(k.parent_key_id) ?? k.parent_key_id}
      </a>
    </span>
  ) : null;

export const KeyList: FC<{
  keys: ListedKey[];
  states: Map<string, BudgetState | null>;
  q: string;
  status: string;
  /** only this key's children */
  parent?: { id: string; name: string } | null;
  /** key names by id, for the parents of child keys */
  names?: Map<string, string>;
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
      {p.parent && <input type="hidden" name="parent" value={p.parent.id} />}
      <button type="submit">Filter</button>
    </form>
    {p.parent && (
      <p class="notice">
        Child keys of <a href={`/keys/${p.parent.id}`}>{p.parent.name}</a> only.{" "}
        <a href={`/keys${p.status ? `?status=${p.status}` : ""}`}>Show every key</a>
      </p>
    )}
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
          {p.keys.map((k, i) => {
            // Right under its parent (familyOrder puts it there when the parent is on the page): indented.
            const under =
              k.parent_key_id !== null && p.keys.slice(0, i).some((x) => x.spend_key_id === k.parent_key_id);
            return (
              <tr class={k.parent_key_id ? (under ? "child under" : "child") : undefined}>
                <td data-label="Name" class="cell-name">
                  {under && (
                    <span aria-hidden="true" class="muted">
                      ↳{" "}
                    </span>
                  )}
                  <Name k={k} />
                  <ChildOf k={k} names={p.names ?? new Map()} />
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
            );
          })}
        </tbody>
      </table>
    </div>
    {p.keys.length === 0 && (
      <p class="muted">No keys match.{p.status === "" ? " Revoked keys are listed under Status: revoked." : ""}</p>
    )}
    <Pager next={p.next} base="/keys" query={{ q: p.q, status: p.status, parent: p.parent?.id }} />
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
  /** after a rotation with a grace period: when the replaced secret stops working */
  previousUntil?: string | null;
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
        {p.rotated
          ? p.previousUntil && Date.parse(p.previousUntil) > Date.now()
            ? `The key was rotated: the old secret keeps working until ${when(p.previousUntil)}, then is refused. `
            : "The key was rotated: the old key no longer works. "
          : ""}
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

const runLimitText = (r: KeyWire["run_limit"]) => {
  if (!r || (r.spend === null && r.requests === null)) return "none: runs are only tagged on their requests";
  const parts = [r.spend !== null ? `$${r.spend}` : null, r.requests !== null ? `${count(r.requests)} requests` : null];
  return `each run at most ${parts.filter(Boolean).join(" and ")}, for the run's life`;
};

/** A parent's live child keys: each one's carve (its spend limit) and what it spent of it this cycle. */
const ChildTable: FC<{ keys: KeyWire[] }> = ({ keys }) =>
  keys.length === 0 ? (
    <p class="muted">No live child keys. Its agents mint them with POST /v1/key/children.</p>
  ) : (
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th class="num">Carve</th>
            <th>Spent of it</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((c) => (
            <tr>
              <td data-label="Name" class="cell-name">
                <a class="name" href={`/keys/${c.spend_key_id}`} title={c.name}>
                  {c.name}
                </a>
              </td>
              <td data-label="Status">
                <Status value={c.status} />
              </td>
              <td data-label="Carve" class="num">
                {c.spend_limit ? (
                  <>
                    <Usd amount={c.spend_limit.amount} /> {per(c.spend_limit.cycle)}
                  </>
                ) : (
                  "none"
                )}
              </td>
              <td data-label="Spent of it">
                <SpendMeter k={c} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );

/** A key's recent runs as its ledger rows add up (the requests that named a run). */
const RunTable: FC<{ runs: RunSummary[]; k: ListedKey }> = ({ runs, k }) =>
  runs.length === 0 ? (
    <p class="muted">
      No runs yet: a request names its run with the <code>x-spendgate-run</code> header.
    </p>
  ) : (
    <>
      <p class="small muted">
        The {runs.length === 1 ? "run" : `${runs.length} runs`} with the latest requests, summed from the ledger
        {k.run_limit ? ` (each run's budget: ${runLimitText(k.run_limit).replace(/^each run /, "")})` : ""}.
      </p>
      <div class="scroll">
        <table class="responsive">
          <thead>
            <tr>
              <th>Run</th>
              <th class="num">Requests</th>
              <th class="num">Tokens</th>
              <th class="num">Spend</th>
              <th>Last request (UTC)</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr>
                <td data-label="Run" class="wrap">
                  <a href={`/requests?spend_key_id=${k.spend_key_id}&run_id=${encodeURIComponent(r.run)}`}>
                    <code>{r.run}</code>
                  </a>
                </td>
                <td data-label="Requests" class="num">
                  {count(r.requests)}
                  {k.run_limit?.requests ? ` / ${count(k.run_limit.requests)}` : ""}
                </td>
                <td data-label="Tokens" class="num">
                  {count(r.tokens)}
                </td>
                <td data-label="Spend" class="num">
                  <Usd amount={r.cost} />
                  {k.run_limit?.spend ? (
                    <>
                      {" "}
                      / <Usd amount={k.run_limit.spend} />
                    </>
                  ) : null}
                </td>
                <td data-label="Last request" class="small">
                  {r.last.replace("T", " ").slice(0, 19)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );

const pcts = (t: number[]) => t.map((x) => `${percent(x)} %`).join(", ");

export const KeyDetail: FC<{
  k: ListedKey;
  csrf: string;
  days: { date: string; cost: string }[];
  total: string;
  recent: LedgerWire[];
  /** what the next request may cost at most (`GET /v1/key`'s next_request.max_cost); null: no spend limit */
  maxCost: string | null;
  state: BudgetState | null;
  /** the key that minted this one */
  parent?: { id: string; name: string } | null;
  /** its live child keys */
  childKeys?: KeyWire[];
  /** its most recent runs, from the ledger */
  runs?: RunSummary[];
}> = ({ k, csrf, days, total, recent, maxCost, state, parent = null, childKeys = [], runs = [] }) => {
  const revoked = k.status === "revoked";
  const carved = (parseUsd(k.carved_spend) ?? 0) > 0;
  const graceUntil =
    k.previous_secret_expires_at && Date.parse(k.previous_secret_expires_at) > Date.now()
      ? k.previous_secret_expires_at
      : null;
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
      {!revoked && graceUntil && (
        <p class="notice" role="status">
          Rotated with a grace period: the previous secret keeps working until {when(graceUntil)}, then is refused.
        </p>
      )}
      {parent && (
        <p class="family">
          Child key of <a href={`/keys/${parent.id}`}>{parent.name}</a>: its spend limit is its carve of that key's
          budget, reserved while it lives.
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
            <div class="small muted">
              {carved
                ? "what is left after spend, requests in flight and child keys' carves"
                : "what is left after spend and requests in flight"}
            </div>
          </div>
        )}
        {carved && (
          <div class="card">
            <div class="muted small">Carved for child keys</div>
            <div class="value">
              <Usd amount={k.carved_spend} />
            </div>
            <div class="small muted">of this cycle, held by its child keys</div>
          </div>
        )}
        {(k.token_limit || k.tokens_per_minute || k.current_tokens > 0) && (
          <div class="card">
            <div class="muted small">{k.token_limit ? "Tokens this cycle" : "Tokens"}</div>
            <div class="value">{count(k.current_tokens)}</div>
            <TokenMeter k={k} />
            <div class="small muted">{count(k.total_tokens)} in total</div>
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
        {parent && (
          <>
            <dt>Parent key</dt>
            <dd>
              <a href={`/keys/${parent.id}`}>{parent.name}</a>
            </dd>
          </>
        )}
        <dt>Spend limit</dt>
        <dd>
          {k.spend_limit ? `$${k.spend_limit.amount} ${per(k.spend_limit.cycle)}` : "none"}
          {parent && k.spend_limit && (
            <span class="small muted"> · its carve of {parent.name}'s budget: it cannot change</span>
          )}
          {carved && (
            <span class="small muted">
              {" "}
              · <Usd amount={k.carved_spend} /> of it carved for child keys
            </span>
          )}
        </dd>
        <dt>Request limit</dt>
        <dd>{k.request_limit ? `${k.request_limit.count} requests ${per(k.request_limit.cycle)}` : "none"}</dd>
        <dt>Token limit</dt>
        <dd>{k.token_limit ? `${count(k.token_limit.count)} tokens ${per(k.token_limit.cycle)}` : "none"}</dd>
        <dt>Tokens per minute</dt>
        <dd>{k.tokens_per_minute ? `${count(k.tokens_per_minute)} per UTC minute` : "none"}</dd>
        <dt>Rate limit</dt>
        <dd>
          {k.rate_limit ? `${k.rate_limit.rpm} requests per minute, bursts of up to ${k.rate_limit.burst}` : "none"}
        </dd>
        <dt>Run limit</dt>
        <dd>{runLimitText(k.run_limit)}</dd>
        <dt>Child keys</dt>
        <dd>
          {k.delegation
            ? `may mint them, up to ${k.delegation.max_depth === 1 ? "1 level" : `${k.delegation.max_depth} levels`} ` +
              `below, ${k.delegation.max_children} at once`
            : "may not mint them"}
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
      {(childKeys.length > 0 || (k.delegation && !revoked)) && (
        <>
          <h2>Child keys</h2>
          <ChildTable keys={childKeys} />
          <p>
            <a href={`/keys?parent=${k.spend_key_id}&status=all`}>
              This key's child keys in the key list, revoked too →
            </a>
          </p>
        </>
      )}
      <h2>Runs</h2>
      <RunTable runs={runs} k={k} />
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

/** The rotate form's grace period as typed, and what is wrong with it. */
export interface Grace {
  amount: string;
  unit: "minutes" | "hours";
  error?: string;
}

/** Rotate and revoke ask first, on a page of their own (no script needed); rotate offers a grace period. */
export const Confirm: FC<{ k: KeyWire; csrf: string; action: "rotate" | "revoke"; grace?: Grace }> = ({
  k,
  csrf,
  action,
  grace = { amount: "", unit: "minutes" },
}) => (
  <>
    <p>
      {action === "rotate" ? "Rotating issues a new key for " : "Revoking permanently disables "}
      <strong>{k.name}</strong> (<code>{k.key_preview}</code>).{" "}
      {action === "rotate"
        ? "The current key stops working at once, or after the grace period you give it; limits and spend stay."
        : "Every request with it fails at once, and it cannot be brought back."}
    </p>
    <div class="actions">
      <PostForm action={`/keys/${k.spend_key_id}/${action}`} csrf={csrf} class="stack" novalidate>
        {action === "rotate" && (
          <>
            {grace.error && (
              <div class="alert" role="alert">
                <p>
                  <a href="#f-grace">{grace.error}</a>
                </p>
              </div>
            )}
            <div class="row">
              <label>
                Grace period <span class="hint">empty: the old key stops at once; at most 24 hours</span>
                <input
                  name="grace_amount"
                  id="f-grace"
                  inputmode="numeric"
                  value={grace.amount}
                  aria-invalid={grace.error ? "true" : undefined}
                  aria-describedby={grace.error ? "grace-error grace-hint" : "grace-hint"}
                  autofocus={grace.error ? true : undefined}
                />
              </label>
              <label>
                Unit
                <select name="grace_unit">
                  <option value="minutes" selected={grace.unit === "minutes"}>
                    minutes
                  </option>
                  <option value="hours" selected={grace.unit === "hours"}>
                    hours
                  </option>
                </select>
              </label>
            </div>
            <span class="hint" id="grace-hint">
              During it both secrets work, so an agent mid-run can finish on the old one.
            </span>
            {grace.error && (
              <span class="field-error" id="grace-error">
                {grace.error}
              </span>
            )}
          </>
        )}
        <div class="actions">
          <button
            class={action === "revoke" ? "danger" : "primary"}
            type="submit"
            autofocus={action === "rotate" && !grace.error}
          >
            {action === "rotate" ? "Rotate the key" : "Revoke the key"}
          </button>
          <a class="button" href={`/keys/${k.spend_key_id}`}>
            Cancel
          </a>
        </div>
      </PostForm>
    </div>
  </>
);
