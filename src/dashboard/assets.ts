/**
 * The dashboard's only stylesheet and script, served by the Worker itself (no CDN: it works offline in
 * `npm run dev`) from `/assets/`, so the Content-Security-Policy can allow `'self'` and nothing inline.
 */
export const CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa; --accent: #0a5bd3;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid #0969da; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 10px 20px;
  border-bottom: 1px solid var(--line); background: var(--soft); }
header.top .brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; color: var(--fg); }
header.top form { margin-left: auto; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 1.5rem; margin: 8px 0 16px; } h2 { font-size: 1.15rem; margin: 24px 0 8px; }
table { width: 100%; border-collapse: collapse; font-size: 0.92rem; }
th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
.muted { color: var(--muted); } .small { font-size: 0.85rem; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8rem; border: 1px solid; }
.status.active, .status.completed { color: var(--ok); } .status.paused, .status.aborted { color: var(--warn); }
.status.revoked, .status.error, .status.dead, .status.budget { color: var(--bad); }
[hidden] { display: none !important; }
main, .wrap, dd { overflow-wrap: anywhere; }
td { overflow-wrap: break-word; } td.wrap { overflow-wrap: anywhere; } .nowrap { white-space: nowrap; }
a.name { display: inline-block; max-width: 32ch; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  vertical-align: bottom; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
  white-space: nowrap; }
.status.enabled { color: var(--ok); } .status.disabled { color: var(--warn); }
.badges { display: inline-flex; flex-wrap: wrap; gap: 4px; }
.spend { display: inline; }
.spend-bar { display: inline-flex; width: 120px; height: 12px; border: 1px solid #8c959f; border-radius: 6px;
  background: var(--soft); vertical-align: middle; overflow: hidden; }
.spend-bar .fill { display: block; flex: none; height: 100%; background: var(--ok); }
.spend-bar .fill.carved { background: repeating-linear-gradient(135deg, #57606a 0 3px, #8c959f 3px 6px); }
.child-of { display: block; } tr.child.under td.cell-name { padding-left: 22px; }
.spend-bar .fill.warn { background: var(--warn); } .spend-bar .fill.bad { background: var(--bad); }
${Array.from({ length: 101 }, (_, i) => `.w${i}{width:${i}%}`).join("")}
.flash { border: 1px solid var(--ok); background: #effaf1; color: #0f5223; padding: 10px 14px; border-radius: 6px; }
.alert ul { margin: 4px 0 0; padding-left: 20px; } .alert p { margin: 0; }
.alert a { color: var(--bad); }
[aria-invalid="true"] { border-color: var(--bad); outline: 1px solid var(--bad); }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.settings dt { color: var(--muted); font-weight: 600; } dl.settings dd { margin: 0; min-width: 0; }
.picker details { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; margin: 4px 0; }
.picker summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.picker .choices { display: grid; gap: 2px; max-height: 20em; overflow-y: auto; padding: 2px; }
.picker .choices label { flex-wrap: wrap; column-gap: 8px; }
.row > label, .row > * { min-width: 0; max-width: 100%; }
select { min-width: 0; }
[data-filter-status]:empty { margin: 0; }
form.stack { display: grid; gap: 12px; max-width: 640px; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; display: grid; gap: 10px; }
legend { font-weight: 600; padding: 0 4px; }
label { display: grid; grid-template-columns: minmax(0, 1fr); gap: 3px; font-weight: 600; font-size: 0.92rem; }
label.inline { display: flex; align-items: center; gap: 6px; font-weight: 400; }
input, select { font: inherit; padding: 6px 8px; border: 1px solid #8c959f; border-radius: 6px; background: #fff;
  color: var(--fg); max-width: 100%; }
select[multiple] { min-height: 8em; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; }
.hint { font-weight: 400; color: var(--muted); font-size: 0.85rem; }
.field-error { color: var(--bad); font-weight: 600; font-size: 0.88rem; }
.alert { border: 1px solid var(--bad); background: #fff5f5; color: var(--bad); padding: 10px 14px;
  border-radius: 6px; }
.notice { border: 1px solid var(--warn); background: #fff8e6; padding: 10px 14px; border-radius: 6px; }
button, .button { font: inherit; line-height: 1.2; padding: 7px 14px; border-radius: 6px; border: 1px solid #8c959f;
  background: #fff;
  color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary, .button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { border-color: var(--bad); color: var(--bad); }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0; align-items: center; }
.actions form { margin: 0; }
.secret { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.secret code { font-size: 0.95rem; padding: 8px; background: var(--soft); border: 1px solid var(--line);
  border-radius: 6px; word-break: break-all; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow-x: auto;
  font-size: 0.85rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 10px; margin: 10px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .value { font-size: 1.25rem; font-weight: 700; font-variant-numeric: tabular-nums; }
svg.chart { width: 100%; height: auto; max-height: 260px; }
svg.chart .bar { fill: var(--accent); } svg.chart text { font-size: 11px; fill: var(--muted); }
svg.chart .axis { stroke: var(--line); }
.pager { display: flex; gap: 12px; margin-top: 12px; }
@media (max-width: 640px) {
  main { padding: 10px 12px 40px; }
  header.top form { margin-left: 0; }
  table.responsive thead { display: none; }
  table.responsive tr { display: block; border: 1px solid var(--line); border-radius: 8px; margin-bottom: 10px; }
  table.responsive td { display: flex; justify-content: space-between; gap: 12px; border: none; padding: 4px 10px; }
  table.responsive td::before { content: attr(data-label); color: var(--muted); font-weight: 600; flex: none; }
  table.responsive td.num { text-align: right; }
  table.responsive td { overflow-wrap: anywhere; }
  table.responsive td > * { min-width: 0; }
  a.name { max-width: 60vw; }
  dl.settings { grid-template-columns: 1fr; } dl.settings dd { margin-bottom: 6px; }
}
`;

/**
 * Progressive enhancement only: every page works without it. Copy buttons, and the model picker's filter box
 * (without script the picker is plain checkboxes in a <details> per provider).
 */
export const JS = `
document.addEventListener("click", async (e) => {
  const b = e.target.closest("[data-copy]");
  if (!b) return;
  const text = document.getElementById(b.dataset.copy).textContent;
  try { await navigator.clipboard.writeText(text); b.textContent = "Copied"; }
  catch { b.textContent = "Select and copy it"; }
});
for (const b of document.querySelectorAll("[data-copy]")) b.hidden = false;
for (const input of document.querySelectorAll("[data-model-filter]")) {
  const groups = document.getElementById(input.dataset.modelFilter);
  const status = document.querySelector('[data-filter-status="' + input.dataset.modelFilter + '"]');
  const before = new Map();
  input.closest("label").hidden = false;
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
  input.addEventListener("input", () => {
    const q = input.value.trim().toLowerCase();
    let shown = 0;
    for (const d of groups.querySelectorAll("details[data-group]")) {
      let n = 0;
      for (const l of d.querySelectorAll("[data-model]")) {
        const hit = !q || l.dataset.model.includes(q);
        l.hidden = !hit;
        if (hit) n++;
      }
      d.hidden = n === 0;
      if (q) {
        if (!before.has(d)) before.set(d, d.open);
        d.open = n > 0 && n <= 40 ? true : before.get(d);
      } else if (before.has(d)) d.open = before.get(d);
      shown += n;
    }
    if (!q) before.clear();
    status.textContent = q ? shown + (shown === 1 ? " model matches" : " models match") : "";
  });
}
`;
