import type { FC } from "hono/jsx";
import type { SpendKeyView } from "../keys/view.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";
import { FieldError, FormError, PostForm } from "./layout.tsx";

/** A spend key as the management API answers it (the fields the dashboard shows). */
/** A spend key as the management API answers it (the keys module's one view). */
export type KeyWire = SpendKeyView;

type Form = Record<string, string | File | (string | File)[]>;
const one = (f: Form, k: string) => {
  const v = f[k];
  return typeof v === "string" ? v.trim() : "";
};
const many = (f: Form, k: string) => {
  const v = f[k];
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === "string");
};
/** Whole numbers as numbers; anything else as typed, so the API's 400 names the field. */
const whole = (s: string) => (/^\d+$/.test(s) ? Number(s) : s);

/** The management API body a create or edit form describes (empty limits clear them on edit). */
export function keyBody(f: Form, creating: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = { name: one(f, "name") };
  if (creating) body.request_shape = one(f, "request_shape") || "openai";
  const providers = many(f, "allowed_providers");
  const models = many(f, "allowed_models").concat(
    one(f, "extra_models")
      .split(/[\s,]+/)
      .filter(Boolean),
  );
  body.allowed_providers = providers.length ? providers : null;
  body.allowed_models = models.length ? models : null;
  const amount = one(f, "spend_amount");
  body.spend_limit = amount ? { amount, cycle: one(f, "spend_cycle") } : null;
  const count = one(f, "request_count");
  body.request_limit = count ? { count: whole(count), cycle: one(f, "request_cycle") } : null;
  const rpm = one(f, "rpm");
  const burst = one(f, "burst");
  body.rate_limit = rpm ? { rpm: whole(rpm), ...(burst ? { burst: whole(burst) } : {}) } : null;
  const expires = one(f, "expires_at");
  // The form's date-time is UTC (it says so); the API wants an ISO instant.
  body.expires_at = expires ? (/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(expires) ? `${expires}:00Z` : expires) : null;
  body.clamp_output = one(f, "clamp_output") === "on";
  // Percentages of the spend limit, as typed; the API checks them (and names the field when they are wrong).
  const alerts = one(f, "alert_thresholds");
  body.alert_thresholds = alerts
    ? alerts.split(/[\s,]+/).map((a) => (/^\d+(\.\d+)?$/.test(a) ? Number(a) / 100 : a))
    : null;
  if (creating) for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
  return body;
}

const CYCLES = ["daily", "weekly", "monthly", "total"];
const FIELDS = ["name", "request_shape", "allowed_providers", "allowed_models", "spend_limit", "request_limit"];
/** The fields shown with their own error; an error naming any other (or none) is shown above the form. */
const ALL_FIELDS = [...FIELDS, "rate_limit", "expires_at", "alert_thresholds"];

type ApiError = { message: string; param: string | null } | undefined;

const CycleSelect: FC<{ name: string; value?: string | undefined; label: string }> = (p) => (
  <label>
    {p.label}
    <select name={p.name}>
      {CYCLES.map((c) => (
        <option value={c} selected={p.value === c}>
          {c}
        </option>
      ))}
    </select>
  </label>
);

/** Every option of the API, for a new key or an existing one; errors appear next to the field they name. */
export const KeyForm: FC<{
  csrf: string;
  action: string;
  k?: KeyWire | undefined;
  models: { id: string; provider: string }[];
  error?: ApiError;
}> = ({ csrf, action, k: key, models, error }) => {
  const providers = key?.allowed_providers ?? [];
  const chosen = new Set(key?.allowed_models ?? []);
  const known = new Set(models.map((m) => m.id));
  const extra = [...chosen].filter((m) => !known.has(m)).join(", ");
  const byProvider = PROVIDER_IDS.map((p) => [p, models.filter((m) => m.provider === p)] as const);
  return (
    <PostForm action={action} csrf={csrf} class="stack">
      <FormError error={error} fields={ALL_FIELDS} />
      <label>
        Name
        <input name="name" required maxlength={200} value={key?.name ?? ""} aria-describedby="name-error" />
        <FieldError error={error} field="name" />
      </label>
      {!key && (
        <label>
          Request shape
          <span class="hint">Which SDK the key is for: OpenAI-compatible routes, or Anthropic's /v1/messages.</span>
          <select name="request_shape" aria-describedby="request_shape-error">
            <option value="openai">openai</option>
            <option value="anthropic">anthropic</option>
          </select>
          <FieldError error={error} field="request_shape" />
        </label>
      )}
      <fieldset>
        <legend>Scope</legend>
        <span class="hint">Nothing chosen: every provider and model.</span>
        <div class="row">
          {PROVIDER_IDS.map((p) => (
            <label class="inline">
              <input type="checkbox" name="allowed_providers" value={p} checked={providers.includes(p)} />
              {p}
            </label>
          ))}
        </div>
        <FieldError error={error} field="allowed_providers" />
        <label>
          Models
          <select name="allowed_models" multiple aria-describedby="allowed_models-error">
            {byProvider.map(([p, list]) => (
              <optgroup label={p}>
                {list.map((m) => (
                  <option value={m.id} selected={chosen.has(m.id)}>
                    {m.id}
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
        </label>
        <label>
          Other model ids <span class="hint">aliases or snapshots, comma-separated</span>
          <input name="extra_models" value={extra} />
        </label>
        <FieldError error={error} field="allowed_models" />
      </fieldset>
      <fieldset>
        <legend>Limits</legend>
        <div class="row">
          <label>
            Spend limit (USD) <span class="hint">empty: none</span>
            <input name="spend_amount" inputmode="decimal" value={key?.spend_limit?.amount ?? ""} />
          </label>
          <CycleSelect name="spend_cycle" label="per" value={key?.spend_limit?.cycle} />
        </div>
        <FieldError error={error} field="spend_limit" />
        <div class="row">
          <label>
            Request limit <span class="hint">empty: none</span>
            <input name="request_count" inputmode="numeric" value={String(key?.request_limit?.count ?? "")} />
          </label>
          <CycleSelect name="request_cycle" label="per" value={key?.request_limit?.cycle} />
        </div>
        <FieldError error={error} field="request_limit" />
        <div class="row">
          <label>
            Requests per minute
            <input name="rpm" inputmode="numeric" value={String(key?.rate_limit?.rpm ?? "")} />
          </label>
          <label>
            Burst <span class="hint">default: the rpm</span>
            <input name="burst" inputmode="numeric" value={String(key?.rate_limit?.burst ?? "")} />
          </label>
        </div>
        <FieldError error={error} field="rate_limit" />
        <label>
          Expires at (UTC) <span class="hint">empty: never</span>
          <input name="expires_at" type="datetime-local" value={key?.expires_at?.slice(0, 16) ?? ""} />
        </label>
        <FieldError error={error} field="expires_at" />
        <label>
          Webhook alerts at <span class="hint">% of the spend limit, e.g. 50, 80, 95 (the default)</span>
          <input
            name="alert_thresholds"
            value={(key?.alert_thresholds ?? [0.5, 0.8, 0.95]).map((t) => Math.round(t * 1000) / 10).join(", ")}
          />
        </label>
        <FieldError error={error} field="alert_thresholds" />
        <label class="inline">
          <input type="checkbox" name="clamp_output" checked={key ? key.clamp_output : true} />
          Lower a request's output limit to what the spend limit affords, rather than refuse it
        </label>
      </fieldset>
      <div class="actions">
        <button class="primary" type="submit">
          {key ? "Save changes" : "Create key"}
        </button>
        <a class="button" href={key ? `/keys/${key.spend_key_id}` : "/keys"}>
          Cancel
        </a>
      </div>
    </PostForm>
  );
};
