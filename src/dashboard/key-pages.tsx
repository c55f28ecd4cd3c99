import type { FC } from "hono/jsx";
import type { KeyWire } from "./key-form.tsx";
import { Choice, DayChart, Pager, PostForm, per, ShownOnce, Status, Usd } from "./layout.tsx";
import { LedgerTable, type LedgerWire } from "./ledger-table.tsx";

const when = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "never");

/** Spend against its limit: a native meter (accessible, and no inline style for the CSP to forbid). */
export const SpendMeter: FC<{ k: KeyWire }> = ({ k }) =>
  k.spend_limit ? (
    <span>
      <meter
        min={0}
        max={Number(k.spend_limit.amount)}
        value={Number(k.current_spend)}
        low={Number(k.spend_limit.amount) * 0.8}
        high={Number(k.spend_limit.amount) * 0.95}
        optimum={0}
        aria-label={`Spend: $${k.current_spend} of $${k.spend_limit.amount}`}
      />{" "}
      <Usd amount={k.current_spend} /> of <Usd amount={k.spend_limit.amount} /> {per(k.spend_limit.cycle)}
      {k.spend_resets_at && <span class="small muted"> · resets {when(k.spend_resets_at)}</span>}
    </span>
  ) : (
    <span>
      <Usd amount={k.current_spend} /> <span class="muted">no limit</span>
    </span>
  );

const scope = (k: KeyWire) =>
  [k.allowed_providers?.join(", ") ?? "all providers", k.allowed_models?.join(", ") ?? "all models"].join(" · ");

export const KeyList: FC<{ keys: KeyWire[]; q: string; status: string; next?: string | undefined }> = (p) => (
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
      <Choice label="Status" name="status" value={p.status} options={["active", "paused"]} />
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
              <td data-label="Name">
                <a href={`/keys/${k.spend_key_id}`}>{k.name}</a>
              </td>
              <td data-label="Key">
                <code>{k.key_preview}</code>
              </td>
              <td data-label="Status">
                <Status value={k.status} />
              </td>
              <td data-label="Scope" class="small">
                {scope(k)}
              </td>
              <td data-label="Spend">
                <SpendMeter k={k} />
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
    {p.keys.length === 0 && <p class="muted">No keys match.</p>}
    <Pager next={p.next} base="/keys" query={{ q: p.q, status: p.status }} />
  </>
);

/** The new key once, and how to use it from the SDKs and tools people already have. */
export const KeyCreated: FC<{ k: KeyWire; secret: string; origin: string; rotated?: boolean }> = (p) => {
  const v1 = `${p.origin}/v1`;
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
          `  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'`,
        )
      : lines(
          `curl ${p.origin}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" -H "anthropic-version: 2023-06-01" \\`,
          `  -H "Content-Type: application/json" \\`,
          `  -d '{"model":"claude-haiku-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'`,
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

export const KeyDetail: FC<{
  k: KeyWire;
  csrf: string;
  days: { date: string; cost: string }[];
  total: string;
  recent: LedgerWire[];
}> = ({ k, csrf, days, total, recent }) => (
  <>
    <div class="cards">
      <div class="card">
        <div class="muted small">Status</div>
        <div class="value">
          <Status value={k.status} />
        </div>
      </div>
      <div class="card">
        <div class="muted small">Spend this cycle</div>
        <div class="value">
          <Usd amount={k.current_spend} />
        </div>
        <SpendMeter k={k} />
      </div>
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
    <p class="small">
      <code>{k.key_preview}</code> · {k.request_shape} shape · {scope(k)} · expires {when(k.expires_at)}
      {" · last used "}
      {when(k.last_used_at)}
    </p>
    <div class="actions">
      <a class="button" href={`/keys/${k.spend_key_id}/edit`}>
        Edit limits
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
    <h2>Spend per day</h2>
    <DayChart days={days} total={total} label={`Spend per day, last ${days.length} days`} />
    <h2>Recent requests</h2>
    <LedgerTable rows={recent} />
    <p>
      <a href={`/requests?spend_key_id=${k.spend_key_id}`}>All of this key's requests →</a>
    </p>
  </>
);

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
        <button class={action === "revoke" ? "danger" : "primary"} type="submit">
          {action === "rotate" ? "Rotate the key" : "Revoke the key"}
        </button>
      </PostForm>
      <a class="button" href={`/keys/${k.spend_key_id}`}>
        Cancel
      </a>
    </div>
  </>
);
