import type { FC } from "hono/jsx";
import type { SpendKeyView } from "../keys/view.ts";
import { parseUsd } from "../lib/money.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";
import { ErrorSummary, FieldError, PostForm, per } from "./layout.tsx";

/** A spend key as the management API answers it (the keys module's one view). */
export type KeyWire = SpendKeyView;

/** A model the picker offers: an id a client can send, its provider and a short price. */
export interface PickerModel {
  id: string;
  provider: string;
  price: string;
}

type Form = Record<string, string | File | (string | File)[]>;
const one = (f: Form, k: string) => {
  const v = f[k];
  return typeof v === "string" ? v.trim() : "";
};
const many = (f: Form, k: string) => {
  const v = f[k];
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === "string");
};

/** The form as typed: what a page shows again after an error, so nothing typed is lost. */
export interface KeyValues {
  name: string;
  request_shape: string;
  providers: string[];
  models: string[];
  extra_models: string;
  spend_amount: string;
  spend_cycle: string;
  request_count: string;
  request_cycle: string;
  rpm: string;
  burst: string;
  expires_at: string;
  alert_thresholds: string;
  clamp_output: boolean;
  token_count: string;
  token_cycle: string;
  tpm: string;
  run_spend: string;
  run_requests: string;
  /** "" (off: may not mint child keys) or 1–3 */
  delegation_depth: string;
  delegation_children: string;
}

/** An alert threshold (a fraction of the spend limit) as the percent the pages and the form show, to 0.1 %. */
export const percent = (fraction: number) => Math.round(fraction * 1000) / 10;
const percents = (t: number[]) => t.map(percent).join(", ");

/** A key's settings as the form shows them (or a new key's defaults). */
export function valuesOf(k?: KeyWire): KeyValues {
  return {
    name: k?.name ?? "",
    request_shape: k?.request_shape ?? "openai",
    providers: k?.allowed_providers ?? [],
    models: k?.allowed_models ?? [],
    extra_models: "",
    spend_amount: k?.spend_limit?.amount ?? "",
    spend_cycle: k?.spend_limit?.cycle ?? "daily",
    request_count: k?.request_limit ? String(k.request_limit.count) : "",
    request_cycle: k?.request_limit?.cycle ?? "daily",
    rpm: k?.rate_limit ? String(k.rate_limit.rpm) : "",
    burst: k?.rate_limit ? String(k.rate_limit.burst) : "",
    expires_at: k?.expires_at?.slice(0, 16) ?? "",
    alert_thresholds: percents(k?.alert_thresholds ?? [0.5, 0.8, 0.95]),
    clamp_output: k ? k.clamp_output : true,
    token_count: k?.token_limit ? String(k.token_limit.count) : "",
    token_cycle: k?.token_limit?.cycle ?? "daily",
    tpm: k?.tokens_per_minute ? String(k.tokens_per_minute) : "",
    run_spend: k?.run_limit?.spend ?? "",
    run_requests: k?.run_limit?.requests ? String(k.run_limit.requests) : "",
    delegation_depth: k?.delegation ? String(k.delegation.max_depth) : "",
    delegation_children: k?.delegation ? String(k.delegation.max_children) : "",
  };
}

/** The values a submitted form holds (an edit keeps its key's request shape: the form cannot change it). */
export function valuesFrom(f: Form, shape?: string): KeyValues {
  return {
    name: one(f, "name"),
    request_shape: shape ?? one(f, "request_shape"),
    providers: many(f, "allowed_providers"),
    models: many(f, "allowed_models"),
    extra_models: one(f, "extra_models"),
    spend_amount: one(f, "spend_amount"),
    spend_cycle: one(f, "spend_cycle"),
    request_count: one(f, "request_count"),
    request_cycle: one(f, "request_cycle"),
    rpm: one(f, "rpm"),
    burst: one(f, "burst"),
    expires_at: one(f, "expires_at"),
    alert_thresholds: one(f, "alert_thresholds"),
    clamp_output: one(f, "clamp_output") === "on",
    token_count: one(f, "token_count"),
    token_cycle: one(f, "token_cycle"),
    tpm: one(f, "tpm"),
    run_spend: one(f, "run_spend"),
    run_requests: one(f, "run_requests"),
    delegation_depth: one(f, "delegation_depth"),
    delegation_children: one(f, "delegation_children"),
  };
}

/** The fields of the form that can be wrong, in the order they appear (the first wrong one gets the focus). */
export const KEY_FIELDS = [
  "name",
  "request_shape",
  "allowed_providers",
  "allowed_models",
  "spend_amount",
  "request_count",
  "token_count",
  "tpm",
  "rpm",
  "burst",
  "expires_at",
  "alert_thresholds",
  "run_spend",
  "run_requests",
  "delegation_depth",
  "delegation_children",
] as const;
export type KeyField = (typeof KEY_FIELDS)[number];
export type FieldErrors = Partial<Record<KeyField | "form", string>>;

/** Each field's message in the form's own words and units, for whatever the API says is wrong with it. */
const SAY: Record<KeyField, string> = {
  name: "Give the key a name of 1 to 200 characters.",
  request_shape: "Choose the OpenAI or the Anthropic request shape.",
  allowed_providers: "Choose providers from the list.",
  allowed_models: "Choose models from the list, or name models the gateway knows (see Models).",
  spend_amount:
    "Spend limit must be a positive dollar amount, e.g. 5 or 0.25 (at most 9 decimals and $999,999), " +
    "or empty for none.",
  request_count: "Request limit must be a whole number of requests from 1 to 1,000,000,000, or empty for none.",
  rpm: "Requests per minute must be a whole number from 1 to 1,000,000, or empty for no rate limit.",
  burst: "Burst must be a whole number of requests from 1 to 1,000,000, or empty for the same as requests per minute.",
  expires_at: "Expiry must be a date and time in the future (UTC), or empty for never.",
  alert_thresholds: "Alert thresholds are percents between 1 and 100, at most five, e.g. 50, 80, 95.",
  token_count: "Token limit must be a whole number of tokens from 1 to 1,000,000,000,000, or empty for none.",
  tpm: "Tokens per minute must be a whole number from 1 to 1,000,000,000,000, or empty for no such limit.",
  run_spend:
    "Spend per run must be a positive dollar amount, e.g. 0.50 (at most 9 decimals and $999,999), or empty for none.",
  run_requests: "Requests per run must be a whole number from 1 to 1,000,000,000, or empty for none.",
  delegation_depth: "Child keys: choose Off, or how many levels of child keys below this one (1 to 3).",
  delegation_children: "Child keys at once must be a whole number from 1 to 20.",
};
const CYCLES = ["daily", "weekly", "monthly", "total"];
const CYCLE_WORDS: Record<string, string> = { daily: "day", weekly: "week", monthly: "month", total: "in total" };

/** The API field an error names, as the form field that shows it. */
export function fieldOf(param: string | null): KeyField | "form" {
  const top = param?.split(".")[0] ?? "";
  if (top === "spend_limit") return "spend_amount";
  if (top === "request_limit") return "request_count";
  if (top === "rate_limit") return param?.endsWith(".burst") ? "burst" : "rpm";
  if (top === "token_limit") return "token_count";
  if (top === "tokens_per_minute") return "tpm";
  if (top === "run_limit") return param?.endsWith(".requests") ? "run_requests" : "run_spend";
  if (top === "delegation") return param?.endsWith(".max_children") ? "delegation_children" : "delegation_depth";
  return (KEY_FIELDS as readonly string[]).includes(top) ? (top as KeyField) : "form";
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * What a key's family forbids (the API's 409s for child keys and their parents), in the form's words: a child's
 * carve, a parent's cycle or limit under its live children's carves, a delegation past what the parent allows.
 */
function familyMessage(message: string, field: KeyField): string | undefined {
  if (/carve of its parent's cycle/.test(message)) {
    return (
      "A child key's spend limit is its carve of its parent's budget and cannot change: revoke the key and have " +
      "its parent mint another."
    );
  }
  const live = /has (\d+) live child keys/.exec(message);
  if (live) {
    return (
      `The spend cycle cannot change, nor the spend limit be added or removed, while ` +
      `${plural(Number(live[1]), "child key lives", "child keys live")}: their carves are of this cycle. ` +
      "Keep the cycle, or revoke them first."
    );
  }
  const below = /hold carves of \$([\d.]+)/.exec(message);
  if (below) return `Spend limit cannot go below $${below[1]}: that is what this key's live child keys hold of it.`;
  if (field === "delegation_depth" || field === "delegation_children") {
    if (/reaches no further/.test(message)) return "This key's parent lets it delegate no further: choose Off.";
    const cap = /max_depth: (\d+), max_children: (\d+)/.exec(message);
    if (cap) {
      return (
        `This key's parent lets it delegate at most ${plural(Number(cap[1]), "level", "levels")} ` +
        `and ${plural(Number(cap[2]), "child key", "child keys")} at once: choose less, or Off.`
      );
    }
  }
  return undefined;
}

/** An API refusal of the form, as a message next to the field it concerns (never the API's own field path). */
export function apiErrors(error: { message: string; param: string | null } | undefined): FieldErrors {
  if (!error) return {};
  const field = fieldOf(error.param);
  if (field === "form") return { form: error.message };
  const family = familyMessage(error.message, field);
  if (family) return { [field]: family };
  // "allowed_models: 'x' is not a model in the catalog" names the model: keep that part.
  const model = field === "allowed_models" ? /'([^']+)' is not a model/.exec(error.message)?.[1] : undefined;
  return { [field]: model ? `“${model}” is not a model the gateway knows; see the Models page.` : SAY[field] };
}

const WHOLE = /^\d+$/;
const within = (s: string, max: number) => WHOLE.test(s) && Number(s) >= 1 && Number(s) <= max;

/**
 * Checks the form in its own terms before anything is sent (what the API would refuse, and the settings that
 * contradict each other), and builds the management API body. `models` is the catalog the picker offers.
 */
export function checkKeyForm(
  v: KeyValues,
  creating: boolean,
  catalog: { known: (id: string) => boolean; providerOf: (id: string) => string | undefined },
  /** a child key's edit: its spend limit is its carve, which the wallet cannot change (it is not sent) */
  child = false,
): { errors: FieldErrors; body: Record<string, unknown> } {
  const e: FieldErrors = {};
  if (!v.name || v.name.length > 200) e.name = SAY.name;
  if (v.request_shape !== "openai" && v.request_shape !== "anthropic") e.request_shape = SAY.request_shape;
  const providers = v.providers;
  if (providers.some((p) => !(PROVIDER_IDS as string[]).includes(p))) e.allowed_providers = SAY.allowed_providers;
  else if (v.request_shape === "anthropic" && providers.length && !providers.includes("anthropic")) {
    e.allowed_providers =
      "An Anthropic-shaped key is served only by anthropic: add anthropic, or make the key OpenAI-shaped.";
  }
  const extra = v.extra_models.split(/[\s,]+/).filter(Boolean);
  const models = [...new Set([...v.models, ...extra])];
  const unknown = models.find((m) => !catalog.known(m));
  if (unknown !== undefined) {
    e.allowed_models = `“${unknown.slice(0, 200)}” is not a model the gateway knows; see the Models page.`;
  } else if (providers.length) {
    const outside = models.find((m) => !providers.includes(catalog.providerOf(m) ?? ""));
    if (outside) {
      e.allowed_models =
        `${outside} is a ${catalog.providerOf(outside)} model, but the key is limited to ` +
        `${providers.join(", ")}: add that provider or remove the model.`;
    }
  }
  if (!e.allowed_models && v.request_shape === "anthropic" && models.length) {
    if (!models.some((m) => catalog.providerOf(m) === "anthropic")) {
      e.allowed_models = "An Anthropic-shaped key can call only Anthropic models: choose at least one.";
    }
  }
  const amount = v.spend_amount.replace(/^\$/, "");
  if (!child && amount && !((parseUsd(amount) ?? 0) > 0)) e.spend_amount = SAY.spend_amount;
  if (v.request_count && !within(v.request_count, 1_000_000_000)) e.request_count = SAY.request_count;
  if (v.rpm && !within(v.rpm, 1_000_000)) e.rpm = SAY.rpm;
  if (v.burst) {
    if (!within(v.burst, 1_000_000)) e.burst = SAY.burst;
    else if (!v.rpm) e.burst = "A burst needs a requests-per-minute limit: set one, or leave burst empty.";
  }
  let expires: string | null = null;
  if (v.expires_at) {
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v.expires_at) ? `${v.expires_at}:00Z` : v.expires_at;
    const at = Date.parse(iso);
    if (Number.isNaN(at) || !/Z$|[+-]\d\d:\d\d$/.test(iso)) e.expires_at = SAY.expires_at;
    else if (at <= Date.now()) e.expires_at = "Expiry must be in the future: this date and time (UTC) has passed.";
    else expires = new Date(at).toISOString();
  }
  let thresholds: number[] | null = null;
  if (v.alert_thresholds) {
    const parts = v.alert_thresholds.split(/[\s,;]+/).filter(Boolean);
    const nums = parts.map((p) => Number(p.replace(/%$/, "")));
    if (nums.some((n) => !Number.isFinite(n) || n < 1 || n > 100) || new Set(nums).size > 5) {
      e.alert_thresholds = SAY.alert_thresholds;
    } else {
      thresholds = [...new Set(nums)].sort((a, b) => a - b).map((n) => Math.round(n * 10) / 1000);
    }
  }
  if (v.token_count && !within(v.token_count, 1_000_000_000_000)) e.token_count = SAY.token_count;
  if (v.tpm && !within(v.tpm, 1_000_000_000_000)) e.tpm = SAY.tpm;
  const runSpend = v.run_spend.replace(/^\$/, "");
  const runNanos = runSpend ? (parseUsd(runSpend) ?? 0) : null;
  if (runNanos !== null && !(runNanos > 0)) e.run_spend = SAY.run_spend;
  else if (runNanos !== null && !e.spend_amount && amount && v.spend_cycle === "total") {
    // A run lives across the key's cycles, so a run budget above a daily limit still binds; above a limit for
    // the key's whole life it never could: refused as the contradiction it is.
    if (runNanos > (parseUsd(amount) ?? 0)) {
      e.run_spend =
        `Spend per run above the key's spend limit in total ($${amount}) could never apply: ` +
        "lower it, or leave it empty.";
    }
  }
  if (v.run_requests && !within(v.run_requests, 1_000_000_000)) e.run_requests = SAY.run_requests;
  else if (v.run_requests && within(v.request_count, 1_000_000_000) && v.request_cycle === "total") {
    if (Number(v.run_requests) > Number(v.request_count)) {
      e.run_requests =
        `Requests per run above the key's request limit in total (${v.request_count}) could never apply: ` +
        "lower it, or leave it empty.";
    }
  }
  let delegation: { max_depth: number; max_children: number } | null = null;
  if (v.delegation_depth) {
    if (!within(v.delegation_depth, 3)) e.delegation_depth = SAY.delegation_depth;
    if (!within(v.delegation_children, 20)) e.delegation_children = SAY.delegation_children;
    if (!e.delegation_depth && !e.delegation_children) {
      delegation = { max_depth: Number(v.delegation_depth), max_children: Number(v.delegation_children) };
    }
  } else if (v.delegation_children) {
    e.delegation_children =
      "A number of child keys needs child keys allowed: choose how many levels below this key, or leave it empty.";
  }
  const cycle = (c: string) => (CYCLES.includes(c) ? c : "monthly");
  const body: Record<string, unknown> = {
    name: v.name,
    ...(creating ? { request_shape: v.request_shape } : {}),
    allowed_providers: providers.length ? providers : null,
    allowed_models: models.length ? models : null,
    spend_limit: amount ? { amount, cycle: cycle(v.spend_cycle) } : null,
    request_limit: v.request_count ? { count: Number(v.request_count), cycle: cycle(v.request_cycle) } : null,
    rate_limit: v.rpm ? { rpm: Number(v.rpm), ...(v.burst ? { burst: Number(v.burst) } : {}) } : null,
    expires_at: expires,
    clamp_output: v.clamp_output,
    alert_thresholds: thresholds,
    token_limit: v.token_count ? { count: Number(v.token_count), cycle: cycle(v.token_cycle) } : null,
    tokens_per_minute: v.tpm ? Number(v.tpm) : null,
    run_limit:
      runSpend || v.run_requests
        ? { spend: runSpend || null, requests: v.run_requests ? Number(v.run_requests) : null }
        : null,
    delegation,
  };
  if (child) delete body.spend_limit;
  if (creating) for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
  return { errors: e, body };
}

const CycleSelect: FC<{ name: string; value: string; label: string }> = (p) => (
  <label>
    {p.label}
    <select name={p.name}>
      {CYCLES.map((c) => (
        <option value={c} selected={p.value === c}>
          {c === "total" ? "in total" : `per ${CYCLE_WORDS[c]}`}
        </option>
      ))}
    </select>
  </label>
);

/** The attributes of a field that may be wrong: flagged, described by its message, focused when first. */
function invalid(errors: FieldErrors, field: KeyField, first: KeyField | undefined, hint?: string) {
  const wrong = errors[field] !== undefined;
  const described = [hint, wrong ? `${field}-error` : undefined].filter(Boolean).join(" ");
  return {
    id: `f-${field}`,
    "aria-invalid": wrong ? "true" : undefined,
    "aria-describedby": described || undefined,
    autofocus: first === field ? true : undefined,
  };
}

/**
 * Every option of the API, for a new key or an existing one. After an error every value comes back as typed,
 * each message sits next to its field (and in a summary on top), and the first wrong field has the focus.
 */
export const KeyForm: FC<{
  csrf: string;
  action: string;
  k?: KeyWire | undefined;
  values: KeyValues;
  models: PickerModel[];
  errors?: FieldErrors;
  /** a child key's parent (its spend limit is its carve of the parent's budget: shown, not editable) */
  parent?: { id: string; name: string } | null;
  /** a parent's live children and what their carves hold of its cycle */
  family?: { children: number; carved: string } | null;
}> = ({ csrf, action, k: key, values: v, models, errors = {}, parent, family }) => {
  const chosen = new Set(v.models);
  const known = new Set(models.map((m) => m.id));
  const extra = [...v.models.filter((m) => !known.has(m)), ...(v.extra_models ? [v.extra_models] : [])].join(", ");
  const first = KEY_FIELDS.find((f) => errors[f] !== undefined);
  const byProvider = PROVIDER_IDS.map((p) => [p, models.filter((m) => m.provider === p)] as const).filter(
    ([, list]) => list.length > 0,
  );
  return (
    <PostForm action={action} csrf={csrf} class="stack" novalidate>
      <ErrorSummary errors={errors} order={KEY_FIELDS} />
      <label>
        Name
        <input name="name" required maxlength={200} value={v.name} {...invalid(errors, "name", first)} />
        <FieldError errors={errors} field="name" />
      </label>
      {!key && (
        <label>
          Request shape
          <span class="hint" id="shape-hint">
            Which SDK the key is for: OpenAI-compatible routes, or Anthropic's /v1/messages (served by anthropic only).
          </span>
          <select name="request_shape" {...invalid(errors, "request_shape", first, "shape-hint")}>
            <option value="openai" selected={v.request_shape === "openai"}>
              OpenAI-compatible
            </option>
            <option value="anthropic" selected={v.request_shape === "anthropic"}>
              Anthropic
            </option>
          </select>
          <FieldError errors={errors} field="request_shape" />
        </label>
      )}
      <fieldset
        aria-describedby={errors.allowed_providers ? "allowed_providers-error providers-hint" : "providers-hint"}
      >
        <legend>Providers</legend>
        <span class="hint" id="providers-hint">
          Nothing chosen: every provider.
        </span>
        <div class="row">
          {PROVIDER_IDS.map((p, i) => (
            <label class="inline">
              <input
                type="checkbox"
                name="allowed_providers"
                value={p}
                id={i === 0 ? "f-allowed_providers" : undefined}
                checked={v.providers.includes(p)}
                aria-invalid={errors.allowed_providers ? "true" : undefined}
                autofocus={first === "allowed_providers" && i === 0 ? true : undefined}
              />
              {p}
            </label>
          ))}
        </div>
        <FieldError errors={errors} field="allowed_providers" />
      </fieldset>
      <fieldset
        class="picker"
        aria-describedby={errors.allowed_models ? "allowed_models-error models-hint" : "models-hint"}
      >
        <legend>Models</legend>
        <span class="hint" id="models-hint">
          Nothing chosen: every model of the chosen providers. Open a provider to choose its models.
        </span>
        <label class="filter" hidden>
          Find a model
          <input type="search" data-model-filter="model-groups" autocomplete="off" placeholder="e.g. mini, haiku" />
        </label>
        <p class="hint" data-filter-status="model-groups" aria-live="polite" />
        <div id="model-groups">
          {byProvider.map(([p, list]) => {
            const picked = list.filter((m) => chosen.has(m.id)).length;
            return (
              <details open={picked > 0 ? true : undefined} data-group>
                <summary>
                  {p}{" "}
                  <span class="hint">{picked ? `${picked} chosen of ${list.length}` : `${list.length} models`}</span>
                </summary>
                <div class="choices">
                  {list.map((m) => (
                    <label class="inline" data-model={m.id.toLowerCase()}>
                      <input type="checkbox" name="allowed_models" value={m.id} checked={chosen.has(m.id)} />
                      <code class="wrap">{m.id}</code>
                      {m.price && <span class="hint">{m.price}</span>}
                    </label>
                  ))}
                </div>
              </details>
            );
          })}
        </div>
        <label>
          Other model ids <span class="hint">aliases, snapshots or fine-tunes, comma-separated</span>
          <input
            name="extra_models"
            value={extra}
            id="f-allowed_models"
            aria-invalid={errors.allowed_models ? "true" : undefined}
            aria-describedby={errors.allowed_models ? "allowed_models-error" : undefined}
            autofocus={first === "allowed_models" ? true : undefined}
          />
        </label>
        <FieldError errors={errors} field="allowed_models" />
      </fieldset>
      <fieldset>
        <legend>Limits</legend>
        {key?.parent_key_id ? (
          <div class="readonly" id="f-spend_amount" aria-describedby="carve-hint">
            <span class="label">Spend limit (its carve)</span>{" "}
            <strong>{key.spend_limit ? `$${key.spend_limit.amount} ${per(key.spend_limit.cycle)}` : "none"}</strong>
            <span class="hint" id="carve-hint">
              A child key's spend limit is its carve of its parent's budget
              {parent ? (
                <>
                  {" "}
                  (<a href={`/keys/${parent.id}`}>{parent.name}</a>)
                </>
              ) : null}
              , reserved when it was minted: it cannot change. Revoke the key and have its parent mint another for a
              different carve.
            </span>
          </div>
        ) : (
          <div class="row">
            <label>
              Spend limit (USD) <span class="hint">empty: none</span>
              <input
                name="spend_amount"
                inputmode="decimal"
                value={v.spend_amount}
                {...invalid(errors, "spend_amount", first, family ? "family-hint" : undefined)}
              />
            </label>
            <CycleSelect name="spend_cycle" label="Spend cycle" value={v.spend_cycle} />
          </div>
        )}
        {family && !key?.parent_key_id && (
          <span class="hint" id="family-hint">
            {family.children === 1 ? "1 live child key holds" : `${family.children} live child keys hold`} $
            {family.carved} of this cycle: the limit cannot go below that, and its cycle cannot change while they live.
          </span>
        )}
        <FieldError errors={errors} field="spend_amount" />
        <div class="row">
          <label>
            Request limit <span class="hint">empty: none</span>
            <input
              name="request_count"
              inputmode="numeric"
              value={v.request_count}
              {...invalid(errors, "request_count", first)}
            />
          </label>
          <CycleSelect name="request_cycle" label="Request cycle" value={v.request_cycle} />
        </div>
        <FieldError errors={errors} field="request_count" />
        <div class="row">
          <label>
            Token limit <span class="hint">input + output tokens; empty: none</span>
            <input
              name="token_count"
              inputmode="numeric"
              value={v.token_count}
              {...invalid(errors, "token_count", first)}
            />
          </label>
          <CycleSelect name="token_cycle" label="Token cycle" value={v.token_cycle} />
        </div>
        <FieldError errors={errors} field="token_count" />
        <label>
          Tokens per minute <span class="hint">per UTC minute; empty: no such limit</span>
          <input name="tpm" inputmode="numeric" value={v.tpm} {...invalid(errors, "tpm", first)} />
        </label>
        <FieldError errors={errors} field="tpm" />
        <div class="row">
          <label>
            Requests per minute <span class="hint">empty: no rate limit</span>
            <input name="rpm" inputmode="numeric" value={v.rpm} {...invalid(errors, "rpm", first)} />
          </label>
          <label>
            Burst <span class="hint">empty: the rpm</span>
            <input name="burst" inputmode="numeric" value={v.burst} {...invalid(errors, "burst", first)} />
          </label>
        </div>
        <FieldError errors={errors} field="rpm" />
        <FieldError errors={errors} field="burst" />
        <label>
          Expires at (UTC) <span class="hint">empty: never</span>
          <input
            name="expires_at"
            type="datetime-local"
            value={v.expires_at}
            {...invalid(errors, "expires_at", first)}
          />
        </label>
        <FieldError errors={errors} field="expires_at" />
        <label>
          Webhook alerts at <span class="hint">% of the spend limit, e.g. 50, 80, 95 (the default)</span>
          <input name="alert_thresholds" value={v.alert_thresholds} {...invalid(errors, "alert_thresholds", first)} />
        </label>
        <FieldError errors={errors} field="alert_thresholds" />
        <label class="inline">
          <input type="checkbox" name="clamp_output" checked={v.clamp_output} />
          Lower a request's output limit to what the spend limit affords, rather than refuse it
        </label>
      </fieldset>
      <fieldset aria-describedby="runs-hint">
        <legend>Runs</legend>
        <span class="hint" id="runs-hint">
          Each run (a request's <code>x-spendgate-run</code>) gets its own budget inside the key's, for the run's whole
          life. Empty: runs are only tagged on their requests.
        </span>
        <div class="row">
          <label>
            Spend per run (USD)
            <input
              name="run_spend"
              inputmode="decimal"
              value={v.run_spend}
              {...invalid(errors, "run_spend", first, "runs-hint")}
            />
          </label>
          <label>
            Requests per run
            <input
              name="run_requests"
              inputmode="numeric"
              value={v.run_requests}
              {...invalid(errors, "run_requests", first, "runs-hint")}
            />
          </label>
        </div>
        <FieldError errors={errors} field="run_spend" />
        <FieldError errors={errors} field="run_requests" />
      </fieldset>
      <fieldset aria-describedby="delegation-hint">
        <legend>Child keys</legend>
        <span class="hint" id="delegation-hint">
          Whether the key may mint keys for its sub-agents (<code>POST /v1/key/children</code>), each carved from its
          budget.
        </span>
        <div class="row">
          <label>
            May mint child keys
            <select name="delegation_depth" {...invalid(errors, "delegation_depth", first, "delegation-hint")}>
              <option value="" selected={v.delegation_depth === ""}>
                Off
              </option>
              {["1", "2", "3"].map((d) => (
                <option value={d} selected={v.delegation_depth === d}>
                  {d === "1" ? "1 level below" : `up to ${d} levels below`}
                </option>
              ))}
            </select>
          </label>
          <label>
            Child keys at once <span class="hint">1 to 20</span>
            <input
              name="delegation_children"
              inputmode="numeric"
              value={v.delegation_children}
              {...invalid(errors, "delegation_children", first)}
            />
          </label>
        </div>
        <FieldError errors={errors} field="delegation_depth" />
        <FieldError errors={errors} field="delegation_children" />
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
