import type { FC } from "hono/jsx";
import { formatUsd } from "../lib/money.ts";
import { EVENT_TYPES } from "../webhooks/events.ts";
import { Choice, ErrorSummary, type Errors, FieldError, Pager, PostForm, ShownOnce, Status } from "./layout.tsx";

export interface ModelRow {
  id: string;
  provider: string;
  input: string | null;
  output: string | null;
  cacheRead: string | null;
  other: string[];
  contextWindow: number | null;
  /** how many of the wallet's keys may call it */
  keys: number;
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
  keys: { id: string; name: string }[];
  keyId: string;
  totalKeys: number;
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
      <label>
        Models a key may call
        <select name="key">
          <option value="">any key</option>
          {p.keys.map((k) => (
            <option value={k.id} selected={p.keyId === k.id}>
              {k.name.length > 60 ? `${k.name.slice(0, 60)}…` : k.name}
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
            <th>Model</th>
            <th>Provider</th>
            <th class="num">Input</th>
            <th class="num">Cached</th>
            <th class="num">Output</th>
            <th>Other prices</th>
            <th class="num">Context</th>
            <th class="num">Keys that may call it</th>
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
              <td data-label="Keys" class="num">
                {p.totalKeys === 0
                  ? "—"
                  : m.keys === p.totalKeys
                    ? `all ${p.totalKeys}`
                    : `${m.keys} of ${p.totalKeys}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {p.rows.length === 0 && <p class="muted">No models match.</p>}
    <Pager next={p.next} base="/models" query={{ q: p.q, provider: p.provider, key: p.keyId }} />
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

/** The webhook form as typed. */
export interface WebhookValues {
  name: string;
  url: string;
  events: string[];
}

const HOOK_FIELDS = ["name", "url", "events"] as const;

const hookField = (f: (typeof HOOK_FIELDS)[number], errors: Errors, first: string | undefined) => ({
  id: `f-${f}`,
  "aria-invalid": errors[f] ? "true" : undefined,
  "aria-describedby": errors[f] ? `${f}-error` : undefined,
  autofocus: first === f ? true : undefined,
});

export const Webhooks: FC<{
  hooks: WebhookWire[];
  csrf: string;
  values?: WebhookValues;
  errors?: Errors;
}> = ({ hooks, csrf, values = { name: "", url: "", events: [] }, errors = {} }) => {
  const first = HOOK_FIELDS.find((f) => errors[f]);
  return (
    <>
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
            {hooks.map((h) => (
              <tr>
                <td data-label="Name" class="cell-name">
                  <a class="name" href={`/webhooks/${h.webhook_id}`} title={h.name}>
                    {h.name}
                  </a>
                </td>
                <td data-label="URL" class="small wrap">
                  {h.url}
                </td>
                <td data-label="Events" class="small wrap">
                  {h.events?.join(", ") ?? "all events"}
                </td>
                <td data-label="Status">
                  <Status value={h.enabled ? "enabled" : "disabled"} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {hooks.length === 0 && <p class="muted">No webhooks yet.</p>}
      <h2>Add a webhook</h2>
      <PostForm action="/webhooks" csrf={csrf} class="stack" novalidate>
        <ErrorSummary errors={errors} order={HOOK_FIELDS} />
        <label>
          Name
          <input name="name" required maxlength={200} value={values.name} {...hookField("name", errors, first)} />
          <FieldError errors={errors} field="name" />
        </label>
        <label>
          URL <span class="hint">https only in production</span>
          <input name="url" type="url" required value={values.url} {...hookField("url", errors, first)} />
          <FieldError errors={errors} field="url" />
        </label>
        <fieldset aria-describedby={errors.events ? "events-error" : undefined}>
          <legend>Events</legend>
          <span class="hint">Nothing chosen: every event.</span>
          {EVENT_TYPES.map((e, i) => (
            <label class="inline">
              <input
                type="checkbox"
                name="events"
                value={e}
                checked={values.events.includes(e)}
                id={i === 0 ? "f-events" : undefined}
                autofocus={first === "events" && i === 0 ? true : undefined}
              />
              {e}
            </label>
          ))}
          <FieldError errors={errors} field="events" />
        </fieldset>
        <div class="actions">
          <button class="primary" type="submit">
            Add webhook
          </button>
        </div>
      </PostForm>
    </>
  );
};

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

export const WebhookDeliveries: FC<{
  hook: WebhookWire;
  rows: DeliveryWire[];
  csrf: string;
  secret?: string | undefined;
  next?: string | undefined;
}> = (p) => {
  const base = `/webhooks/${p.hook.webhook_id}`;
  return (
    <>
      {p.secret && (
        <>
          <p>Verify its deliveries with this signing secret (Standard Webhooks):</p>
          <ShownOnce id="webhook-secret" value={p.secret} what="signing secret" encrypted />
        </>
      )}
      <p class="small wrap">
        <Status value={p.hook.enabled ? "enabled" : "disabled"} /> {p.hook.url} ·{" "}
        {p.hook.events?.join(", ") ?? "all events"}
      </p>
      <div class="actions">
        <PostForm action={`${base}/${p.hook.enabled ? "disable" : "enable"}`} csrf={p.csrf}>
          <button type="submit">{p.hook.enabled ? "Disable" : "Enable"}</button>
        </PostForm>
        <a class="button danger" href={`${base}/delete`}>
          Delete…
        </a>
      </div>
      {!p.hook.enabled && (
        <p class="muted small">Disabled: no new deliveries are made to it until it is enabled again.</p>
      )}
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
              <th>
                <span class="visually-hidden">Action</span>
              </th>
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
                <td data-label="Action">
                  <PostForm action={`${base}/deliveries/${d.delivery_id}/redeliver`} csrf={p.csrf}>
                    <button type="submit" aria-label={`Redeliver the ${d.event_type} of ${d.created_at.slice(0, 19)}`}>
                      Redeliver
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {p.rows.length === 0 && <p class="muted">No deliveries yet.</p>}
      <Pager next={p.next} base={base} query={{}} />
    </>
  );
};

/** Delete asks first, on a page of its own (no script needed). */
export const ConfirmDeleteWebhook: FC<{ hook: WebhookWire; csrf: string }> = ({ hook, csrf }) => (
  <>
    <p>
      Deleting <strong class="wrap">{hook.name}</strong> stops every delivery to <span class="wrap">{hook.url}</span>,
      for good. To pause deliveries instead, disable it.
    </p>
    <div class="actions">
      <PostForm action={`/webhooks/${hook.webhook_id}/delete`} csrf={csrf}>
        <button class="danger" type="submit">
          Delete the webhook
        </button>
      </PostForm>
      <a class="button" href={`/webhooks/${hook.webhook_id}`}>
        Cancel
      </a>
    </div>
  </>
);
