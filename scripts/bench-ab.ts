/**
 * `npm run bench:ab -- <rev> [<rev>]`: two builds of the gateway side by side, to tell what a change did
 * when the machine itself drifts by more than the change from one run to the next.
 *
 * A is `<rev>` (any git revision, built from a temporary worktree), B the second revision or, without one,
 * this checkout as it stands (uncommitted changes included). Both are served by their own workerd (Miniflare,
 * the bundle `wrangler deploy` would upload) and sent JSON requests alternately, request by request, on one
 * open-loop schedule (BENCH_RATE a second in all, default 100), so both meet the same moments of the machine.
 * Which build gets the even requests alternates from round to round. Reports p50, p99 and workerd CPU per
 * request of each, and B − A, per round (BENCH_ROUNDS × BENCH_AB_S seconds, default 3 × 60) and overall.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as hdr from "hdr-histogram-js";
import type { Miniflare } from "miniflare";
import { startFakeProvider } from "./fake-provider/server.ts";
import {
  buildBundle,
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
import { freePort, ROOT } from "./lib/stack.ts";
import { checkoutRevision, removeCheckout } from "./lib/worktree.ts";

const RATE = Number(process.env.BENCH_RATE ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_S = Number(process.env.BENCH_AB_S ?? 60);
const log = (s: string) => console.error(`[bench:ab] ${s}`);

const [revA, revB] = process.argv.slice(2);
if (!revA) {
  console.error("usage: npm run bench:ab -- <rev> [<rev>]   (B defaults to this checkout as it stands)");
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), "spendgate-ab-"));

const checkout = (rev: string, name: string) => checkoutRevision(rev, join(work, name)).source;

const builds = [
  { name: revA, source: checkout(revA, "a") },
  { name: revB ?? "this checkout", source: revB ? checkout(revB, "b") : ROOT },
];
const instances: Miniflare[] = [];
/** The worktrees and the scratch directory go whatever happens (the workerds end with this process). */
const cleanUp = () => {
  for (const b of builds) if (b.source !== ROOT) removeCheckout(b.source);
  rmSync(work, { recursive: true, force: true });
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}
try {
  pin(process.pid, 0);
  const fake = await startFakeProvider(0, { latencyMs: 5 });
  const served: { name: string; pids: number[]; key: string; t: Target }[] = [];
  const seen = new Set<number>();
  for (const [i, b] of builds.entries()) {
    log(`building and starting ${b.name}`);
    const bundle = buildBundle(join(work, `dist-${i}`), b.source);
    const port = await freePort();
    instances.push(await startGatewayMiniflare(bundle.file, fake.url, port));
    const pids = descendants(process.pid).filter((pid) => procName(pid).startsWith("workerd") && !seen.has(pid));
    for (const pid of pids) seen.add(pid);
    const origin = `http://127.0.0.1:${port}`;
    const key = (await newKey(origin, await newWallet(origin, "bench-admin"))).key;
    served.push({ name: b.name, pids, key, t: target(b.name, origin, "/v1") });
  }
  for (const pid of seen) pin(pid, 1);
  const cpuOf = (pids: number[]) => {
    const stats = workerdStats();
    return pids.reduce((sum, pid) => sum + (stats.get(pid)?.cpuMs ?? 0), 0);
  };
  const [a, b] = served as [(typeof served)[0], (typeof served)[0]];
  log("warm-up");
  await openLoop(50, 10, (i) =>
    (i % 2 ? send(b.t, b.key, chatBody(i)) : send(a.t, a.key, chatBody(i))).then((r) => r.status),
  );

  const all = { a: histogram(), b: histogram() };
  const cpu = { a: -cpuOf(a.pids), b: -cpuOf(b.pids) };
  const rounds: Record<string, number | string>[] = [];
  log(`${ROUNDS} rounds × ${ROUND_S} s at ${RATE} req/s, A and B alternately`);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [b, a] : [a, b];
    const res = await openLoop(
      RATE,
      ROUND_S,
      (i) => {
        const s = order[i % 2]!;
        return send(s.t, s.key, chatBody(i)).then((x) => x.status);
      },
      2,
    );
    if (res.errors || res.statuses["200"] !== res.sent)
      throw new Error(`round ${r + 1}: ${JSON.stringify(res.statuses)} ${res.failures.join("; ")}`);
    const [first, second] = res.lanes as [hdr.Histogram, hdr.Histogram];
    const [ha, hb] = r % 2 ? [second, first] : [first, second];
    all.a.add(ha);
    all.b.add(hb);
    rounds.push(row(`round ${r + 1}`, ha, hb));
  }
  await sleep(1200); // the alarm flush that follows the last round
  cpu.a += cpuOf(a.pids);
  cpu.b += cpuOf(b.pids);
  const perRequest = (cpuMs: number) => Math.round((cpuMs / all.a.totalCount) * 1000) / 1000;
  rounds.push({
    ...row("all", all.a, all.b),
    a_cpu_ms: perRequest(cpu.a),
    b_cpu_ms: perRequest(cpu.b),
    "b−a_cpu_ms": perRequest(cpu.b - cpu.a),
  });
  console.log(`A = ${a.name}, B = ${b.name}; ${all.a.totalCount} requests each`);
  console.table(rounds);
  await fake.close();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  for (const mf of instances) await mf.dispose();
  cleanUp();
}

function row(name: string, a: hdr.Histogram, b: hdr.Histogram) {
  const q = (h: hdr.Histogram, p: number) => h.getValueAtPercentile(p);
  return {
    round: name,
    a_p50_ms: ms(q(a, 50)),
    b_p50_ms: ms(q(b, 50)),
    "b−a_p50_ms": ms(q(b, 50) - q(a, 50)),
    a_p99_ms: ms(q(a, 99)),
    b_p99_ms: ms(q(b, 99)),
    "b−a_p99_ms": ms(q(b, 99) - q(a, 99)),
  };
}
