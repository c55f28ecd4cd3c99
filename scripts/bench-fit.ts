/**
 * `npm run bench:fit` — how well holds fit what coding agents send: a corpus of Claude Code- and Codex-shaped
 * requests (tools, cache control, thinking, screenshots, documents, betas, Responses with tools and reasoning) is
 * replayed through the gateway (built as `wrangler deploy` would upload it, served by Miniflare) to the fake
 * provider, which bills each a realistic usage (`[[usage:…]]`). For each request kind it reports:
 *
 * - the hold: what the gateway names when it refuses the request on a key with one nano-dollar left;
 * - the cost: what the same request is charged on a key without a limit;
 * - hold ÷ cost;
 * - for daily budgets from $0.50 to $10 left, whether a key with that budget (output clamping on, as keys are by
 *   default) admits it, and the share of requests an oracle knowing the real cost would have admitted that the
 *   gateway refuses.
 *
 * Options: `--source <dir>` builds another checkout (a `git worktree` of an earlier commit, with node_modules
 * linked) to measure before and after; `--label <name>` names the run (default: the source's commit);
 * `--compare <file>` puts an earlier run's JSON (bench-results/fit-<label>.json) beside this one. The tables go to
 * stdout and bench-results/fit-<label>.md. It runs no load: one request at a time, a few hundred in all.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { base64, gif, jpeg, pdf, png } from "../test/images.ts";
import { startFakeProvider } from "./fake-provider/server.ts";
import {
  type AgentRequest,
  anthropicImage,
  anthropicPdf,
  CLAUDE_CODE_BETAS,
  CONTEXT_1M,
  claudeCode,
  codex,
  responsesImage,
} from "./lib/agent-requests.ts";
import { buildBundle, newKey, newWallet, startGatewayMiniflare } from "./lib/bench-kit.ts";
import { freePort, ROOT } from "./lib/stack.ts";

const BUDGETS = [0.5, 1, 2, 5, 10];

interface Case {
  kind: string;
  request: AgentRequest;
  /** the usage the fake provider reports, in the provider's own shape */
  usage: Record<string, unknown>;
}

const anthropicUsage = (input: number, write: number, read: number, output: number, more = {}) => ({
  input_tokens: input,
  cache_creation_input_tokens: write,
  cache_read_input_tokens: read,
  output_tokens: output,
  ...more,
});
const responsesUsage = (input: number, cached: number, output: number, reasoning: number) => ({
  input_tokens: input,
  input_tokens_details: { cached_tokens: cached },
  output_tokens: output,
  output_tokens_details: { reasoning_tokens: reasoning },
  total_tokens: input + output,
});

const screenshot = base64(png(1568, 882, { idatBytes: 100_000 }));
const retina = base64(png(2560, 1440, { idatBytes: 300_000 }));
const photo = base64(jpeg(1920, 1080, { scanBytes: 150_000 }));
const doc = base64(pdf(10, { textBytes: 2_000 }));
const diagram = base64(gif(800, 600, { dataBytes: 40_000 }));

/** The corpus: each kind a request an agent sends, with a usage its provider would report for it. */
function corpus(): Case[] {
  const cc = (kind: string, o: Parameters<typeof claudeCode>[0], usage: Record<string, unknown>): Case => ({
    kind: `Claude Code: ${kind}`,
    request: claudeCode({ ...o, note: `[[usage:${JSON.stringify(usage)}]] ${o?.note ?? ""}` }),
    usage,
  });
  const cx = (kind: string, o: Parameters<typeof codex>[0], usage: Record<string, unknown>): Case => ({
    kind: `Codex: ${kind}`,
    request: codex({ ...o, note: `[[usage:${JSON.stringify(usage)}]] ${o?.note ?? ""}` }),
    usage,
  });
  const million = [CLAUDE_CODE_BETAS, CONTEXT_1M];
  const search = { type: "web_search_20250305", name: "web_search", max_uses: 5 };
  const fetch = { type: "web_fetch_20250910", name: "web_fetch", max_uses: 3, max_content_tokens: 20_000 };
  return [
    cc("first turn", {}, anthropicUsage(4, 10_800, 0, 320)),
    cc("later turn", { historyBytes: 40_000 }, anthropicUsage(6, 2_400, 10_800, 900)),
    cc("thinking", { historyBytes: 40_000, thinking: 16_000 }, anthropicUsage(6, 1_200, 13_200, 4_200)),
    cc("context-1m", { betas: million }, anthropicUsage(4, 10_800, 0, 320)),
    cc(
      "context-1m, long session",
      { betas: million, historyBytes: 600_000 },
      anthropicUsage(10, 3_000, 160_000, 1_100),
    ),
    cc("screenshot", { attach: [anthropicImage(screenshot)] }, anthropicUsage(12, 1_700, 10_800, 400)),
    cc(
      "screenshot, context-1m",
      { attach: [anthropicImage(screenshot)], betas: million },
      anthropicUsage(12, 1_700, 10_800, 400),
    ),
    cc(
      "two photos (JPEG) and a GIF",
      {
        attach: [
          anthropicImage(photo, "image/jpeg"),
          anthropicImage(photo, "image/jpeg"),
          anthropicImage(diagram, "image/gif"),
        ],
      },
      anthropicUsage(10, 4_700, 10_800, 500),
    ),
    cc(
      "Opus 4.7, retina screenshot",
      { model: "claude-opus-4-7", attach: [anthropicImage(retina)] },
      anthropicUsage(10, 4_900, 10_800, 500),
    ),
    cc("PDF, 10 pages", { attach: [anthropicPdf(doc)] }, anthropicUsage(10, 28_000, 10_800, 700)),
    cc(
      "web search, max_uses 5",
      { serverTools: [search] },
      anthropicUsage(9_000, 0, 10_800, 800, { server_tool_use: { web_search_requests: 2 } }),
    ),
    cc("web fetch, 3 × 20k tokens", { serverTools: [fetch] }, anthropicUsage(25_000, 0, 10_800, 600)),
    cc("Haiku subagent", { model: "claude-haiku-4-5-20251001", tools: 6 }, anthropicUsage(4, 6_000, 0, 300)),
    cx("first turn", {}, responsesUsage(7_200, 0, 900, 600)),
    cx("later turn", { historyBytes: 60_000 }, responsesUsage(22_000, 19_000, 1_200, 700)),
    cx("long session", { historyBytes: 500_000 }, responsesUsage(130_000, 120_000, 1_500, 900)),
    cx(
      "screenshot",
      { attach: [responsesImage(`data:image/png;base64,${screenshot}`)] },
      responsesUsage(9_000, 7_200, 700, 400),
    ),
    cx(
      "gpt-5.5, screenshot",
      { model: "gpt-5.5", attach: [responsesImage(`data:image/png;base64,${screenshot}`)] },
      responsesUsage(9_000, 7_200, 700, 400),
    ),
    cx("web search", { webSearch: true, note: "[web_search_calls:2]" }, responsesUsage(14_000, 7_200, 900, 500)),
  ];
}

const usd = (text: string) => Math.round(Number(text) * 1e9);
const money = (nanos: number) => `$${(nanos / 1e9).toFixed(nanos < 1e8 ? 4 : 2)}`;

interface Row {
  kind: string;
  holdNanos: number | null;
  costNanos: number | null;
  /** per budget: admitted (true), refused (false) */
  admitted: Record<string, boolean | null>;
  note?: string;
}

async function main() {
  const { values } = parseArgs({
    options: { source: { type: "string" }, label: { type: "string" }, compare: { type: "string" } },
  });
  const source = values.source ?? ROOT;
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: source, encoding: "utf8" }).trim();
  const label = values.label ?? commit;
  const work = mkdtempSync(join(tmpdir(), "spendgate-fit-"));
  const fake = await startFakeProvider(0, { record: 10 });
  const mf = await startGatewayMiniflare(buildBundle(join(work, "dist"), source).file, fake.url, await freePort());
  try {
    const origin = (await mf.ready).origin;
    const wallet = await newWallet(origin, "bench-admin");
    const key = (body: Record<string, unknown>, anthropic: boolean) =>
      newKey(origin, wallet, { ...body, ...(anthropic ? { request_shape: "anthropic" } : {}) });
    const tiny = { anthropic: await key(LIMIT(1e-9, false), true), openai: await key(LIMIT(1e-9, false), false) };
    const send = async (req: AgentRequest, k: string) => {
      const auth: Record<string, string> =
        req.path === "/v1/messages" ? { "x-api-key": k } : { authorization: `Bearer ${k}` };
      const res = await fetch(origin + req.path, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth, ...req.headers },
        body: JSON.stringify(req.body),
      });
      return { status: res.status, text: await res.text() };
    };
    const rows: Row[] = [];
    for (const c of corpus()) {
      const anthropic = c.request.path === "/v1/messages";
      const row: Row = { kind: c.kind, holdNanos: null, costNanos: null, admitted: {} };
      const refused = await send(c.request, anthropic ? tiny.anthropic.key : tiny.openai.key);
      const named = /worst-case cost \(\$([\d.]+)/.exec(refused.text)?.[1];
      if (named) row.holdNanos = usd(named);
      else row.note = `${refused.status} ${refused.text.slice(0, 160)}`;
      const open = await key({}, anthropic);
      const served = await send(c.request, open.key);
      if (served.status === 200) {
        const view = await (
          await fetch(`${origin}/v1/key`, { headers: { authorization: `Bearer ${open.key}` } })
        ).json();
        row.costNanos = usd((view as { total_spend: string }).total_spend);
      } else row.note ??= `${served.status} ${served.text.slice(0, 160)}`;
      for (const budget of BUDGETS) {
        const limited = await key(LIMIT(budget, true), anthropic);
        row.admitted[budget] = (await send(c.request, limited.key)).status === 200;
      }
      rows.push(row);
      process.stderr.write(".");
    }
    process.stderr.write("\n");
    mkdirSync(join(ROOT, "bench-results"), { recursive: true });
    const file = join(ROOT, "bench-results", `fit-${label}.json`);
    writeFileSync(file, `${JSON.stringify({ label, commit, rows }, null, 2)}\n`);
    // The tables go to a file too: the Worker's own log lines share stdout with them.
    const before = values.compare
      ? (JSON.parse(readFileSync(values.compare, "utf8")) as { label: string; rows: Row[] })
      : null;
    const tables = report(label, rows, before);
    writeFileSync(file.replace(/\.json$/, ".md"), `${tables}\n`);
    console.log(`\n${tables}`);
    console.error(`(written to ${file} and ${file.replace(/\.json$/, ".md")})`);
  } finally {
    await mf.dispose();
    await fake.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** A daily spend limit of `amount` USD. */
const LIMIT = (amount: number, clamp: boolean) => ({
  spend_limit: { amount: amount.toFixed(9), cycle: "daily" },
  clamp_output: clamp,
});

const ratio = (r: Row) => (r.holdNanos !== null && r.costNanos ? r.holdNanos / r.costNanos : null);

/** The markdown tables: per kind hold, cost and hold ÷ cost (beside an earlier run's), then refusals per budget. */
function report(label: string, rows: Row[], before: { label: string; rows: Row[] } | null): string {
  const earlier = new Map(before?.rows.map((r) => [r.kind, r]));
  const columns = (name: string) => `Hold (${name}) | Hold ÷ cost (${name})`;
  const head = before
    ? `| Request | Cost | ${columns(before.label)} | ${columns(label)} |`
    : "| Request | Cost | Hold | Hold ÷ cost |";
  const lines = [head, head.replace(/[^|]+/g, "---")];
  const cell = (r: Row | undefined) =>
    r ? `${r.holdNanos === null ? "n/a" : money(r.holdNanos)} | ${ratio(r)?.toFixed(1) ?? "n/a"}×` : "n/a | n/a";
  for (const r of rows) {
    const cost = r.costNanos === null ? "n/a" : money(r.costNanos);
    lines.push(
      before
        ? `| ${r.kind} | ${cost} | ${cell(earlier.get(r.kind))} | ${cell(r)} |`
        : `| ${r.kind} | ${cost} | ${cell(r)} |`,
    );
  }
  lines.push("", refusals(label, rows, before));
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.kind}: ${r.note}`);
  if (notes.length) lines.push("", ...notes);
  return lines.join("\n");
}

/** Per budget: of the requests an oracle knowing the cost admits (cost ≤ budget), the share the gateway refuses. */
function refusals(label: string, rows: Row[], before: { label: string; rows: Row[] } | null): string {
  const share = (rs: Row[], budget: number) => {
    const affordable = rs.filter((r) => r.costNanos !== null && r.costNanos <= budget * 1e9);
    const refused = affordable.filter((r) => r.admitted[budget] === false);
    const percent = Math.round((100 * refused.length) / Math.max(1, affordable.length));
    return `${refused.length} of ${affordable.length} (${percent} %)`;
  };
  const column = (name: string) => `Refused though affordable (${name})`;
  const head = before
    ? `| Budget left | ${column(before.label)} | ${column(label)} |`
    : `| Budget left | ${column(label)} |`;
  const lines = [head, head.replace(/[^|]+/g, "---")];
  for (const b of BUDGETS) {
    lines.push(`| $${b.toFixed(2)} | ${before ? `${share(before.rows, b)} | ` : ""}${share(rows, b)} |`);
  }
  return lines.join("\n");
}

await main();
