/**
 * What `npm run bench` and `npm run bench:ab` share: process pinning and CPU accounting, the open-loop load
 * generator, the gateway built and served as `wrangler deploy` would upload it, and management calls over HTTP.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import * as hdr from "hdr-histogram-js";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { Pool } from "undici";
import { fakeProviderVars, ROOT } from "./stack.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Processes: pin where possible.

export function pin(pid: number, cpu: number): boolean {
  return spawnSync("taskset", ["-a", "-pc", String(cpu), String(pid)], { stdio: "ignore" }).status === 0;
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const child of readChildren(pid)) out.push(child, ...descendants(child));
  return out;
}

function readChildren(pid: number): number[] {
  const res = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  return res.stdout.split("\n").filter(Boolean).map(Number);
}

export function procName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** CPU ms (user + system) and RSS of the workerd processes below our process tree. */
export function workerdStats(root = process.pid): Map<number, { cpuMs: number; rssMb: number }> {
  const out = new Map<number, { cpuMs: number; rssMb: number }>();
  const tick = 100; // USER_HZ on Linux
  for (const pid of descendants(root)) {
    if (!procName(pid).startsWith("workerd")) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / tick;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      out.set(pid, { cpuMs, rssMb: rss ? Number(rss[1]) / 1024 : 0 });
    } catch {
      // exited
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client and open-loop load.

export interface Target {
  name: string;
  origin: string;
  pool: Pool;
  path: (route: "chat" | "messages") => string;
  auth: (key: string) => Record<string, string>;
}

export function target(name: string, origin: string, prefix: string, providerAuth = false): Target {
  return {
    name,
    origin,
    pool: new Pool(origin, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 }),
    path: (route) => (route === "chat" ? `${prefix}/chat/completions` : `${prefix.replace(/\/v1$/, "")}/v1/messages`),
    auth: (key) => (providerAuth ? { authorization: "Bearer fake" } : { authorization: `Bearer ${key}` }),
  };
}

export const chatBody = (i: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: "gpt-4o-mini",
    max_tokens: 16,
    messages: [{ role: "user", content: `benchmark request ${i % 50}` }],
    ...extra,
  });

export async function send(t: Target, key: string, body: string): Promise<{ status: number; text: string }> {
  const res = await t.pool.request({
    method: "POST",
    path: t.path("chat"),
    headers: { "content-type": "application/json", ...t.auth(key) },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

interface LoadResult {
  hist: hdr.Histogram;
  /** one histogram per lane: request i is in lane i % lanes */
  lanes: hdr.Histogram[];
  sent: number;
  statuses: Record<string, number>;
  errors: number;
  /** why requests failed without a status (the first few), with their lane: so a failed run says what failed */
  failures: string[];
  achievedRps: number;
}

export const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

/**
 * Open loop: request i is sent at start + i/rate whatever happened before; latency counts from then. With
 * `lanes` > 1 the requests are also recorded lane by lane (i % lanes), for targets sent to alternately.
 */
export async function openLoop(
  rate: number,
  seconds: number,
  fire: (i: number) => Promise<number>,
  lanes = 1,
): Promise<LoadResult> {
  const hist = histogram();
  const laneHists = Array.from({ length: lanes }, histogram);
  const statuses: Record<string, number> = {};
  let errors = 0;
  const failures: string[] = [];
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const at = start + (i * 1000) / rate;
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    inflight.push(
      fire(i).then(
        (status) => {
          const us = Math.max(1, Math.round((performance.now() - at) * 1000));
          hist.recordValue(us);
          laneHists[i % lanes]!.recordValue(us);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status >= 500) errors++;
        },
        (err: unknown) => {
          errors++;
          statuses.error = (statuses.error ?? 0) + 1;
          const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
          const why = err instanceof Error ? `${err.name}: ${err.message}${cause}` : String(err);
          if (failures.length < 5)
            failures.push(`request ${i} (lane ${i % lanes}) at ${Math.round(at - start)} ms: ${why}`);
        },
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  return { hist, lanes: laneHists, sent: total, statuses, errors, failures, achievedRps: total / elapsed };
}

export const ms = (us: number) => Math.round(us / 10) / 100;

// ---------------------------------------------------------------------------------------------------------
// Workers under test.

/** The Worker of the checkout at `source` (default: this one) bundled as `wrangler deploy` would upload it. */
export function buildBundle(outdir: string, source = ROOT): { file: string; gzipKiB: number; rawKiB: number } {
  execFileSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
    cwd: source,
    stdio: "ignore",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  const file = join(outdir, "index.js");
  const raw = readFileSync(file);
  return { file, rawKiB: raw.length / 1024, gzipKiB: gzipSync(raw).length / 1024 };
}

/**
 * The Worker of `source` with every KeyGuard RPC made `BENCH_GUARD_DELAY_MS` further away (distance-entry.ts), for
 * the bench's distance rounds: a generated entry imports the checkout's Worker, and wrangler bundles it as for a
 * deploy. The deployed Worker has no such knob.
 */
export function buildDistanceBundle(outdir: string, source = ROOT): string {
  mkdirSync(outdir, { recursive: true });
  const entry = join(outdir, "distance-index.ts");
  writeFileSync(
    entry,
    [
      "// Generated by the bench: the checkout's Worker with its KeyGuard made far away.",
      `import worker, { KeyGuard } from ${JSON.stringify(join(source, "src", "index.ts"))};`,
      `import { withDistance } from ${JSON.stringify(join(ROOT, "scripts", "lib", "distance-entry.ts"))};`,
      "export { KeyGuard };",
      "export default withDistance(worker);",
      "",
    ].join("\n"),
  );
  const out = join(outdir, "dist");
  execFileSync(
    join(ROOT, "node_modules", ".bin", "wrangler"),
    ["deploy", "--dry-run", "--config", join(source, "wrangler.toml"), "--outdir", out, entry],
    { cwd: source, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  return join(out, "index.js");
}

/** `guardDelayMs`: the simulated distance a distance bundle (above) adds to each KeyGuard RPC. */
export async function startGatewayMiniflare(bundle: string, fakeUrl: string, port: number, guardDelayMs = 0) {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      modules: [{ type: "ESModule", path: bundle }],
      modulesRoot: dirname(bundle),
      compatibilityDate: "2026-11-01",
      d1Databases: { DB: "bench-db" },
      durableObjects: { KEY_GUARD: { className: "KeyGuard", useSQLite: true } },
      // The bookkeeping queue (each guard's rows and counters to D1, batched across keys) as wrangler.toml sets
      // it, and the webhook queue and archive bucket the Worker binds (a build without them ignores them).
      queueProducers: { LEDGER: { queueName: "spendgate-ledger" }, WEBHOOKS: { queueName: "spendgate-webhooks" } },
      queueConsumers: { "spendgate-ledger": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 } },
      r2Buckets: ["ARCHIVE"],
      bindings: {
        ...fakeProviderVars(fakeUrl),
        ADMIN_TOKEN: "bench-admin",
        SPENDGATE_ENV: "development",
        MAX_BODY_BYTES: "33554432",
        UPSTREAM_TIMEOUT_MS: "600000",
        MAX_INFLIGHT_PER_KEY: "1000",
        HOLD_TTL_MS: "900000",
        DISCONNECT_DRAIN_MS: "30000",
        BENCH_GUARD_DELAY_MS: String(guardDelayMs),
      },
    }),
  );
  await mf.ready;
  const db = await mf.getD1Database("DB");
  for (const f of readdirSync(join(ROOT, "migrations"))
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    for (const stmt of readFileSync(join(ROOT, "migrations", f), "utf8").split("--> statement-breakpoint")) {
      if (stmt.trim()) await db.prepare(stmt).run();
    }
  }
  return mf;
}

// ---------------------------------------------------------------------------------------------------------
// Management helpers over HTTP.

export async function api(origin: string, method: string, path: string, auth: string, body?: unknown) {
  const res = await fetch(origin + path, {
    method,
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function newWallet(origin: string, admin: string): Promise<string> {
  return (await api(origin, "POST", "/admin/wallets", admin, { name: "bench" })).secret_key;
}

export async function newKey(
  origin: string,
  wallet: string,
  body: Record<string, unknown> = {},
): Promise<{ key: string; id: string }> {
  const k = await api(origin, "POST", "/v1/spend_keys", wallet, { name: "bench", ...body });
  return { key: k.key, id: k.spend_key_id };
}
