/**
 * `npm run bench:scale`: D1 writes as the number of active spend keys grows, for two builds in one run.
 *
 * Builds: BENCH_SCALE_BASE (default 760e1c6, the last code whose KeyGuards wrote D1 from their own alarms) and
 * BENCH_SCALE_NEW (a revision; default this checkout as it stands), each from its own source (a temporary git
 * worktree for a revision) and served one after the other by Miniflare with the bindings of its own wrangler.toml.
 * Each Worker is wrapped by a bench-only entry (lib/scale-entry.ts) that counts D1 write transactions and the rows
 * they write at its D1 bindings, in every handler and in the Durable Object.
 *
 * Tiers: BENCH_SCALE_KEYS (default 100,500,2000) active keys, each sending a request every BENCH_SCALE_INTERVAL_S
 * (default 5) seconds on average, at random (one Poisson schedule of N / interval requests a second, each to a key
 * drawn at random; the same seeded schedule for both builds), BENCH_SCALE_WARM_S (10) of warm-up, then a measured
 * window of BENCH_SCALE_S (30) seconds. Per tier: requests a second answered, D1 write transactions a second, rows
 * written per transaction and per request, the lag from a request's answer to its ledger row answering
 * `GET /v1/requests/{id}` (one request in BENCH_SCALE_SAMPLE, default 20, but at most BENCH_SCALE_SAMPLE_MAX_RPS,
 * default 2, a second, since the polls load the same Worker; polled every 100 ms for up to 60 s), the gateway's p50
 * and p99 (open loop: from the scheduled time), workerd CPU per request, how long after the window the tier's last
 * ledger row reached D1, and the CPU other processes took meanwhile. A tier is "sustained" when the answers kept
 * pace, the gateway p99 stayed under 2 s, nothing failed and D1 had every row within 10 s of the window. Between
 * phases the bench waits for workerd to go idle, so what one phase set off (alarms, resends) stays out of the next.
 * Per build: bytes per ledger row in D1 with its indexes (`dbstat` over the database file), and days until D1's
 * 10 GB at 10 / 100 / 1,000 requests a second, without and with retention.
 *
 * The load generator, the pollers and the fake provider run on core 0, workerd on core 1 (taskset), as in
 * `npm run bench`. Results: a table on stdout and bench-results/scale.json.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { startFakeProvider } from "./fake-provider/server.ts";
import { chatBody, descendants, histogram, ms, newKey, newWallet, pin, procName, sleep } from "./lib/bench-kit.ts";
import type { D1Counts, D1Report } from "./lib/scale-entry.ts";
import {
  bundleScaleWorker,
  rollupStorage,
  type ScaleWorker,
  startScaleWorker,
  type TableStorage,
  tableStorage,
} from "./lib/scale-stack.ts";
import { fakeProviderVars, freePort, ROOT } from "./lib/stack.ts";
import { checkoutRevision, removeCheckout } from "./lib/worktree.ts";

const TIERS = (process.env.BENCH_SCALE_KEYS ?? "100,500,2000").split(",").map(Number);
const WINDOW_S = Number(process.env.BENCH_SCALE_S ?? 30);
const WARM_S = Number(process.env.BENCH_SCALE_WARM_S ?? 10);
const INTERVAL_S = Number(process.env.BENCH_SCALE_INTERVAL_S ?? 5);
const SAMPLE_EVERY = Number(process.env.BENCH_SCALE_SAMPLE ?? 20);
const SAMPLE_MAX_RPS = Number(process.env.BENCH_SCALE_SAMPLE_MAX_RPS ?? 2);
const BASE = process.env.BENCH_SCALE_BASE ?? "760e1c6";
const NEW = process.env.BENCH_SCALE_NEW;
/** Retention assumed for the projections (the new build's defaults: RETENTION_DAYS, RETENTION_MAX_BYTES). */
const RETENTION_DAYS = Number(process.env.BENCH_SCALE_RETENTION_DAYS ?? 30);
const RETENTION_BYTES = Number(process.env.BENCH_SCALE_RETENTION_BYTES ?? 3e9);
const ADMIN = "bench-admin";
const KEYS_PER_WALLET = 100;
const CREATE_CONCURRENCY = 20;
const POLL_MS = 100;
const POLL_LIMIT_MS = 60_000;
/** D1's largest database (10 GB, taken as 10^10 bytes). */
const D1_LIMIT = 10e9;
const PROJECTED_RATES = [10, 100, 1000];
/** The rollup projection: this many keys × models active every day. */
const ROLLUP_KEYS = 1000;
const ROLLUP_MODELS = 3;

const log = (s: string) => console.error(`[bench:scale] ${new Date().toISOString().slice(11, 19)} ${s}`);

const work = mkdtempSync(join(tmpdir(), "spendgate-scale-"));
const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();

const checkout = (rev: string, name: string) => checkoutRevision(rev, join(work, name));

interface Build {
  name: string;
  source: string;
  /** the commit; for the working tree its HEAD, with "+" when tracked files have uncommitted changes */
  revision: string;
}

function workingTree(): Build {
  const dirty = git("status", "--porcelain", "--untracked-files=no").length > 0;
  return { name: "working tree", source: ROOT, revision: `${git("rev-parse", "--short", "HEAD")}${dirty ? "+" : ""}` };
}

// ---------------------------------------------------------------------------------------------------------
// Load: a seeded Poisson schedule over the tier's keys, and the lag samples.

/** mulberry32: the same schedule for both builds of a tier. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SpendKey {
  key: string;
  wallet: string;
}

interface TierResult {
  keys: number;
  targetRps: number;
  /** gateway requests answered (200) within the window, a second */
  achievedRps: number;
  /** requests answered with something other than 200, or not at all (warm-up and window) */
  failed: number;
  failures: string[];
  /** how late the generator sent its latest request, ms (it shares core 0 with the pollers and the fake provider) */
  senderLateMs: number;
  d1TxPerS: number;
  rowsPerTx: number;
  rowsPerRequest: number;
  txBy: D1Counts["txBy"];
  rowsByTable: Record<string, number>;
  lagP50Ms: number | null;
  lagP99Ms: number | null;
  lagSamples: number;
  lagTimeouts: number;
  /** lag polls a second during the window: they load the same Worker (and D1) */
  pollsPerS: number;
  /** from a request's scheduled time to its answer (open loop: queueing shows), requests of the window */
  gatewayP50Ms: number;
  gatewayP99Ms: number;
  workerdCpuMsPerRequest: number;
  /** CPU that processes outside this bench used during the window, % of one core (this machine is shared) */
  foreignCpuPct: number | null;
  /** from the window's end until every ledger row of the tier was in D1; null when they were not within 5 min */
  drainS: number | null;
  /** D1 rows written per ledger row inserted (the rows of `requests` statements ÷ new rows in `requests`) */
  rowsWrittenPerLedgerRow: number;
  sustained: boolean;
  why: string;
}

async function d1Report(origin: string): Promise<D1Report> {
  const res = await fetch(`${origin}/__bench/d1`);
  if (!res.ok) throw new Error(`GET /__bench/d1: ${res.status} ${await res.text()}`);
  return (await res.json()) as D1Report;
}

function diff(a: D1Counts, b: D1Counts) {
  const rowsByTable: Record<string, number> = {};
  for (const [t, n] of Object.entries(b.rowsByTable)) {
    const d = n - (a.rowsByTable[t] ?? 0);
    if (d) rowsByTable[t] = d;
  }
  return {
    tx: b.tx - a.tx,
    rows: b.rows - a.rows,
    rowsUnknown: b.rowsUnknown - a.rowsUnknown,
    txBy: {
      fetch: b.txBy.fetch - a.txBy.fetch,
      queue: b.txBy.queue - a.txBy.queue,
      scheduled: b.txBy.scheduled - a.txBy.scheduled,
      guard: b.txBy.guard - a.txBy.guard,
    },
    rowsByTable,
  };
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null) : null;

async function ledgerRows(w: ScaleWorker): Promise<number> {
  const db = await w.mf.getD1Database("DB");
  return (await db.prepare("SELECT count(*) AS n FROM requests").first<number>("n")) ?? 0;
}

/** User + system CPU ms of one process (all its threads), 0 once it is gone. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ
  } catch {
    return 0;
  }
}

/**
 * CPU ms the whole machine spent (user, nice, system, irq, softirq: not the hypervisor's steal) and the part of it
 * this bench's processes spent; null off Linux.
 */
function machineCpu(): { busyMs: number; oursMs: number } | null {
  try {
    const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0);
    const ours = [process.pid, ...descendants(process.pid)].reduce((sum, pid) => sum + processCpuMs(pid), 0);
    return { busyMs: (busy * 1000) / 100, oursMs: ours };
  } catch {
    return null;
  }
}

/**
 * Waits until workerd has used under 3 % of a core for 3 s in a row: what the last phase set off (alarms, resends,
 * queue batches) has run, so that it does not land in the next window.
 */
async function quiesce(pids: number[], limitMs = 180_000): Promise<void> {
  const cpu = () => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
  const until = Date.now() + limitMs;
  let last = cpu();
  let quiet = 0;
  while (Date.now() < until) {
    await sleep(1000);
    const now = cpu();
    quiet = now - last < 30 ? quiet + 1 : 0;
    last = now;
    if (quiet >= 3) return;
  }
  log(`  workerd did not go idle within ${limitMs / 1000} s; going on`);
}

/** What a tier's drain waits for at most: the next tier should start on an idle Worker. */
const DRAIN_LIMIT_MS = 300_000;
/** A tier whose last rows reach D1 later than this after the window fell behind. */
const DRAIN_OK_S = 10;
/** A gateway p99 above this means requests queued: the Worker did not keep up. */
const QUEUED_P99_MS = 2000;

async function runTier(
  w: ScaleWorker,
  keys: SpendKey[],
  pids: number[],
  answered: { ok: number },
  cronFired: () => number,
): Promise<TierResult> {
  const n = keys.length;
  const rate = n / INTERVAL_S;
  const sampleEvery = Math.max(SAMPLE_EVERY, Math.ceil(rate / SAMPLE_MAX_RPS));
  const next = random(n);
  // Short keep-alive: a connection workerd has closed while idle is not reused (a reset POST is not retried).
  const gateway = new Pool(w.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 4_000 });
  const polls = new Pool(w.origin, { connections: 32, pipelining: 1, keepAliveTimeout: 4_000 });
  const hist = histogram();
  const lags: number[] = [];
  let lagTimeouts = 0;
  let failed = 0;
  const failures: string[] = [];
  const fail = (why: string) => {
    failed++;
    if (failures.length < 5) failures.push(why);
  };
  let senderLateMs = 0;
  const okBefore = answered.ok;
  const rowsBefore = await ledgerRows(w);
  const before = await d1Report(w.origin);
  const cpu = () => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0);

  const start = performance.now();
  const windowStart = start + WARM_S * 1000;
  const windowEnd = windowStart + WINDOW_S * 1000;
  let answeredInWindow = 0;
  let pollsInWindow = 0;
  let inWindow = 0;
  let sampled = 0;
  // The counters are read at the window's edges by timers, whatever the sender is doing then.
  const edge = async (at: number) => {
    await sleep(at - performance.now());
    const asked = performance.now();
    const report = await d1Report(w.origin);
    // An overloaded Worker answers late: the counts were read somewhere between asking and the answer.
    return { t: (asked + performance.now()) / 2, report, cpuMs: cpu(), machine: machineCpu(), cron: cronFired() };
  };
  const edges = Promise.all([edge(windowStart), edge(windowEnd)]);
  const within = (t: number) => t >= windowStart && t < windowEnd;

  const poll = async (id: string, wallet: string, answeredAt: number) => {
    for (;;) {
      if (within(performance.now())) pollsInWindow++;
      const res = await polls.request({
        method: "GET",
        path: `/v1/requests/${id}`,
        headers: { authorization: `Bearer ${wallet}` },
      });
      await res.body.dump();
      if (res.statusCode === 200) return void lags.push(performance.now() - answeredAt);
      if (res.statusCode !== 404) return fail(`GET /v1/requests/{id}: ${res.statusCode}`);
      if (performance.now() - answeredAt > POLL_LIMIT_MS) return void lagTimeouts++;
      await sleep(POLL_MS);
    }
  };

  const requests: Promise<void>[] = [];
  const lagPolls: Promise<void>[] = [];
  let at = start;
  for (let i = 0; ; i++) {
    at += (-Math.log(1 - next()) / rate) * 1000;
    if (at >= windowEnd) break;
    const k = keys[Math.floor(next() * n)]!;
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    senderLateMs = Math.max(senderLateMs, performance.now() - at);
    const scheduled = at;
    const sample = within(at) && inWindow++ % sampleEvery === 0;
    const request = gateway
      .request({
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json", authorization: `Bearer ${k.key}` },
        body: chatBody(i),
      })
      .then(async (res) => {
        await res.body.dump();
        const answeredAt = performance.now();
        if (res.statusCode !== 200) return fail(`status ${res.statusCode}`);
        answered.ok++;
        if (within(answeredAt)) answeredInWindow++;
        if (within(scheduled)) hist.recordValue(Math.max(1, Math.round((answeredAt - scheduled) * 1000)));
        const id = res.headers["x-request-id"];
        if (sample && typeof id === "string") {
          sampled++;
          lagPolls.push(poll(id, k.wallet, answeredAt).catch((err: unknown) => fail(`poll: ${String(err)}`)));
        }
      })
      .catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
    requests.push(request);
  }
  const [a, b] = await edges;
  await Promise.all(requests);
  // Every row of the tier must reach D1 (the lag samples only cover some): how long after the window that took.
  const expected = rowsBefore + (answered.ok - okBefore);
  let rowsNow = await ledgerRows(w);
  while (rowsNow < expected && performance.now() - windowEnd < DRAIN_LIMIT_MS) {
    await sleep(250);
    rowsNow = await ledgerRows(w);
  }
  const drainS = rowsNow >= expected ? (performance.now() - windowEnd) / 1000 : null;
  await Promise.all(lagPolls);
  await gateway.close();
  await polls.close();
  await quiesce(pids);
  const after = await d1Report(w.origin);

  const seconds = (b.t - a.t) / 1000;
  const d = diff(a.report.counts, b.report.counts);
  const tier = diff(before.counts, after.counts);
  const sorted = lags.sort((x, y) => x - y);
  const achievedRps = answeredInWindow / seconds;
  const gatewayP99Ms = ms(hist.getValueAtPercentile(99));
  const foreignCpuPct =
    a.machine && b.machine
      ? Math.max(0, (b.machine.busyMs - a.machine.busyMs - (b.machine.oursMs - a.machine.oursMs)) / (seconds * 10))
      : null;
  const reasons: string[] = [];
  if (achievedRps < 0.95 * rate) reasons.push(`answered ${achievedRps.toFixed(1)} of ${rate} req/s`);
  if (gatewayP99Ms > QUEUED_P99_MS) reasons.push(`requests queued (gateway p99 ${(gatewayP99Ms / 1000).toFixed(1)} s)`);
  if (failed) reasons.push(`${failed} requests failed (${failures.join(", ")})`);
  if (senderLateMs > 1000) reasons.push(`sender fell ${Math.round(senderLateMs)} ms behind`);
  if (drainS === null) reasons.push(`${expected - rowsNow} ledger rows not in D1 ${DRAIN_LIMIT_MS / 1000} s after`);
  else if (drainS > DRAIN_OK_S) reasons.push(`D1 fell behind (last rows ${drainS.toFixed(0)} s after the window)`);
  if (lagTimeouts) reasons.push(`${lagTimeouts} sampled rows not visible within 60 s`);
  if (d.rowsUnknown) reasons.push(`${d.rowsUnknown} write transactions without row counts`);
  if (b.cron !== a.cron) log(`  a cron ran in the window (${b.cron - a.cron})`);
  const newLedgerRows = rowsNow - rowsBefore;
  return {
    keys: n,
    targetRps: rate,
    achievedRps,
    failed,
    failures,
    senderLateMs,
    d1TxPerS: d.tx / seconds,
    rowsPerTx: d.tx ? d.rows / d.tx : 0,
    rowsPerRequest: answeredInWindow ? d.rows / answeredInWindow : 0,
    txBy: d.txBy,
    rowsByTable: d.rowsByTable,
    lagP50Ms: percentile(sorted, 50),
    lagP99Ms: percentile(sorted, 99),
    lagSamples: sampled,
    lagTimeouts,
    pollsPerS: pollsInWindow / seconds,
    gatewayP50Ms: ms(hist.getValueAtPercentile(50)),
    gatewayP99Ms,
    workerdCpuMsPerRequest: answeredInWindow ? (b.cpuMs - a.cpuMs) / answeredInWindow : 0,
    foreignCpuPct,
    drainS,
    rowsWrittenPerLedgerRow: newLedgerRows ? (tier.rowsByTable.requests ?? 0) / newLedgerRows : 0,
    sustained: reasons.length === 0,
    why: reasons.join("; "),
  };
}

// ---------------------------------------------------------------------------------------------------------
// One build: start it, create the keys, run the tiers, measure its storage.

/** Runs `fn` over `items`, `limit` at a time. */
async function pooled<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

interface BuildResult extends Build {
  createKeysS: number;
  tiers: TierResult[];
  storage: Record<string, TableStorage>;
}

async function runBuild(build: Build, index: number, fakeUrl: string): Promise<BuildResult> {
  log(`${build.name} (${build.revision}): bundling`);
  const bundle = bundleScaleWorker(build.source, join(work, `build-${index}`));
  const persistDir = join(work, `state-${index}`);
  const known = new Set(descendants(process.pid));
  const w = await startScaleWorker(build.source, bundle, persistDir, await freePort(), {
    ...fakeProviderVars(fakeUrl),
    ADMIN_TOKEN: ADMIN,
    SPENDGATE_ENV: "development",
  });
  // This instance's workerd processes (the previous build's are gone), on core 1; the load generator is on core 0.
  const pids = descendants(process.pid).filter((pid) => !known.has(pid) && procName(pid).startsWith("workerd"));
  for (const pid of pids) pin(pid, 1);
  let cron = 0;
  const fireCrons = async () => {
    for (const c of w.crons) {
      const res = await fetch(`${w.origin}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(c)}`);
      await res.text();
      cron++;
    }
  };
  // Miniflare runs no cron by itself; every minute, as the platform would.
  const cronTimer = w.crons.length ? setInterval(() => void fireCrons().catch(() => {}), 60_000) : undefined;
  try {
    const probe = await d1Report(w.origin);
    if (probe.isolate !== probe.guardIsolate) {
      throw new Error("the KeyGuard runs in another isolate than the Worker: its D1 writes would go uncounted");
    }
    const most = Math.max(...TIERS);
    log(`  creating ${most} spend keys (${CREATE_CONCURRENCY} at a time)`);
    const t0 = performance.now();
    const wallets = await pooled(Array.from({ length: Math.ceil(most / KEYS_PER_WALLET) }), CREATE_CONCURRENCY, () =>
      newWallet(w.origin, ADMIN),
    );
    const keys = await pooled(Array.from({ length: most }), CREATE_CONCURRENCY, async (_, i) => {
      const wallet = wallets[Math.floor(i / KEYS_PER_WALLET)]!;
      const k = await newKey(w.origin, wallet, { spend_limit: { amount: "100", cycle: "monthly" } });
      return { key: k.key, wallet };
    });
    await quiesce(pids);
    const createKeysS = (performance.now() - t0) / 1000;
    log(`  keys ready in ${createKeysS.toFixed(1)} s`);

    const answered = { ok: 0 };
    const tiers: TierResult[] = [];
    for (const n of TIERS) {
      log(`  ${n} keys: ${n / INTERVAL_S} req/s, ${WARM_S} s warm-up + ${WINDOW_S} s window`);
      const t = await runTier(w, keys.slice(0, n), pids, answered, () => cron);
      tiers.push(t);
      log(
        `  ${n} keys: ${t.achievedRps.toFixed(1)} req/s, ${t.d1TxPerS.toFixed(1)} tx/s (${JSON.stringify(t.txBy)}), ` +
          `${t.rowsPerTx.toFixed(1)} rows/tx, lag p50 ${t.lagP50Ms?.toFixed(0)} ms, gw p50 ${t.gatewayP50Ms} ms, ` +
          `drained ${t.drainS?.toFixed(1)} s, other processes ${t.foreignCpuPct?.toFixed(0)} % of a core` +
          (t.sustained ? "" : ` — NOT SUSTAINED: ${t.why}`),
      );
    }
    clearInterval(cronTimer);
    await w.mf.dispose();
    const storage = tableStorage(persistDir, ["requests", "usage_daily", "ledger_days", "spend_keys"]);
    return { ...build, createKeysS, tiers, storage };
  } catch (err) {
    clearInterval(cronTimer);
    await w.mf.dispose();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Projections.

interface Projection {
  rps: number;
  rawGbPerDay: number;
  daysNoRetention: number;
  /** the most raw rows retention leaves in D1: min(the window + today, the budget + today) */
  rawPeakGb: number | null;
  daysWithRetention: number | null;
}

function project(bytesPerRow: number, rollupBytesPerDay: number | null): Projection[] {
  return PROJECTED_RATES.map((rps) => {
    const perDay = rps * 86_400 * bytesPerRow;
    const daysNoRetention = D1_LIMIT / perDay;
    if (rollupBytesPerDay === null) {
      return { rps, rawGbPerDay: perDay / 1e9, daysNoRetention, rawPeakGb: null, daysWithRetention: null };
    }
    // Retention removes whole UTC days before today only: today's rows always stay.
    const rawPeak = Math.min((RETENTION_DAYS + 1) * perDay, RETENTION_BYTES + perDay);
    const daysWithRetention =
      rawPeak >= D1_LIMIT ? daysNoRetention : (D1_LIMIT - rawPeak) / rollupBytesPerDay + rawPeak / perDay;
    return { rps, rawGbPerDay: perDay / 1e9, daysNoRetention, rawPeakGb: rawPeak / 1e9, daysWithRetention };
  });
}

const round = (x: number | null, digits = 1) => (x === null ? null : Number(x.toFixed(digits)));
const days = (d: number | null) =>
  d === null ? "—" : d < 2 ? `${(d * 24).toFixed(1)} h` : d < 730 ? `${d.toFixed(0)} d` : `${(d / 365).toFixed(0)} y`;

// ---------------------------------------------------------------------------------------------------------

let builds: Build[] = [];
let fake: Awaited<ReturnType<typeof startFakeProvider>> | undefined;
/** The worktrees and the scratch directory go whatever happens, once (the workerds end with this process). */
const cleanUp = () => {
  for (const b of builds.splice(0)) if (b.source !== ROOT) removeCheckout(b.source);
  rmSync(work, { recursive: true, force: true });
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

try {
  const pinned = pin(process.pid, 0);
  log(`load generator, pollers and fake provider on core 0, workerd on core 1 (${pinned ? "pinned" : "not pinned"})`);
  const base = checkout(BASE, "base");
  builds = [{ name: "base", source: base.source, revision: base.commit.slice(0, 7) }];
  if (NEW) {
    const b = checkout(NEW, "new");
    builds.push({ name: "new", source: b.source, revision: b.commit.slice(0, 7) });
  } else builds.push({ ...workingTree(), name: "new" });
  fake = await startFakeProvider(0, { latencyMs: 5 });
  const started = performance.now();
  const results: BuildResult[] = [];
  const failed: { build: string; error: string }[] = [];
  for (const [i, b] of builds.entries()) {
    try {
      results.push(await runBuild(b, i, fake.url));
    } catch (err) {
      // A build that does not start (a working tree mid-change) leaves the other's figures standing.
      log(`${b.name} (${b.revision}) failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      failed.push({ build: `${b.name} ${b.revision}`, error: err instanceof Error ? err.message : String(err) });
    }
  }
  if (!results.length) throw new Error("no build ran");

  // Rollups per key × model × day, at steady state: from the newest build that has them.
  let rollup: TableStorage | null = null;
  let withRollups: Build | undefined;
  for (const b of [...builds].reverse()) {
    rollup = rollupStorage(b.source, ROLLUP_KEYS, ROLLUP_MODELS, RETENTION_DAYS);
    withRollups = b;
    if (rollup) break;
  }
  const rollupBytesPerDay = rollup ? rollup.bytesPerRow * ROLLUP_KEYS * ROLLUP_MODELS : null;

  const rows = results.flatMap((r) =>
    r.tiers.map((t) => ({
      build: `${r.name} ${r.revision}`,
      keys: t.keys,
      "req/s": round(t.achievedRps),
      "D1 tx/s": round(t.d1TxPerS),
      "rows/tx": round(t.rowsPerTx),
      "rows/req": round(t.rowsPerRequest),
      "lag p50 ms": round(t.lagP50Ms, 0),
      "lag p99 ms": round(t.lagP99Ms, 0),
      "gw p50 ms": t.gatewayP50Ms,
      "cpu ms/req": round(t.workerdCpuMsPerRequest, 2),
      "drain s": round(t.drainS),
      "other cpu %": round(t.foreignCpuPct, 0),
      sustained: t.sustained ? "yes" : `NO: ${t.why}`,
    })),
  );
  console.log(
    `\nD1 writes as active keys grow: each key a request every ~${INTERVAL_S} s, ${WINDOW_S} s measured a tier` +
      ` (${WARM_S} s warm-up); ${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  );
  console.table(rows);
  const projections = results.map((r) => {
    const ledger = r.storage.requests;
    const bytesPerRow = ledger?.bytesPerRow ?? 0;
    const hasRetention = Boolean(r.storage.usage_daily);
    return {
      build: `${r.name} ${r.revision}`,
      bytesPerRow,
      ledgerRows: ledger?.rows ?? 0,
      parts: ledger?.parts ?? {},
      rates: project(bytesPerRow, hasRetention ? rollupBytesPerDay : null),
    };
  });
  console.log("\nBytes per ledger row in D1 (table + indexes, dbstat) and days until 10 GB");
  console.table(
    projections.flatMap((p) =>
      p.rates.map((x) => ({
        build: p.build,
        "bytes/row": Math.round(p.bytesPerRow),
        "req/s": x.rps,
        "raw GB/day": round(x.rawGbPerDay, 2),
        "10 GB, no retention": days(x.daysNoRetention),
        "raw peak GB, retention": round(x.rawPeakGb, 2) ?? "—",
        "10 GB, retention": days(x.daysWithRetention),
      })),
    ),
  );
  if (rollup) {
    const daysRollupsOnly = D1_LIMIT / (rollupBytesPerDay ?? 1);
    console.log(
      `Rollups (usage_daily with its index, ${withRollups?.name}): ${rollup.bytesPerRow.toFixed(0)} bytes per key × ` +
        `model × day; ${ROLLUP_KEYS} keys × ${ROLLUP_MODELS} models = ${((rollupBytesPerDay ?? 0) / 1e6).toFixed(2)} ` +
        `MB a day: 10 GB from rollups alone in ${days(daysRollupsOnly)}. Retention assumed: raw rows kept ` +
        `${RETENTION_DAYS} days or ${RETENTION_BYTES / 1e9} GB, whichever binds, plus today's.`,
    );
  }
  for (const f of failed) console.log(`FAILED: ${f.build}: ${f.error}`);
  const totalS = (performance.now() - started) / 1000;
  console.log(`\nrun took ${(totalS / 60).toFixed(1)} min`);
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGb: round(totalmem() / 1e9), node: process.version },
    settings: {
      tiers: TIERS,
      windowS: WINDOW_S,
      warmS: WARM_S,
      intervalS: INTERVAL_S,
      sampleEvery: SAMPLE_EVERY,
      sampleMaxRps: SAMPLE_MAX_RPS,
      retentionDays: RETENTION_DAYS,
      retentionBytes: RETENTION_BYTES,
    },
    builds: results,
    failed,
    rollup: rollup && { ...rollup, keys: ROLLUP_KEYS, models: ROLLUP_MODELS, bytesPerDay: rollupBytesPerDay },
    projections,
    runS: totalS,
  };
  mkdirSync(join(ROOT, "bench-results"), { recursive: true });
  writeFileSync(join(ROOT, "bench-results", "scale.json"), JSON.stringify(report, null, 2));
  console.log("written: bench-results/scale.json");
  if (failed.length) process.exitCode = 1;
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await fake?.close();
  cleanUp();
}
