import type { Child, FC } from "hono/jsx";

/**
 * The page shell and the small pieces every page uses. Hono's JSX escapes every string it renders, so names,
 * metadata and model ids a user typed are text, never markup.
 */
export const NAV = [
  ["/keys", "Keys"],
  ["/requests", "Requests"],
  ["/usage", "Usage"],
  ["/models", "Models"],
  ["/webhooks", "Webhooks"],
] as const;

export const Page: FC<{ title: string; current?: string; csrf?: string; notice?: string; children?: Child }> = (p) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${p.title} · Spendgate`}</title>
      <link rel="stylesheet" href="/assets/app.css" />
      <script src="/assets/app.js" defer />
    </head>
    <body>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/keys">
          Spendgate
        </a>
        {p.csrf !== undefined && (
          <nav aria-label="Main">
            <ul>
              {NAV.map(([href, label]) => (
                <li>
                  <a href={href} aria-current={p.current === href ? "page" : undefined}>
                    {label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {p.csrf !== undefined && (
          <form method="post" action="/signout">
            <input type="hidden" name="_csrf" value={p.csrf} />
            <button type="submit">Sign out</button>
          </form>
        )}
      </header>
      <main id="main">
        <h1 class="wrap">{p.title}</h1>
        <Notice text={p.notice} />
        {p.children}
      </main>
    </body>
  </html>
);

/** A state-changing form: POST to our own origin with the session's CSRF token. */
export const PostForm: FC<{ action: string; csrf: string; class?: string; novalidate?: boolean; children?: Child }> = (
  p,
) => (
  <form method="post" action={p.action} class={p.class} novalidate={p.novalidate}>
    <input type="hidden" name="_csrf" value={p.csrf} />
    {p.children}
  </form>
);

/** Money as the API gives it (an exact decimal string), with a currency sign. */
export const Usd: FC<{ amount: string | null | undefined }> = ({ amount }) => (
  <>{amount === null || amount === undefined ? "—" : `$${amount}`}</>
);

/** A form's messages by field (`form`: one no field owns), in the form's own words. */
export type Errors = Partial<Record<string, string>>;

/** A field's message, next to it; the field points at it with `aria-describedby`. */
export const FieldError: FC<{ errors: Errors; field: string }> = (p) =>
  p.errors[p.field] ? (
    <span class="field-error" id={`${p.field}-error`}>
      {p.errors[p.field]}
    </span>
  ) : null;

/** Above a refused form: what is wrong, each linking to its field (`#f-<field>`), and any message no field owns. */
export const ErrorSummary: FC<{ errors: Errors; order: readonly string[] }> = (p) => {
  const fields = p.order.filter((f) => p.errors[f]);
  if (!fields.length && !p.errors.form) return null;
  return (
    <div class="alert" role="alert">
      {p.errors.form && <p>{p.errors.form}</p>}
      {fields.length > 0 && (
        <>
          <p>{fields.length === 1 ? "One field needs" : `${fields.length} fields need`} a change; nothing was saved:</p>
          <ul>
            {fields.map((f) => (
              <li>
                <a href={`#f-${f}`}>{p.errors[f]}</a>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
};

/** A confirmation of what the last action did (a flash carried over the redirect). */
export const Notice: FC<{ text: string | undefined }> = (p) =>
  p.text ? (
    <p class="flash" role="status">
      {p.text}
    </p>
  ) : null;

/** A secret shown once, with a copy button (progressive enhancement) and the plain warning. */
export const ShownOnce: FC<{ id: string; value: string; what: string; encrypted?: boolean }> = (p) => (
  <div class="notice">
    <p>
      <strong>Copy this {p.what} now.</strong> It is shown only once:{" "}
      {p.encrypted
        ? "Spendgate stores it encrypted, only to sign deliveries, and never shows it again (rotate it for a new one)."
        : "Spendgate keeps only its hash and cannot show it again."}{" "}
      Reloading this page will not show it.
    </p>
    <div class="secret">
      <code id={p.id}>{p.value}</code>
      <button type="button" data-copy={p.id} hidden>
        Copy
      </button>
    </div>
  </div>
);

/** "per day", "per month", "in total". */
export const per = (cycle: string) =>
  cycle === "total" ? "in total" : `per ${{ daily: "day", weekly: "week", monthly: "month" }[cycle] ?? cycle}`;

export const Status: FC<{ value: string }> = ({ value }) => <span class={`status ${value}`}>{value}</span>;

/** A spend-per-day bar chart drawn as SVG on the server (no script, no library). */
export const DayChart: FC<{ days: { date: string; cost: string }[]; total: string; label: string }> = (p) => {
  const { days, label } = p;
  const values = days.map((d) => Number(d.cost));
  const max = Math.max(...values, 0);
  const width = 640;
  const height = 200;
  const pad = 28;
  const step = days.length ? (width - pad) / days.length : 0;
  return (
    <figure>
      <svg class="chart" viewBox={`0 0 ${width} ${height + 24}`} role="img" aria-label={label}>
        <title>{label}</title>
        <line class="axis" x1={pad} y1={height} x2={width} y2={height} />
        <text x={0} y={12}>{`$${max}`}</text>
        {days.map((d, i) => {
          const h = max > 0 ? (Number(d.cost) / max) * (height - 20) : 0;
          return (
            <rect class="bar" x={pad + i * step + 1} y={height - h} width={Math.max(1, step - 2)} height={h}>
              <title>{`${d.date}: $${d.cost}`}</title>
            </rect>
          );
        })}
        {days.length > 0 && (
          <text x={pad} y={height + 16}>
            {days[0]?.date}
          </text>
        )}
        {days.length > 1 && (
          <text x={width - 70} y={height + 16}>
            {days[days.length - 1]?.date}
          </text>
        )}
      </svg>
      <figcaption class="small muted">
        {label}: ${p.total} in all.
      </figcaption>
    </figure>
  );
};

/** Newer / older links for a keyset-paginated list. */
export const Pager: FC<{ next?: string | undefined; base: string; query: Record<string, string | undefined> }> = (
  p,
) => {
  if (!p.next) return null;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p.query)) if (v) q.set(k, v);
  q.set("cursor", p.next);
  return (
    <nav class="pager" aria-label="Pages">
      <a href={`${p.base}?${q}`}>Older →</a>
    </nav>
  );
};

/** A labelled select of plain values, the empty one reading "any" (the list filters). */
export const Choice: FC<{ label: string; name: string; value: string; options: readonly string[] }> = (p) => (
  <label>
    {p.label}
    <select name={p.name}>
      {["", ...p.options].map((o) => (
        <option value={o} selected={p.value === o}>
          {o || "any"}
        </option>
      ))}
    </select>
  </label>
);
