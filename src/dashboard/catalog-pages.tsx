import type { FC } from "hono/jsx";
import { formatUsd } from "../lib/money.ts";
import { EVENT_TYPES } from "../webhooks/events.ts";
import { Choice, FieldError, FormError, Pager, PostForm, ShownOnce, Status } from "./layout.tsx";

export interface ModelRow {
  id: string;
  provider: string;
  input: string | null;
  output: string | null;
  cacheRead: string | null;
  other: string[];
  contextWindow: number | null;
  /** the names of the keys that may call it, or null: every key */
  keys: string[] | null;
}

/** Prices per picture (DALL·E) by `quality|size`, `*` for any quality: the "Other prices" of a model without rates. */
export const perPicture = (perImage: Readonly<Record<string, number>> | undefined): string[] =>
  Object.entries(perImage ?? {}).map(([key, nanos]) => {
    const [quality, size] = key.split("|");
    return `${quality === "*" ? "" : `${quality} `}${size} $${formatUsd(nanos)} per picture`;
  });

export const Models: FC<{
  rows: ModelRow[];
  q: string;
  provider: string;
  providers: readonly string[];
  next?: string | undefined;
}> = (p) => (
  <>
    <p class="muted small">USD per 1M tokens unless the price says otherwise.</p>
    <form method="get" action="/models" class="row" aria-label="Filter">
      <label>
        Search
        <input name="q" value={p.q} />
      </label>
      <Choice label="Provider" name="provider" value={p.provider} options={p.providers} />
      <button type="submit">Filter</button>
    </form>
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Model</th>
            <th>Provider</th>
            <th class="num">Input</th>
            <th class="num">Cached</th>
            <th class="num">Output</th>
            <th>Other prices</th>
            <th class="num">Context</th>
            <th>Keys that may use it</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.map((m) => (
            <tr>
              <td data-label="Model">
                <code>{m.id}</code>
              </td>
              <td data-label="Provider">{m.provider}</td>
              <td data-label="Input" class="num">
                {m.input ? `$${m.input}` : "—"}
              </td>
              <td data-label="Cached" class="num">
                {m.cacheRead ? `$${m.cacheRead}` : "—"}
              </td>
              <td data-label="Output" class="num">
                {m.output ? `$${m.output}` : "—"}
              </td>
              <td data-label="Other" class="small">
                {m.other.join(" · ")}
              </td>
              <td data-label="Context" class="num">
                {m.contextWindow?.toLocaleString("en-US") ?? "—"}
              </td>
              <td data-label="Keys" class="small">
                {m.keys === null ? "all keys" : m.keys.length ? m.keys.join(", ") : "none"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    <Pager next={p.next} base="/models" query={{ q: p.q, provider: p.provider }} />
  </>
);

export interface WebhookWire {
  webhook_id: string;
  name: string;
  url: string;
  events: string[] | null;
  enabled: boolean;
  created_at: string;
}

export const Webhooks: FC<{
  hooks: WebhookWire[];
  csrf: string;
  error?: { message: string; param: string | null } | undefined;
  created?: { hook: WebhookWire; secret: string } | undefined;
}> = (p) => (
  <>
    {p.created && (
      <>
        <p>
          <a href={`/webhooks/${p.created.hook.webhook_id}`}>{p.created.hook.name}</a> was created. Verify deliveries
          with this signing secret (Standard Webhooks):
        </p>
        <ShownOnce id="webhook-secret" value={p.created.secret} what="signing secret" />
      </>
    )}
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Name</th>
            <th>URL</th>
            <th>Events</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {p.hooks.map((h) => (
            <tr>
              <td data-label="Name">
                <a href={`/webhooks/${h.webhook_id}`}>{h.name}</a>
              </td>
              <td data-label="URL" class="small">
                {h.url}
              </td>
              <td data-label="Events" class="small">
                {h.events?.join(", ") ?? "all events"}
              </td>
              <td data-label="Status">
                <Status value={h.enabled ? "active" : "paused"} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {p.hooks.length === 0 && <p class="muted">No webhooks yet.</p>}
    <h2>Add a webhook</h2>
    <PostForm action="/webhooks" csrf={p.csrf} class="stack">
      <FormError error={p.error} fields={["name", "url", "events"]} />
      <label>
        Name
        <input name="name" required maxlength={200} />
        <FieldError error={p.error} field="name" />
      </label>
      <label>
        URL <span class="hint">https only in production</span>
        <input name="url" type="url" required />
        <FieldError error={p.error} field="url" />
      </label>
      <fieldset>
        <legend>Events</legend>
        <span class="hint">Nothing chosen: every event.</span>
        {EVENT_TYPES.map((e) => (
          <label class="inline">
            <input type="checkbox" name="events" value={e} />
            {e}
          </label>
        ))}
        <FieldError error={p.error} field="events" />
      </fieldset>
      <div class="actions">
        <button class="primary" type="submit">
          Add webhook
        </button>
      </div>
    </PostForm>
  </>
);

export interface DeliveryWire {
  delivery_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_response_code: number | null;
  last_error: string | null;
  next_retry_at: string | null;
  created_at: string;
}

export const WebhookDeliveries: FC<{ hook: WebhookWire; rows: DeliveryWire[]; next?: string | undefined }> = (p) => (
  <>
    <p class="small">
      {p.hook.url} · {p.hook.events?.join(", ") ?? "all events"}
    </p>
    <h2>Deliveries</h2>
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Time (UTC)</th>
            <th>Event</th>
            <th>Status</th>
            <th class="num">Attempts</th>
            <th class="num">Last response</th>
            <th>Next retry</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.map((d) => (
            <tr>
              <td data-label="Time" class="small">
                {d.created_at.replace("T", " ").slice(0, 19)}
              </td>
              <td data-label="Event">{d.event_type}</td>
              <td data-label="Status">
                <Status value={d.status} />
              </td>
              <td data-label="Attempts" class="num">
                {d.attempts}
              </td>
              <td data-label="Last response" class="num" title={d.last_error ?? undefined}>
                {d.last_response_code ?? "—"}
              </td>
              <td data-label="Next retry" class="small">
                {d.next_retry_at ?? "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {p.rows.length === 0 && <p class="muted">No deliveries yet.</p>}
    <Pager next={p.next} base={`/webhooks/${p.hook.webhook_id}`} query={{}} />
  </>
);
