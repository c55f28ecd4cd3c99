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
.status.revoked, .status.error, .status.dead { color: var(--bad); }
meter { width: 140px; height: 12px; vertical-align: middle; }
form.stack { display: grid; gap: 12px; max-width: 640px; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; display: grid; gap: 10px; }
legend { font-weight: 600; padding: 0 4px; }
label { display: grid; gap: 3px; font-weight: 600; font-size: 0.92rem; }
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
  table.responsive td::before { content: attr(data-label); color: var(--muted); font-weight: 600; }
  table.responsive td.num { text-align: right; }
}
`;

/** Progressive enhancement only: every page works without it. Copy buttons, and a confirm before danger. */
export const JS = `
document.addEventListener("click", async (e) => {
  const b = e.target.closest("[data-copy]");
  if (!b) return;
  const text = document.getElementById(b.dataset.copy).textContent;
  try { await navigator.clipboard.writeText(text); b.textContent = "Copied"; }
  catch { b.textContent = "Select and copy it"; }
});
for (const b of document.querySelectorAll("[data-copy]")) b.hidden = false;
`;
