/**
 * `npm run bench`: what the gateway adds to a request, measured against a direct baseline in the same run.
 *
 * Targets, each hit with the same requests in interleaved rounds after a warm-up:
 *   direct      the fake provider itself (fixed latency, keep-alive): the baseline
 *   floor       a minimal pass-through Worker in workerd (Miniflare): what the runtime alone costs
 *   floor+1 RPC the same Worker plus one Durable Object RPC that persists a counter before the answer and one
 *               after it (in waitUntil, on the next timer turn): the floor of this design (an admission on the
 *               client's path, the settlement behind it), so `gateway − floor+1 RPC` is our own code
 *   floor+2 RPC both RPCs on the client's path (the design before JSON answers left after one RPC)
 *   gateway     Spendgate in workerd (Miniflare, the bundle `wrangler deploy` would upload)
 *   wrangler    Spendgate under `wrangler dev` (what `npm run dev` serves; wrangler adds its own proxy hop)
 * Load is open-loop (requests are sent on a fixed schedule whatever the answers; latency counts from the
 * scheduled time, so queueing shows). The load generator and fake provider run on core 0, workerd on core 1
 * (taskset), where the machine allows it.
 *
 * Also: streaming time-to-first-byte and chunk gaps (and that streamed bytes are identical), the highest
 * rate one key sustains, clean 429s past its rpm, 100 keys, CPU per request, memory, gzipped bundle size,
 * zero overshoot at 500 concurrent requests on one key, and a soak (BENCH_SOAK_S, default 60 s) checking
 * errors = 0, ledger rows = requests sent and spend = the fake provider's usage × price.
 *
 * Own code, paired: the gateway and floor+1 RPC sent to alternately, request by request, on one schedule, so
 * both meet the same stalls of the machine; the difference of their percentiles is our own code.
 *
 * Distance: BENCH_DISTANCES (default "0,20,80") ms of simulated distance added to every KeyGuard RPC
 * (a bench-only wrapper of the Worker, scripts/lib/distance-entry.ts, and the same delay in the floors' RPCs): JSON
 * latency should grow by ≈ 1 × D, not 2 × D.
 *
 * BENCH_QUICK=1 shortens every phase (a smoke run); BENCH_JSON_ONLY=1 stops after the JSON latency table;
 * BENCH_ROUNDS sets the number of interleaved rounds (default 3).
 * Results: a table on stdout and bench-results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as hdr from "hdr-histogram-js";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startFakeProvider } from "./fake-provider/server.ts";
import {
  api,
  buildBundle,
  buildDistanceBundle,
  chatBody,
  descendants,
  histogram,
  ms,
  newKey,
  newWallet,
  openLoop,
  pin,
  procName,
  send,
  sleep,
  startGatewayMiniflare,
  type Target,
  target,
  workerdStats,
} from "./lib/bench-kit.ts";
import { fakeProviderVars, freePort, ROOT, startStack } from "./lib/stack.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const LATENCY_MS = Number(process.env.BENCH_PROVIDER_LATENCY_MS ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const ROUND_S = QUICK ? 1 : 4;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
/**
 * Seconds of each paired round (gateway and floor+1 RPC alternately): long enough that both workerd isolates
 * meet their full garbage collections (about once a minute or two at this rate), so p99 compares like with like.
 */
const PAIRED_S = QUICK ? 2 : 60;
const SOAK_S = Number(process.env.BENCH_SOAK_S ?? (QUICK ? 5 : 60));
const DISTANCES = (process.env.BENCH_DISTANCES ?? "0,20,80").split(",").map(Number);

const log = (s: string) => console.error(`[bench] ${s}`);

/**
 * The least a Worker can do: forward the request and answer — with `rpcs` RPCs to a Durable Object that each
 * persist one small write, as admission and settlement must (a durable commit holds each reply until it is on
 * disk: that, not the RPC, is most of the cost locally). `afterAnswer`: the second RPC runs in waitUntil on the
 * next timer turn, as the gateway settles JSON. `delayMs`: simulated distance before each RPC.
 */
async function startFloorMiniflare(fakeUrl: string, port: number, rpcs: 0 | 2, afterAnswer: boolean, delayMs = 0) {
  const script = `import { DurableObject } from "cloudflare:workers";
  export class Noop extends DurableObject {
    ping() { this.ctx.storage.kv.put("n", (this.ctx.storage.kv.get("n") ?? 0) + 1); return 1; }
  }
  // As the gateway does: no timer at all at distance 0 (a timer turn would make the floor look slower).
  const far = ${delayMs} > 0 ? (stub) => new Promise((r) => setTimeout(r, ${delayMs})).then(() => stub.ping())
    : (stub) => stub.ping();
  export default { async fetch(req, env, ctx) {
    const url = new URL(req.url);
    const stub = ${rpcs > 0} ? env.NOOP.getByName("k") : null;
    if (stub) await far(stub);
    const headers = { "content-type": "application/json", authorization: "Bearer fake" };
    const res = await fetch("${fakeUrl}/openai" + url.pathname, { method: req.method, headers, body: req.body });
    if (!stub) return res;
    const body = await res.arrayBuffer();
    // The gateway's own order: the second RPC leaves on the next timer turn, once the answer is handed over.
    if (${afterAnswer}) ctx.waitUntil(new Promise((r) => setTimeout(r, 0)).then(() => far(stub)));
    else await far(stub);
    return new Response(body, res);
  } }`;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      modules: true,
      script,
      compatibilityDate: "2026-11-01",
      durableObjects: { NOOP: { className: "Noop", useSQLite: true } },
    }),
  );
  await mf.ready;
  return mf;
}

// ---------------------------------------------------------------------------------------------------------

/** Stops every target and the fake provider; set once they run, so a run that fails midway leaves nothing behind. */
let teardown: (() => Promise<void>) | undefined;

async function main() {
  const pinned = pin(process.pid, 0);
  log(
    "pinning: load generator + fake provider on core 0, workerd on core 1 " +
      `(${pinned ? "taskset ok" : "taskset unavailable: not pinned"})`,
  );
  const work = mkdtempSync(join(tmpdir(), "spendgate-bench-"));
  const fake = await startFakeProvider(0, { latencyMs: LATENCY_MS, record: 1_000_000 });
  const bundle = buildBundle(join(work, "dist"));
  log(`bundle: ${bundle.rawKiB.toFixed(1)} KiB, ${bundle.gzipKiB.toFixed(1)} KiB gzipped`);

  const gwPort = await freePort();
  const floorPort = await freePort();
  const gatewayMf = await startGatewayMiniflare(bundle.file, fake.url, gwPort);
  // The gateway's own workerd, told apart from the floor's and wrangler's for CPU and memory.
  const gwPids = descendants(process.pid).filter((pid) => procName(pid).startsWith("workerd"));
  const workerds = () => descendants(process.pid).filter((pid) => procName(pid).startsWith("workerd"));
  const floorMf = await startFloorMiniflare(fake.url, floorPort, 0, false);
  const floorPids = workerds().filter((pid) => !gwPids.includes(pid));
  const floor1Port = await freePort();
  const floor1Mf = await startFloorMiniflare(fake.url, floor1Port, 2, true);
  const floor1Pids = workerds().filter((pid) => ![...gwPids, ...floorPids].includes(pid));
  const floorDoPort = await freePort();
  const floorDoMf = await startFloorMiniflare(fake.url, floorDoPort, 2, false);
  const floorDoPids = workerds().filter((pid) => ![...gwPids, ...floorPids, ...floor1Pids].includes(pid));
  const wranglerStack = await startStack({
    fake: false,
    quiet: true,
    persistTo: join(work, "wrangler-state"),
    vars: { ...fakeProviderVars(fake.url), ADMIN_TOKEN: "bench-admin", MAX_INFLIGHT_PER_KEY: "1000" },
  });
  for (const pid of descendants(process.pid)) if (procName(pid).startsWith("workerd")) pin(pid, 1);

  const gw = `http://127.0.0.1:${gwPort}`;
  const targets = {
    direct: target("direct", fake.url, "/openai/v1", true),
    floor: target("floor", `http://127.0.0.1:${floorPort}`, "/v1", true),
    "floor+1 RPC": target("floor+1 RPC", `http://127.0.0.1:${floor1Port}`, "/v1", true),
    "floor+2 RPC": target("floor+2 RPC", `http://127.0.0.1:${floorDoPort}`, "/v1", true),
    gateway: target("gateway", gw, "/v1"),
    wrangler: target("wrangler dev", wranglerStack.url, "/v1"),
  };
  const wallet = await newWallet(gw, "bench-admin");
  const wranglerWallet = await newWallet(wranglerStack.url, "bench-admin");
  const gwKey = (await newKey(gw, wallet)).key;
  const wdKey = (await newKey(wranglerStack.url, wranglerWallet)).key;
  const keyOf = (t: Target) => (t === targets.wrangler ? wdKey : gwKey);
  teardown = async () => {
    for (const t of Object.values(targets)) await t.pool.close();
    for (const mf of [gatewayMf, floorMf, floor1Mf, floorDoMf]) await mf.dispose();
    await wranglerStack.stop();
    await fake.close();
    rmSync(work, { recursive: true, force: true });
  };

  // 0. The usage API over a year of 100,000 ledger rows of one wallet (written straight into the gateway's D1).
  log("usage API: 100,000 ledger rows over a year");
  const usageWallet = await newWallet(gw, "bench-admin");
  const usageKey = await newKey(gw, usageWallet);
  const walletId = (await api(gw, "GET", "/v1/spend_keys?limit=1", usageWallet)).data[0].wallet_id as string;
  const d1 = await gatewayMf.getD1Database("DB");
  const yearStart = Date.UTC(2025, 10, 1);
  for (let batch = 0; batch < 100; batch++) {
    const rows = Array.from({ length: 1_000 }, (_, j) => {
      const i = batch * 1_000 + j;
      return [
        `req_usage_${i}`,
        usageKey.id,
        walletId,
        i % 3 ? "gpt-4o-mini" : "gpt-4o",
        yearStart + (i % 365) * 86_400_000 + j,
        i % 7,
        JSON.stringify({ run: String(i % 10) }),
      ];
    });
    await d1
      .prepare(
        "INSERT INTO requests (request_id, spend_key_id, wallet_id, status, provider, model, endpoint, " +
          "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, " +
          "input_cost_femtos, output_cost_femtos, cost_nanos, usage_known, stream, latency_ms, metadata, created_at) " +
          "SELECT value ->> 0, value ->> 1, value ->> 2, 'completed', 'openai', value ->> 3, '/v1/chat/completions', " +
          "10, 5, 0, 0, 0, '0', '0', value ->> 5, 1, 0, 1, value ->> 6, value ->> 4 FROM json_each(?)",
      )
      .bind(JSON.stringify(rows))
      .run();
  }
  const usageTimes: Record<string, number[]> = {};
  const year = `start=${new Date(yearStart).toISOString()}&end=${new Date(yearStart + 365 * 86_400_000).toISOString()}`;
  const filters = encodeURIComponent(JSON.stringify([["run", "3"]]));
  for (const [name, query] of [
    ["year", year],
    ["year, group_by=model", `${year}&group_by=model`],
    ["year, metadata filter", `${year}&metadata_filters=${filters}`],
  ] as const) {
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const res = await api(gw, "GET", `/v1/usage?${query}`, usageWallet);
      (usageTimes[name] ??= []).push(performance.now() - t0);
      if (name === "year" && res.totals.total_requests !== 100_000) throw new Error("usage: wrong total");
    }
  }
  const usageRows = Object.entries(usageTimes).map(([query, times]) => {
    const sorted = times.slice(2).sort((a, b) => a - b); // after two warm-up calls
    return {
      query,
      median_ms: Math.round(sorted[Math.floor(sorted.length / 2)]! * 10) / 10,
      max_ms: Math.round(sorted.at(-1)! * 10) / 10,
    };
  });
  console.table(usageRows);
  if (process.env.BENCH_USAGE_ONLY === "1") {
    await teardown();
    return;
  }

  // Warm-up: JIT, connection pools, Durable Objects.
  log("warm-up");
  for (const t of Object.values(targets))
    await openLoop(50, QUICK ? 0.5 : 2, (i) => send(t, keyOf(t), chatBody(i)).then((r) => r.status));

  // 1. JSON latency: interleaved rounds, same requests.
  log(`JSON latency: ${ROUNDS} rounds × ${ROUND_S} s at ${RATE} req/s per target, provider latency ${LATENCY_MS} ms`);
  const json: Record<string, hdr.Histogram> = {};
  const jsonErrors: Record<string, number> = {};
  const pidsOf: Record<string, number[]> = {
    floor: floorPids,
    "floor+1 RPC": floor1Pids,
    "floor+2 RPC": floorDoPids,
    gateway: gwPids,
  };
  const cpu: Record<string, { ms: number; requests: number }> = {};
  const cpuOf = (pids: number[]) => {
    const stats = workerdStats();
    return pids.reduce((sum, pid) => sum + (stats.get(pid)?.cpuMs ?? 0), 0);
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, t] of Object.entries(targets)) {
      const pids = pidsOf[name];
      const cpuBefore = pids ? cpuOf(pids) : 0;
      const res = await openLoop(RATE, ROUND_S, (i) => send(t, keyOf(t), chatBody(i)).then((x) => x.status));
      if (pids) {
        await sleep(1200); // include the alarm flush that follows the round
        const entry = (cpu[name] ??= { ms: 0, requests: 0 });
        entry.ms += cpuOf(pids) - cpuBefore;
        entry.requests += res.sent;
      }
      json[name] ??= histogram();
      json[name]!.add(res.hist);
      for (const failure of res.failures) log(`${name}: ${failure}`);
      jsonErrors[name] =
        (jsonErrors[name] ?? 0) +
        res.errors +
        (res.statuses["200"] === res.sent ? 0 : res.sent - (res.statuses["200"] ?? 0));
    }
  }
  const p = (name: string, q: number) => json[name]!.getValueAtPercentile(q);
  const jsonRows = Object.keys(targets).map((name) => ({
    target: name,
    p50_ms: ms(p(name, 50)),
    p99_ms: ms(p(name, 99)),
    added_p50_ms: ms(p(name, 50) - p("direct", 50)),
    added_p99_ms: ms(p(name, 99) - p("direct", 99)),
    errors: jsonErrors[name],
    cpu_ms_per_request: cpu[name] ? Math.round((cpu[name].ms / cpu[name].requests) * 100) / 100 : null,
  }));
  const gatewayOverFloor = {
    over_floor_p50_ms: ms(p("gateway", 50) - p("floor", 50)),
    over_floor_p99_ms: ms(p("gateway", 99) - p("floor", 99)),
    over_floor_1rpc_p50_ms: ms(p("gateway", 50) - p("floor+1 RPC", 50)),
    over_floor_1rpc_p99_ms: ms(p("gateway", 99) - p("floor+1 RPC", 99)),
  };

  // 1a. Our own code, paired: one schedule of requests RATE a second, sent alternately to the gateway and to
  // floor+1 RPC (each target's requests 2/RATE s apart), so both meet the same moments of the machine — the
  // stalls of a shared 2-core box hit whichever target is running — and the difference of their percentiles
  // is our code, not the luck of a round.
  log(`own code, paired: ${ROUNDS} rounds × ${PAIRED_S} s, gateway and floor+1 RPC alternately`);
  const pairedHists = { gateway: histogram(), floor: histogram() };
  const pairedRounds: { round: number; own_p50_ms: number; own_p99_ms: number }[] = [];
  // CPU of each target's workerd over the same rounds (the flushes that follow included).
  const pairedCpu = { gateway: -cpuOf(gwPids), floor: -cpuOf(floor1Pids) };
  for (let r = 0; r < ROUNDS; r++) {
    const pair = [targets.gateway, targets["floor+1 RPC"]] as const;
    const res = await openLoop(RATE, PAIRED_S, (i) => send(pair[i % 2]!, gwKey, chatBody(i)).then((x) => x.status), 2);
    if (res.errors || res.statuses["200"] !== res.sent)
      throw new Error(`paired: ${JSON.stringify(res.statuses)} ${res.failures.join("; ")} (lane 0: gateway)`);
    const [g, f] = res.lanes as [hdr.Histogram, hdr.Histogram];
    pairedHists.gateway.add(g);
    pairedHists.floor.add(f);
    pairedRounds.push({
      round: r + 1,
      own_p50_ms: ms(g.getValueAtPercentile(50) - f.getValueAtPercentile(50)),
      own_p99_ms: ms(g.getValueAtPercentile(99) - f.getValueAtPercentile(99)),
    });
  }
  await sleep(1200);
  pairedCpu.gateway += cpuOf(gwPids);
  pairedCpu.floor += cpuOf(floor1Pids);
  const pq = (h: hdr.Histogram, q: number) => h.getValueAtPercentile(q);
  const perRequest = (cpuMs: number) => Math.round((cpuMs / pairedHists.gateway.totalCount) * 1000) / 1000;
  const ownPaired = {
    requests_per_target: pairedHists.gateway.totalCount,
    gateway_cpu_ms_per_request: perRequest(pairedCpu.gateway),
    floor_1rpc_cpu_ms_per_request: perRequest(pairedCpu.floor),
    own_cpu_ms_per_request: perRequest(pairedCpu.gateway - pairedCpu.floor),
    gateway_p50_ms: ms(pq(pairedHists.gateway, 50)),
    gateway_p99_ms: ms(pq(pairedHists.gateway, 99)),
    floor_1rpc_p50_ms: ms(pq(pairedHists.floor, 50)),
    floor_1rpc_p99_ms: ms(pq(pairedHists.floor, 99)),
    own_p50_ms: ms(pq(pairedHists.gateway, 50) - pq(pairedHists.floor, 50)),
    own_p99_ms: ms(pq(pairedHists.gateway, 99) - pq(pairedHists.floor, 99)),
    rounds: pairedRounds,
  };

  if (process.env.BENCH_JSON_ONLY === "1") {
    // A quick look at the JSON latency table alone (while tuning), without the other phases.
    console.table(jsonRows);
    console.log(gatewayOverFloor);
    console.table(pairedRounds);
    console.log(ownPaired);
    await teardown();
    return;
  }

  // 1b. Distance: each KeyGuard RPC made D ms further away. A JSON answer waits for one RPC, so its latency
  // should grow by about D; a design that waited for both (floor+2 RPC) grows by about 2 × D.
  log(`distance: ${DISTANCES.join(", ")} ms to the KeyGuard`);
  const distance: {
    distance_ms: number;
    gateway_p50_ms: number;
    floor_1rpc_p50_ms: number;
    floor_2rpc_p50_ms: number;
  }[] = [];
  const distanceBundle = buildDistanceBundle(join(work, "distance"));
  for (const d of DISTANCES) {
    const ports = [await freePort(), await freePort(), await freePort()] as const;
    const gwD = await startGatewayMiniflare(distanceBundle, fake.url, ports[0], d);
    const f1 = await startFloorMiniflare(fake.url, ports[1], 2, true, d);
    const f2 = await startFloorMiniflare(fake.url, ports[2], 2, false, d);
    for (const pid of descendants(process.pid)) if (procName(pid).startsWith("workerd")) pin(pid, 1);
    const origin = `http://127.0.0.1:${ports[0]}`;
    const key = (await newKey(origin, await newWallet(origin, "bench-admin"))).key;
    const ts = {
      gateway: target("gateway", origin, "/v1"),
      f1: target("floor+1 RPC", `http://127.0.0.1:${ports[1]}`, "/v1", true),
      f2: target("floor+2 RPC", `http://127.0.0.1:${ports[2]}`, "/v1", true),
    };
    const hists: Record<string, hdr.Histogram> = {};
    for (const t of Object.values(ts))
      await openLoop(50, QUICK ? 0.5 : 1, (i) => send(t, key, chatBody(i)).then((r) => r.status));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, t] of Object.entries(ts)) {
        const res = await openLoop(RATE, ROUND_S, (i) => send(t, key, chatBody(i)).then((x) => x.status));
        hists[name] ??= histogram();
        hists[name].add(res.hist);
      }
    }
    const p50 = (name: string) => ms(hists[name]?.getValueAtPercentile(50) ?? 0);
    distance.push({
      distance_ms: d,
      gateway_p50_ms: p50("gateway"),
      floor_1rpc_p50_ms: p50("f1"),
      floor_2rpc_p50_ms: p50("f2"),
    });
    for (const t of Object.values(ts)) await t.pool.close();
    await gwD.dispose();
    await f1.dispose();
    await f2.dispose();
  }
  const base = distance[0];
  const distanceRows = distance.map((row) => ({
    ...row,
    gateway_growth_ms: base ? Math.round((row.gateway_p50_ms - base.gateway_p50_ms) * 100) / 100 : null,
    floor_2rpc_growth_ms: base ? Math.round((row.floor_2rpc_p50_ms - base.floor_2rpc_p50_ms) * 100) / 100 : null,
  }));

  // 2. Streams: time to first byte, gaps between chunks, identical bytes.
  log("streaming: TTFB and chunk gaps");
  const streamBody = (i: number) =>
    chatBody(i, {
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: `stream ${i % 20} [[fault:gap:5]]` }],
    });
  const ttfb: Record<string, hdr.Histogram> = {};
  const gaps: Record<string, hdr.Histogram> = {};
  let identical = true;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, t] of Object.entries({ direct: targets.direct, gateway: targets.gateway })) {
      ttfb[name] ??= histogram();
      gaps[name] ??= histogram();
      await openLoop(20, ROUND_S, async (i) => {
        const t0 = performance.now();
        const res = await t.pool.request({
          method: "POST",
          path: t.path("chat"),
          headers: { "content-type": "application/json", ...t.auth(gwKey) },
          body: streamBody(i),
        });
        let last = 0;
        for await (const chunk of res.body) {
          const now = performance.now();
          if (!last) ttfb[name]!.recordValue(Math.max(1, Math.round((now - t0) * 1000)));
          else gaps[name]!.recordValue(Math.max(1, Math.round((now - last) * 1000)));
          last = now;
          void chunk;
        }
        return res.statusCode;
      });
    }
  }
  for (let i = 0; i < 5; i++) {
    const a = await send(targets.direct, gwKey, streamBody(i));
    const b = await send(targets.gateway, gwKey, streamBody(i));
    identical &&= a.text === b.text && a.text.length > 0;
  }
  const streamRow = {
    ttfb_p50_ms: ms(ttfb.gateway!.getValueAtPercentile(50)),
    added_ttfb_p50_ms: ms(ttfb.gateway!.getValueAtPercentile(50) - ttfb.direct!.getValueAtPercentile(50)),
    added_ttfb_p99_ms: ms(ttfb.gateway!.getValueAtPercentile(99) - ttfb.direct!.getValueAtPercentile(99)),
    gap_p99_direct_ms: ms(gaps.direct!.getValueAtPercentile(99)),
    gap_p99_gateway_ms: ms(gaps.gateway!.getValueAtPercentile(99)),
    bytes_identical: identical,
  };

  // 3. One key: the highest rate with zero errors; clean 429s past its rpm.
  log("one key: rate steps");
  const steps = QUICK ? [200, 400] : [200, 300, 400, 500, 600, 800];
  const oneKey: { rate: number; achieved: number; errors: number; p99_ms: number }[] = [];
  const hot = (await newKey(gw, wallet)).key;
  const before = workerdStats();
  let cpuRequests = 0;
  for (const rate of steps) {
    const res = await openLoop(rate, QUICK ? 1 : 3, (i) =>
      send(targets.gateway, hot, chatBody(i)).then((x) => x.status),
    );
    cpuRequests += res.sent;
    oneKey.push({
      rate,
      achieved: Math.round(res.achievedRps),
      errors: res.errors + res.sent - (res.statuses["200"] ?? 0),
      p99_ms: ms(res.hist.getValueAtPercentile(99)),
    });
  }
  const after = workerdStats();
  let cpuMs = 0;
  let rssMb = 0;
  for (const pid of gwPids) {
    const a = after.get(pid);
    if (!a) continue;
    cpuMs += a.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    rssMb += a.rssMb;
  }
  // Sustained: every request answered without error, and the offered rate actually served (not queued up).
  const sustained = Math.max(
    0,
    ...oneKey.filter((s) => s.errors === 0 && s.achieved >= 0.95 * s.rate && s.p99_ms < 1000).map((s) => s.rate),
  );
  const limited = (await newKey(gw, wallet, { rate_limit: { rpm: 6000, burst: 100 } })).key;
  const over = await openLoop(200, QUICK ? 1 : 3, (i) =>
    send(targets.gateway, limited, chatBody(i)).then((x) => x.status),
  );

  // 4. 100 keys.
  log("100 keys");
  const keys: string[] = [];
  for (let i = 0; i < 100; i++) keys.push((await newKey(gw, wallet)).key);
  const many = await openLoop(QUICK ? 200 : 400, QUICK ? 1 : 3, (i) =>
    send(targets.gateway, keys[i % 100]!, chatBody(i)).then((x) => x.status),
  );

  // 5. 500 concurrent requests on one key with a small budget: zero overshoot.
  log("500 concurrent requests on one key");
  const capped = await newKey(gw, wallet, { spend_limit: { amount: "0.0005", cycle: "total" } });
  const burst = await Promise.all(
    Array.from({ length: 500 }, (_, i) => send(targets.gateway, capped.key, chatBody(i))),
  );
  const cappedView = await api(gw, "GET", `/v1/spend_keys/${capped.id}`, wallet);
  const overshoot = {
    admitted: burst.filter((r) => r.status === 200).length,
    refused_429: burst.filter((r) => r.status === 429).length,
    other: burst.filter((r) => r.status !== 200 && r.status !== 429).length,
    limit: "0.0005",
    spent: cappedView.total_spend as string,
    overshoot: Number(cappedView.total_spend) > 0.0005,
  };

  // 6. Soak: a steady rate over many keys; nothing lost, spend matches the provider's usage.
  log(`soak: ${SOAK_S} s at 50 req/s over 20 keys`);
  const soakWallet = await newWallet(gw, "bench-admin");
  const soakKeys: string[] = [];
  for (let i = 0; i < 20; i++)
    soakKeys.push((await newKey(gw, soakWallet, { spend_limit: { amount: "100", cycle: "daily" } })).key);
  const firstRecord = fake.recorded.length;
  const soak = await openLoop(50, SOAK_S, (i) =>
    send(targets.gateway, soakKeys[i % 20]!, chatBody(i, { messages: [{ role: "user", content: `soak ${i}` }] })).then(
      (x) => x.status,
    ),
  );
  await sleep(3000); // KeyGuard alarms flush ledger rows within ~1 s
  let rows = 0;
  let ledgerNanos = 0n;
  for (let cursor: string | undefined; ; ) {
    const page = await api(gw, "GET", `/v1/requests?limit=100${cursor ? `&cursor=${cursor}` : ""}`, soakWallet);
    rows += page.data.length;
    for (const r of page.data) ledgerNanos += BigInt(Math.round(Number(r.cost) * 1e9));
    if (!page.has_more) break;
    cursor = page.next_cursor;
  }
  let keysNanos = 0n;
  for (let cursor: string | undefined; ; ) {
    const page = await api(gw, "GET", `/v1/spend_keys?limit=100${cursor ? `&cursor=${cursor}` : ""}`, soakWallet);
    for (const k of page.data) keysNanos += BigInt(Math.round(Number(k.total_spend) * 1e9));
    if (!page.has_more) break;
    cursor = page.next_cursor;
  }
  // gpt-4o-mini list price: $0.15 / $0.60 per 1M (the fake reports no cached tokens here).
  let providerNanos = 0n;
  for (const rec of fake.recorded.slice(firstRecord)) {
    if (!rec.usage) continue;
    providerNanos +=
      (BigInt(rec.usage.input) * 150_000_000n + BigInt(rec.usage.output) * 600_000_000n + 999_999n) / 1_000_000n;
  }
  const soakRow = {
    seconds: SOAK_S,
    sent: soak.sent,
    ok: soak.statuses["200"] ?? 0,
    errors: soak.errors + soak.sent - (soak.statuses["200"] ?? 0),
    ledger_rows: rows,
    spend_ledger_usd: Number(ledgerNanos) / 1e9,
    spend_keys_usd: Number(keysNanos) / 1e9,
    spend_provider_usage_usd: Number(providerNanos) / 1e9,
    p99_ms: ms(soak.hist.getValueAtPercentile(99)),
  };

  const report = {
    when: new Date().toISOString(),
    machine: { cores: (await import("node:os")).cpus().length, node: process.version, pinned },
    settings: { provider_latency_ms: LATENCY_MS, rate: RATE, rounds: ROUNDS, round_s: ROUND_S, quick: QUICK },
    json_latency: jsonRows,
    gateway_over_floor: gatewayOverFloor,
    own_code_paired: ownPaired,
    distance: distanceRows,
    usage_api_100k_rows: usageRows,
    stream: streamRow,
    one_key: {
      steps: oneKey,
      sustained_rps: sustained,
      past_rpm: { rpm: 6000, sent: over.sent, statuses: over.statuses },
    },
    hundred_keys: {
      sent: many.sent,
      achieved_rps: Math.round(many.achievedRps),
      statuses: many.statuses,
      p99_ms: ms(many.hist.getValueAtPercentile(99)),
    },
    cpu_ms_per_request: cpuRequests ? Math.round((cpuMs / cpuRequests) * 1000) / 1000 : null,
    workerd_rss_mb: Math.round(rssMb),
    bundle_kib: { raw: Math.round(bundle.rawKiB * 10) / 10, gzip: Math.round(bundle.gzipKiB * 10) / 10 },
    concurrency_500: overshoot,
    soak: soakRow,
  };

  // Our targets (loopback, warm), judged against the direct baseline of this same run.
  const gatewayRow = jsonRows.find((r) => r.target === "gateway")!;
  const goals = {
    "own code (paired, gateway − floor+1 RPC) p50 ≤ 0.5 ms (JSON)": ownPaired.own_p50_ms <= 0.5,
    "own code (paired, gateway − floor+1 RPC) p99 ≤ 3 ms (JSON)": ownPaired.own_p99_ms <= 3,
    "added p50 ≤ 1.5 ms (JSON)": gatewayRow.added_p50_ms <= 1.5,
    "added p99 ≤ 5 ms (JSON)": gatewayRow.added_p99_ms <= 5,
    "added time to first streamed byte ≤ 2 ms": streamRow.added_ttfb_p50_ms <= 2,
    "one key ≥ 400 admitted req/s without 5xx": sustained >= 400,
    "zero overshoot at 500 concurrent requests on one key": !overshoot.overshoot && overshoot.other === 0,
    "bundle ≤ 150 KiB gzipped": bundle.gzipKiB <= 150,
    "streamed bytes identical": streamRow.bytes_identical,
    "soak: 0 errors, ledger rows = requests, spend = usage × price":
      soakRow.errors === 0 &&
      soakRow.ledger_rows === soakRow.sent &&
      soakRow.spend_ledger_usd === soakRow.spend_provider_usage_usd,
  };
  Object.assign(report, { targets: goals });
  mkdirSync(join(ROOT, "bench-results"), { recursive: true });
  writeFileSync(join(ROOT, "bench-results", "latest.json"), JSON.stringify(report, null, 2));
  console.log("\nJSON requests (latency from the scheduled send time; added = target − direct)");
  console.table(jsonRows);
  console.log(
    "gateway − floor (over a bare pass-through Worker): " +
      `p50 ${gatewayOverFloor.over_floor_p50_ms} ms, p99 ${gatewayOverFloor.over_floor_p99_ms} ms`,
  );
  console.log(
    "gateway − floor+1 RPC (our own code, over the same Worker with the design's DO RPCs): " +
      `p50 ${gatewayOverFloor.over_floor_1rpc_p50_ms} ms, p99 ${gatewayOverFloor.over_floor_1rpc_p99_ms} ms`,
  );
  console.log("\nOwn code, paired (gateway and floor+1 RPC alternately, request by request)");
  console.table(pairedRounds);
  console.log(
    `all rounds: gateway p50 ${ownPaired.gateway_p50_ms} / p99 ${ownPaired.gateway_p99_ms} ms, floor+1 RPC ` +
      `p50 ${ownPaired.floor_1rpc_p50_ms} / p99 ${ownPaired.floor_1rpc_p99_ms} ms: ` +
      `own code p50 ${ownPaired.own_p50_ms} ms, p99 ${ownPaired.own_p99_ms} ms; CPU per request ` +
      `${ownPaired.gateway_cpu_ms_per_request} vs ${ownPaired.floor_1rpc_cpu_ms_per_request} ms ` +
      `(own ${ownPaired.own_cpu_ms_per_request} ms)`,
  );
  console.log("\nDistance to the KeyGuard (simulated, per RPC): JSON p50 and its growth over distance 0");
  console.table(distanceRows);
  console.log("\nStreams");
  console.table([streamRow]);
  console.log("\nOne key");
  console.table(oneKey);
  console.log(
    `sustained with 0 errors: ${sustained} req/s; past rpm 6000 at 200 req/s: ${JSON.stringify(over.statuses)}`,
  );
  console.log(`100 keys: ${JSON.stringify(report.hundred_keys)}`);
  console.log(
    `CPU per request (workerd, gateway): ${report.cpu_ms_per_request} ms; workerd RSS ${report.workerd_rss_mb} MB`,
  );
  console.log(`bundle: ${report.bundle_kib.raw} KiB raw, ${report.bundle_kib.gzip} KiB gzipped`);
  console.log(`500 concurrent on one key: ${JSON.stringify(overshoot)}`);
  console.log("\nSoak");
  console.table([soakRow]);
  console.log("\nTargets");
  for (const [name, met] of Object.entries(goals)) console.log(`  ${met ? "met    " : "NOT met"}  ${name}`);
  console.log("\nwritten: bench-results/latest.json");
}

try {
  await main();
} finally {
  await teardown?.();
}
