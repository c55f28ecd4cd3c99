/**
 * `npm run deploy`: Spendgate on your Cloudflare account in one command (docs/deploy.md), after `wrangler login`
 * or with CLOUDFLARE_API_TOKEN set. Each step looks before it acts: it creates the D1 database, queues and R2
 * bucket named in wrangler.toml that are missing and reuses those that exist, generates the secrets not set yet
 * (each shown once), applies pending D1 migrations before the new code goes live, deploys, checks /health and
 * offers to create the first wallet. A failed step stops the run; rerunning it finds the earlier steps done.
 *
 * Wrangler: $WRANGLER, else the first `wrangler` on PATH (under `npm run`, the project's own in node_modules/.bin),
 * else node_modules/.bin/wrangler. It must be 4.45 or later, which finds the database by name: no id is ever
 * written into a tracked file.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { parseArgs, stripVTControlCharacters } from "node:util";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `Usage: npm run deploy [-- options]
  --env <name>        deploy the environment [env.<name>] of wrangler.toml (its own Worker and resources)
  --config <path>     another wrangler config file (default: wrangler.toml)
  --create-wallet     create the first wallet without asking (when none exists); --wallet-name <name> names it
  --no-wallet         do not offer to create the first wallet
  -y, --yes           answer yes to every question (non-interactive runs)
  --url <url>         the deployed URL, when wrangler prints none (routes or custom domains only)
  --health-wait <s>   how long /health may take to answer 200 after the deploy (default 60)`;

const { values: opts } = parseArgs({
  options: {
    env: { type: "string" },
    config: { type: "string", default: "wrangler.toml" },
    "create-wallet": { type: "boolean", default: false },
    "wallet-name": { type: "string", default: "default" },
    "no-wallet": { type: "boolean", default: false },
    yes: { type: "boolean", short: "y", default: false },
    url: { type: "string" },
    "health-wait": { type: "string", default: "60" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

const SECRETS = ["ADMIN_TOKEN", "WEBHOOK_SECRET_KEY"];
/** Workers Builds: the Deploy to Cloudflare button, and builds of a connected git repository. */
const WORKERS_CI = Boolean(process.env.WORKERS_CI);
/** Any CI: its log keeps what is printed, so no secret is generated there. */
const CI = WORKERS_CI || Boolean(process.env.CI);
const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
const configPath = resolve(ROOT, opts.config);
/** Every wrangler command gets the same config and environment. */
const target = [
  ...(opts.config === "wrangler.toml" ? [] : ["--config", configPath]),
  ...(opts.env ? ["--env", opts.env] : []),
];
const rerun = `npm run deploy${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

/** A step's failure, with what the failed command printed. */
class StepError extends Error {
  readonly output: string;
  constructor(message: string, output = "") {
    super(message);
    this.output = output;
  }
}

function findWrangler(): string {
  if (process.env.WRANGLER) return process.env.WRANGLER;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "wrangler"))) return join(dir, "wrangler");
  }
  return join(ROOT, "node_modules", ".bin", "wrangler");
}
const WRANGLER = findWrangler();

interface Result {
  code: number;
  stdout: string;
  /** stdout and stderr as they came */
  all: string;
}

/** Runs wrangler (never interactive: its output is piped), optionally echoing what it prints, indented. */
function run(args: string[], io: { input?: string; echo?: boolean } = {}): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(WRANGLER, args, {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" },
    });
    let stdout = "";
    let all = "";
    let lineStart = true;
    const take = (chunk: Buffer, toStdout: boolean) => {
      const text = stripVTControlCharacters(chunk.toString());
      if (toStdout) stdout += text;
      all += text;
      if (!io.echo) return;
      process.stdout.write(text.replace(/^(?=.)/gm, (_, offset: number) => (offset > 0 || lineStart ? "    │ " : "")));
      lineStart = text.endsWith("\n");
    };
    child.stdout.on("data", (c: Buffer) => take(c, true));
    child.stderr.on("data", (c: Buffer) => take(c, false));
    child.on("error", (err) => fail(new StepError(`could not run ${WRANGLER}: ${err.message}`)));
    child.on("close", (code) => done({ code: code ?? 1, stdout, all }));
    child.stdin.end(io.input ?? "");
  });
}

/** Runs wrangler and stops the step if it fails (with its output, unless it was echoed already). */
async function must(args: string[], io: { input?: string; echo?: boolean } = {}): Promise<Result> {
  const result = await run(args, io);
  if (result.code === 0) return result;
  throw new StepError(`\`wrangler ${args.join(" ")}\` exited with ${result.code}`, io.echo ? "" : result.all);
}

/** The JSON a command printed (after any banner). */
function jsonIn<T>(text: string): T {
  const start = text.search(/[[{]/);
  if (start < 0) throw new StepError("wrangler printed no JSON where it should have", text);
  return JSON.parse(text.slice(start)) as T;
}

interface Plan {
  worker: string;
  databases: { binding: string; name: string; id?: string; jurisdiction?: string }[];
  queues: string[];
  buckets: { name: string; jurisdiction?: string }[];
  accountId?: string;
}

/** The parts of wrangler's resolved config read here. */
interface WranglerConfig {
  name?: string;
  account_id?: string;
  d1_databases: { binding: string; database_name?: string; database_id?: string; jurisdiction?: string }[];
  queues: { producers?: { queue: string }[]; consumers?: { queue: string; dead_letter_queue?: string }[] };
  r2_buckets: { binding: string; bucket_name?: string; jurisdiction?: string }[];
}

/** What wrangler.toml (or its environment) binds, as wrangler itself reads it. */
async function readPlan(): Promise<Plan> {
  const { unstable_readConfig } = await import("wrangler");
  const config: WranglerConfig = unstable_readConfig({ config: configPath, env: opts.env }, { hideWarnings: true });
  const queues = new Set<string>();
  for (const p of config.queues.producers ?? []) queues.add(p.queue);
  for (const c of config.queues.consumers ?? []) {
    queues.add(c.queue);
    if (c.dead_letter_queue) queues.add(c.dead_letter_queue);
  }
  const databases = config.d1_databases.map((d) => {
    if (!d.database_name) throw new StepError(`the D1 binding ${d.binding} has no database_name`);
    return { binding: d.binding, name: d.database_name, id: d.database_id, jurisdiction: d.jurisdiction };
  });
  const buckets = config.r2_buckets.map((b) => {
    if (!b.bucket_name) throw new StepError(`the R2 binding ${b.binding} has no bucket_name`);
    return { name: b.bucket_name, jurisdiction: b.jurisdiction };
  });
  if (!config.name) throw new StepError(`${opts.config} names no Worker`);
  return { worker: config.name, databases, queues: [...queues], buckets, accountId: config.account_id };
}

interface Context {
  plan: Plan;
  /** the deployed Worker's address */
  url?: string;
  /** ADMIN_TOKEN, when this run generated it or it was given in the environment */
  adminToken?: string;
  did: string[];
  skipped: string[];
  notes: string[];
}

const say = (line: string) => console.log(`    ${line}`);

async function checkWrangler(ctx: Context) {
  const version = (await must(["--version"])).stdout.match(/(\d+)\.(\d+)\.(\d+)/);
  const [major, minor] = [Number(version?.[1]), Number(version?.[2])];
  if (!version || major < 4 || (major === 4 && minor < 45)) {
    throw new StepError(`${WRANGLER} is wrangler ${version?.[0] ?? "(unknown)"}; 4.45 or later is needed (npm ci)`);
  }
  say(`wrangler ${version[0]} (${WRANGLER})`);
  if (WORKERS_CI) return say("Workers Builds: its own credentials");
  const who = await run(["whoami", "--json", ...target]);
  if (who.code !== 0) {
    throw new StepError("not logged in to Cloudflare: run `npx wrangler login` (or set CLOUDFLARE_API_TOKEN)", who.all);
  }
  const me = jsonIn<{ email?: string; accounts?: { id: string; name: string }[] }>(who.stdout);
  const accounts = me.accounts ?? [];
  if (accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID && !ctx.plan.accountId) {
    const list = accounts.map((a) => `${a.name} (${a.id})`).join(", ");
    throw new StepError(`this login has several accounts (${list}): set CLOUDFLARE_ACCOUNT_ID to the one to use`);
  }
  say(`logged in${me.email ? ` as ${me.email}` : ""}${accounts.length === 1 ? `, account ${accounts[0]?.name}` : ""}`);
}

async function ensureDatabases(ctx: Context) {
  const listed = jsonIn<{ name: string; uuid: string }[]>((await must(["d1", "list", "--json", ...target])).stdout);
  for (const db of ctx.plan.databases) {
    if (db.id || listed.some((d) => d.name === db.name)) {
      say(`D1 ${db.name}: exists, reused`);
      ctx.skipped.push(`D1 ${db.name} (exists)`);
      continue;
    }
    const where = db.jurisdiction ? ["--jurisdiction", db.jurisdiction] : [];
    await must(["d1", "create", db.name, ...where, ...target]);
    say(`D1 ${db.name}: created`);
    ctx.did.push(`created D1 database ${db.name}`);
  }
}

/** Names in the `name` column of `wrangler queues list` tables. */
function tableNames(text: string): string[] {
  const rows = text.split("\n").filter((l) => l.trim().startsWith("│"));
  const cells = rows.map((r) => r.split("│").map((c) => c.trim()));
  const column = cells[0]?.indexOf("name") ?? -1;
  return column < 0 ? [] : cells.slice(1).map((c) => c[column] ?? "");
}

async function ensureQueues(ctx: Context) {
  const existing = new Set<string>();
  // Page by page until every queue is found or a page adds nothing.
  for (let page = 1; page <= 100 && ctx.plan.queues.some((q) => !existing.has(q)); page++) {
    const names = tableNames((await must(["queues", "list", "--page", String(page), ...target])).stdout);
    const before = existing.size;
    for (const n of names) existing.add(n);
    if (existing.size === before) break;
  }
  for (const queue of ctx.plan.queues) {
    if (existing.has(queue)) {
      say(`queue ${queue}: exists, reused`);
      ctx.skipped.push(`queue ${queue} (exists)`);
      continue;
    }
    await must(["queues", "create", queue, ...target]);
    say(`queue ${queue}: created`);
    ctx.did.push(`created queue ${queue}`);
  }
}

async function ensureBuckets(ctx: Context) {
  const lists = new Map<string, string[]>();
  for (const bucket of ctx.plan.buckets) {
    const where = bucket.jurisdiction ? ["--jurisdiction", bucket.jurisdiction] : [];
    const key = bucket.jurisdiction ?? "";
    if (!lists.has(key)) {
      const text = (await must(["r2", "bucket", "list", ...where, ...target])).stdout;
      lists.set(
        key,
        [...text.matchAll(/^name:\s+(\S+)\s*$/gm)].map((m) => m[1] ?? ""),
      );
    }
    if (lists.get(key)?.includes(bucket.name)) {
      say(`R2 bucket ${bucket.name}: exists, reused`);
      ctx.skipped.push(`R2 bucket ${bucket.name} (exists)`);
      continue;
    }
    await must(["r2", "bucket", "create", bucket.name, ...where, ...target]);
    say(`R2 bucket ${bucket.name}: created`);
    ctx.did.push(`created R2 bucket ${bucket.name}`);
  }
}

async function ensureSecrets(ctx: Context) {
  const listed = await run(["secret", "list", ...target]);
  let names: string[] = [];
  if (listed.code === 0) names = jsonIn<{ name: string }[]>(listed.stdout).map((s) => s.name);
  else if (!/not found/i.test(listed.all)) throw new StepError("`wrangler secret list` failed", listed.all);
  // (not found: the Worker does not exist yet, so it has no secret; `secret put` creates it, the deploy fills it)
  for (const name of SECRETS) {
    if (names.includes(name)) {
      say(`${name}: set already, kept`);
      ctx.skipped.push(`secret ${name} (set already)`);
      continue;
    }
    if (CI) {
      say(`${name}: NOT SET, and not generated in CI (its log would keep it)`);
      ctx.notes.push(
        `${name} is not set: \`openssl rand -hex 32 | npx wrangler secret put ${name}\` (or the dashboard)`,
      );
      continue;
    }
    const value = randomBytes(32).toString("hex");
    await must(["secret", "put", name, ...target], { input: value });
    say(`${name}: generated and set. Shown only now, keep it somewhere safe:`);
    say(`  ${value}`);
    if (name === "ADMIN_TOKEN") ctx.adminToken = value;
    ctx.did.push(`set secret ${name}`);
  }
  if (!names.some((n) => n.endsWith("_API_KEY"))) {
    ctx.notes.push(
      `no provider key is set: \`npx wrangler secret put OPENAI_API_KEY${opts.env ? ` --env ${opts.env}` : ""}\`` +
        " (or ANTHROPIC_API_KEY, GOOGLE_API_KEY, …)",
    );
  }
}

async function applyMigrations(ctx: Context) {
  for (const db of ctx.plan.databases) {
    // By binding, not name: what Cloudflare recommends (the deploy button lets a user rename the database).
    const out = (await must(["d1", "migrations", "apply", db.binding, "--remote", ...target], { echo: true })).stdout;
    const count = Number(out.match(/About to apply (\d+) migration/)?.[1] ?? 0);
    if (count) ctx.did.push(`applied ${count} D1 migration(s) to ${db.name}`);
    else ctx.skipped.push(`D1 migrations of ${db.name} (none pending)`);
  }
}

async function deployWorker(ctx: Context) {
  const out = (await must(["deploy", ...target], { echo: true })).stdout;
  const url = opts.url ?? out.match(/^\s+(https?:\/\/\S+)\s*$/m)?.[1];
  const version = out.match(/Current Version ID: (\S+)/)?.[1];
  ctx.did.push(`deployed ${ctx.plan.worker}${version ? ` (version ${version})` : ""}`);
  if (url) ctx.url = url.replace(/\/$/, "");
  else ctx.notes.push("wrangler printed no URL (no workers.dev?): pass --url <https://…> to check /health");
}

async function checkHealth(ctx: Context) {
  if (!ctx.url) {
    ctx.skipped.push("health check (no URL)");
    return;
  }
  const deadline = Date.now() + Number(opts["health-wait"]) * 1000;
  let last = "";
  // A first deploy's workers.dev name can take a few seconds to answer.
  for (;;) {
    try {
      const res = await fetch(`${ctx.url}/health`, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (res.status === 200 && /"status":\s*"ok"/.test(body)) break;
      last = `${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new StepError(
        `GET ${ctx.url}/health did not answer 200 ({"status":"ok"}) within ${opts["health-wait"]} s (last: ${last}). ` +
          "The new version is live: `npx wrangler tail` shows why; `npx wrangler rollback` restores the previous one",
      );
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  say(`GET ${ctx.url}/health: 200 {"status":"ok"}`);
  ctx.did.push("checked /health");
}

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`    ${question} [Y/n] `);
  rl.close();
  return !/^n/i.test(answer.trim());
}

async function offerWallet(ctx: Context) {
  const token = ctx.adminToken ?? process.env.ADMIN_TOKEN;
  const skip = opts["no-wallet"] || WORKERS_CI ? "not asked" : !ctx.url ? "no URL" : !token ? "no ADMIN_TOKEN" : null;
  if (skip) {
    if (skip === "no ADMIN_TOKEN") say("ADMIN_TOKEN predates this run: rerun with ADMIN_TOKEN=… and --create-wallet");
    ctx.skipped.push(`first wallet (${skip})`);
    return;
  }
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const list = await fetch(`${ctx.url}/admin/wallets?limit=1`, { headers });
  if (list.status !== 200) throw new StepError(`GET /admin/wallets answered ${list.status}`, await list.text());
  if (((await list.json()) as { data: unknown[] }).data.length > 0) {
    say("a wallet exists already");
    ctx.skipped.push("first wallet (one exists)");
    return;
  }
  const wanted = opts["create-wallet"] || opts.yes || (interactive && (await ask("Create the first wallet now?")));
  if (!wanted) {
    if (!interactive) say("not created: pass --create-wallet (or --yes) to create it in a non-interactive run");
    ctx.skipped.push("first wallet (not wanted)");
    return;
  }
  const res = await fetch(`${ctx.url}/admin/wallets`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: opts["wallet-name"] }),
  });
  if (res.status !== 201) throw new StepError(`POST /admin/wallets answered ${res.status}`, await res.text());
  const wallet = (await res.json()) as { wallet_id: string; secret_key: string };
  say(`wallet ${wallet.wallet_id} created. Its secret key, shown only now:`);
  say(`  ${wallet.secret_key}`);
  ctx.did.push(`created wallet ${wallet.wallet_id}`);
}

const steps: [name: string, run: (ctx: Context) => Promise<void>][] = [
  ["wrangler", checkWrangler],
  ["database", ensureDatabases],
  ["queues", ensureQueues],
  ["bucket", ensureBuckets],
  ["secrets", ensureSecrets],
  ["migrations", applyMigrations],
  ["deploy", deployWorker],
  ["health", checkHealth],
  ["wallet", offerWallet],
];

/** What some failures mean, beyond wrangler's own words. */
const HINTS: [RegExp, string][] = [
  [/\b10042\b|enable R2/, "R2 is not enabled on this account: enable it once in the dashboard (R2 Object Storage)"],
];

function stop(step: string, err: unknown, ctx?: Context): never {
  const output = err instanceof StepError ? err.output.trim() : "";
  console.error(`\n✗ ${step} failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const line of output ? output.split("\n").slice(-25) : []) console.error(`    │ ${line}`);
  for (const [pattern, hint] of HINTS) if (pattern.test(output)) console.error(`  ${hint}.`);
  const after = steps.slice(steps.findIndex(([n]) => n === step) + 1).map(([n]) => n);
  if (after.length) console.error(`Not run: ${after.join(", ")}.`);
  console.error(`Fix the cause, then rerun \`${rerun}\`: it finds the steps already done and carries on from here.`);
  if (ctx?.adminToken && !process.env.ADMIN_TOKEN) {
    console.error(
      "(ADMIN_TOKEN was generated above: rerun with ADMIN_TOKEN=<it> in the environment to create a wallet.)",
    );
  }
  process.exit(1);
}

let plan: Plan;
try {
  plan = await readPlan();
} catch (err) {
  stop("config", err);
}
console.log(`Deploying Worker ${plan.worker} (${opts.config}${opts.env ? `, environment ${opts.env}` : ""})`);
const ctx: Context = { plan, did: [], skipped: [], notes: [] };
for (const [name, step] of steps) {
  console.log(`▸ ${name}`);
  try {
    await step(ctx);
  } catch (err) {
    stop(name, err, ctx);
  }
}
console.log(`\n✓ Deployed${ctx.url ? `: ${ctx.url}` : ""}`);
console.log(`  Did: ${ctx.did.join("; ") || "nothing new"}.`);
console.log(`  Skipped: ${ctx.skipped.join("; ") || "nothing"}.`);
for (const note of ctx.notes) console.log(`  Note: ${note}.`);
