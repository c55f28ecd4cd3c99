import { execFileSync, spawn } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeWrangler } from "./fixtures/fake-wrangler.ts";

/**
 * `npm run deploy` (scripts/deploy.ts) against a stand-in `wrangler` put first on PATH
 * (fixtures/fake-wrangler.ts: an account kept in a file, wrangler's output formats, a failure injected at a named
 * command) and a local HTTP server standing in for the deployed Worker's /health and /admin/wallets.
 * The `wrangler` on PATH is a shell script handing its arguments, stdin, working directory and FAKE_WRANGLER_*
 * settings to that server with curl; the server runs the fake's `fakeWrangler()` and answers the output and exit
 * code as shell the script runs. deploy.ts still spawns a process per command and reads its stdout, stderr and
 * exit code, but without a Node start per command (without curl the script runs the fake with Node instead).
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NODE = existsSync(join(ROOT, "node_modules/.bin/node")) ? join(ROOT, "node_modules/.bin/node") : process.execPath;
const FAKE = join(ROOT, "test/conformance/fixtures/fake-wrangler.ts");

/** The resources a config names at its top level or in one [env.<name>] section (read without wrangler). */
function named(toml: string, env?: string) {
  const sections = toml.split(/^(?=\[)/m);
  const mine = sections.filter((s) => {
    const header = s.match(/^\[\[?([^\]]+)\]/)?.[1] ?? "";
    return env ? header.startsWith(`env.${env}.`) : !header.startsWith("env.");
  });
  const all = (key: string) =>
    mine.flatMap((s) => [...s.matchAll(new RegExp(`^${key} = "(.+)"$`, "gm"))].map((m) => m[1]!));
  return {
    worker: env ? `spendgate-${env}` : "spendgate",
    d1: all("database_name"),
    queues: [...new Set([...all("queue"), ...all("dead_letter_queue")])],
    buckets: all("bucket_name"),
  };
}
/**
 * The deploy runs in a copy of the project (a git repository of its own, node_modules linked): a check that it
 * leaves the tree clean is then not disturbed by work going on in this checkout meanwhile.
 */
const REPO = mkdtempSync(join(tmpdir(), "spendgate-deploy-repo-"));
const git = (...args: string[]) =>
  execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.com", ...args], { cwd: REPO }).toString();
const clean = () => git("status", "--porcelain", "--untracked-files=all");
function copyProject() {
  for (const path of ["wrangler.toml", "package.json", ".dev.vars.example", "migrations", "scripts/deploy.ts"]) {
    cpSync(join(ROOT, path), join(REPO, path), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(REPO, "node_modules"));
  writeFileSync(join(REPO, ".gitignore"), "node_modules\n");
  git("init", "-q");
  git("add", "-A");
  git("commit", "-qm", "the project as deployed");
}
copyProject();
const TOP = named(readFileSync(join(REPO, "wrangler.toml"), "utf8"));

interface Account {
  databases: { name: string; migrations: string[] }[];
  queues: string[];
  buckets: string[];
  workers: Record<string, { secrets: Record<string, string>; deployed: number }>;
}

/** One account, one deployed Worker stand-in, one invocation log. */
class World {
  readonly dir = mkdtempSync(join(tmpdir(), "spendgate-deploy-"));
  readonly id = this.dir.split("-").at(-1)!;
  readonly state = join(this.dir, "account.json");
  readonly log = join(this.dir, "log.jsonl");
  wallets: { wallet_id: string; secret_key: string }[] = [];
  failHealth = false;
  failWallet = false;
  constructor(
    readonly resources = TOP,
    preset?: Partial<Account>,
  ) {
    if (preset)
      writeFileSync(this.state, JSON.stringify({ databases: [], queues: [], buckets: [], workers: {}, ...preset }));
  }
  account(): Account {
    return JSON.parse(readFileSync(this.state, "utf8")) as Account;
  }
  /** Each invocation as `wrangler <command>` or `<METHOD> <path>`, in order. */
  calls(): string[] {
    if (!existsSync(this.log)) return [];
    return readFileSync(this.log, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { at: string; argv?: string[]; request?: string })
      .map((c) => (c.at === "http" ? c.request! : `wrangler ${positional(c.argv!).join(" ")}`));
  }
}

/** The command part of an argv (flags and their values left out; `--version` kept). */
function positional(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--version") out.push("--version");
    else if (["--json", "--remote"].includes(argv[i]!)) continue;
    else if (argv[i]!.startsWith("--")) i++;
    else out.push(argv[i]!);
  }
  return out;
}

/** Worlds by id: each deploy's stand-in Worker is the server's `/<id>` (the tests run concurrently). */
const worlds = new Map<string, World>();
let server: Server;
let url = "";
const bin = mkdtempSync(join(tmpdir(), "spendgate-fake-wrangler-"));

beforeAll(async () => {
  server = createServer(async (req, res) => {
    if (req.url === "/__wrangler") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const env: Record<string, string> = {};
      for (const [name, value] of form) if (name.startsWith("FAKE_WRANGLER_") && value) env[name] = value;
      const run = fakeWrangler(form.getAll("arg"), env, form.get("cwd") ?? "", () => form.get("stdin") ?? "");
      const quoted = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
      const script = `printf '%s' ${quoted(run.stdout)}\nprintf '%s' ${quoted(run.stderr)} >&2\nexit ${run.code}\n`;
      return res.writeHead(200, { "content-type": "text/plain" }).end(script);
    }
    const [, id, ...rest] = (req.url ?? "").split("/");
    const world = worlds.get(id ?? "");
    const path = `/${rest.join("/")}`;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (!world) return send(404, {});
    appendFileSync(world.log, `${JSON.stringify({ at: "http", request: `${req.method} ${path}` })}\n`);
    if (path === "/health") return send(world.failHealth ? 500 : 200, world.failHealth ? {} : { status: "ok" });
    const token = world.account().workers[world.resources.worker]?.secrets.ADMIN_TOKEN;
    if (!token || req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "unauthorized" });
    if (req.method === "GET" && path === "/admin/wallets?limit=1") return send(200, { data: world.wallets });
    if (req.method === "POST" && path === "/admin/wallets") {
      if (world.failWallet) return send(500, { error: "injected" });
      const wallet = { wallet_id: `wal_${world.wallets.length + 1}`, secret_key: `sgw_${Math.random().toString(36)}` };
      world.wallets.push(wallet);
      return send(201, wallet);
    }
    send(404, {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const fields = [
    "cwd=$PWD",
    "stdin@-",
    ...["STATE", "LOG", "RESOURCES", "URL", "FAIL"].map((n) => `FAKE_WRANGLER_${n}=$FAKE_WRANGLER_${n}`),
  ]
    .map((field) => `--data-urlencode "${field}"`)
    .join(" ");
  const shim = [
    "#!/bin/sh",
    `command -v curl >/dev/null 2>&1 || exec "${NODE}" "${FAKE}" "$@"`,
    "n=$#",
    'for a in "$@"; do set -- "$@" --data-urlencode "arg=$a"; done',
    'shift "$n"',
    `out=$(curl -sS --fail ${fields} "$@" ${url}/__wrangler) || exit 99`,
    'eval "$out"',
  ];
  writeFileSync(join(bin, "wrangler"), `${shim.join("\n")}\n`);
  chmodSync(join(bin, "wrangler"), 0o755);
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(bin, { recursive: true, force: true });
  for (const w of worlds.values()) rmSync(w.dir, { recursive: true, force: true });
  rmSync(REPO, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function deploy(w: World, args: string[], env: Record<string, string> = {}): Promise<Run> {
  worlds.set(w.id, w);
  const base = { ...process.env };
  for (const k of ["WRANGLER", "CI", "WORKERS_CI", "ADMIN_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "FAKE_WRANGLER_FAIL"]) {
    delete base[k];
  }
  return new Promise((resolve) => {
    const child = spawn(NODE, [join(REPO, "scripts/deploy.ts"), ...args], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...base,
        PATH: `${bin}${delimiter}${process.env.PATH}`,
        FAKE_WRANGLER_STATE: w.state,
        FAKE_WRANGLER_LOG: w.log,
        FAKE_WRANGLER_RESOURCES: JSON.stringify(w.resources),
        FAKE_WRANGLER_URL: `${url}/${w.id}`,
        // deploy.ts reads the config with wrangler's own reader: importing wrangler is most of a run's CPU, and
        // Node's compile cache, kept for this file's runs, saves a fifth of it.
        NODE_COMPILE_CACHE: join(bin, "compile-cache"),
        ...env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const MIGRATIONS = execFileSync("ls", [join(REPO, "migrations")])
  .toString()
  .split("\n")
  .filter((f) => f.endsWith(".sql"));

/** The commands of a deploy, in the order they must run (an invocation is of the first it contains). */
const ORDER = [
  "wrangler --version",
  "wrangler whoami",
  "wrangler d1 list",
  "wrangler d1 create",
  "wrangler queues list",
  "wrangler queues create",
  "wrangler r2 bucket list",
  "wrangler r2 bucket create",
  "wrangler secret list",
  "wrangler secret put",
  "wrangler d1 migrations apply",
  "wrangler deploy",
  "GET /health",
  "/admin/wallets",
];
const rank = (call: string) => ORDER.findIndex((c) => call.includes(c));
const inOrder = (calls: string[]) => calls.map(rank).every((r, i, all) => r >= 0 && (i === 0 || r >= all[i - 1]!));

/** The account holds everything the config names exactly once, migrated, deployed, with both secrets. */
function expectComplete(w: World) {
  const account = w.account();
  expect(account.databases.map((d) => d.name).sort()).toEqual([...w.resources.d1].sort());
  for (const db of account.databases) expect(db.migrations.sort()).toEqual(MIGRATIONS.sort());
  expect(account.queues.sort()).toEqual([...w.resources.queues].sort());
  expect(account.buckets.sort()).toEqual([...w.resources.buckets].sort());
  const worker = account.workers[w.resources.worker];
  expect(Object.keys(worker?.secrets ?? {}).sort()).toEqual(["ADMIN_TOKEN", "WEBHOOK_SECRET_KEY"]);
  expect(worker?.deployed).toBeGreaterThan(0);
}

describe("npm run deploy", () => {
  it("creates every resource, sets missing secrets, migrates, deploys, checks health, makes the wallet", async () => {
    const w = new World();
    const run = await deploy(w, ["--yes", "--health-wait", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(clean()).toBe("");
    expectComplete(w);
    const calls = w.calls();
    const creates = calls.filter((c) => / create /.test(c));
    expect(creates.sort()).toEqual(
      [
        ...TOP.d1.map((n) => `wrangler d1 create ${n}`),
        ...TOP.queues.map((n) => `wrangler queues create ${n}`),
        ...TOP.buckets.map((n) => `wrangler r2 bucket create ${n}`),
      ].sort(),
    );
    expect(calls.filter((c) => c.startsWith("wrangler secret put"))).toEqual([
      "wrangler secret put ADMIN_TOKEN",
      "wrangler secret put WEBHOOK_SECRET_KEY",
    ]);
    // In order: resources, secrets, migrations (by binding), the deploy, then its health, then the wallet.
    expect(inOrder(calls), calls.join("\n")).toBe(true);
    expect(calls).toContain("wrangler d1 migrations apply DB");
    expect(calls.slice(calls.indexOf("wrangler deploy"))).toEqual([
      "wrangler deploy",
      "GET /health",
      "GET /admin/wallets?limit=1",
      "POST /admin/wallets",
    ]);
    // Each generated secret and the wallet's key are printed, once, and are the ones stored.
    const secrets = w.account().workers.spendgate!.secrets;
    for (const value of Object.values(secrets)) {
      expect(value).toMatch(/^[0-9a-f]{64}$/);
      expect(run.stdout.split(value).length - 1).toBe(1);
    }
    expect(run.stdout.split(w.wallets[0]!.secret_key).length - 1).toBe(1);
    expect(run.stdout).toContain(`✓ Deployed: ${url}/${w.id}`);
    expect(run.stdout).toMatch(/Did: created D1 database spendgate; /);

    // A second run: nothing created, no secret set, no migration pending, no second wallet.
    const again = await deploy(w, ["--yes", "--health-wait", "1"]);
    expect(again.code, again.stderr).toBe(0);
    const second = w.calls().slice(calls.length);
    expect(second.filter((c) => / create |secret put|POST /.test(c))).toEqual([]);
    expect(again.stdout).toMatch(/Skipped: D1 spendgate \(exists\); /);
    expect(again.stdout).toContain("secret ADMIN_TOKEN (set already)");
    expect(again.stdout).toContain("D1 migrations of spendgate (none pending)");
    expect(w.wallets).toHaveLength(1);
    for (const value of Object.values(secrets)) expect(again.stdout).not.toContain(value);
    expect(w.account().workers.spendgate!.secrets).toEqual(secrets);
  }, 60_000);

  it("sets only the secrets missing, and creates the wallet with an ADMIN_TOKEN given in the environment", async () => {
    const w = new World(TOP, { workers: { spendgate: { secrets: { ADMIN_TOKEN: "kept-token" }, deployed: 1 } } });
    const run = await deploy(w, ["--create-wallet", "--health-wait", "1"], { ADMIN_TOKEN: "kept-token" });
    expect(run.code, run.stderr).toBe(0);
    expect(w.calls().filter((c) => c.startsWith("wrangler secret put"))).toEqual([
      "wrangler secret put WEBHOOK_SECRET_KEY",
    ]);
    expect(w.account().workers.spendgate!.secrets.ADMIN_TOKEN).toBe("kept-token");
    expect(w.wallets).toHaveLength(1);
    expect(run.stdout).toContain(w.wallets[0]!.secret_key);
  }, 30_000);

  it("in CI generates no secret and asks nothing", async () => {
    const w = new World();
    const run = await deploy(w, ["--health-wait", "1"], { CI: "true" });
    expect(run.code, run.stderr).toBe(0);
    expect(w.calls().filter((c) => /secret put|\/admin/.test(c))).toEqual([]);
    expect(run.stdout).toContain(
      "ADMIN_TOKEN is not set: `openssl rand -hex 32 | npx wrangler secret put ADMIN_TOKEN`",
    );
  }, 30_000);

  it("deploys a second environment, declared as docs/deploy.md shows, with its own resources", async () => {
    const block = readFileSync(join(ROOT, "docs/deploy.md"), "utf8").match(
      /```toml\n(\[env\.staging\][\s\S]*?)```/,
    )?.[1];
    expect(block).toBeTruthy();
    const dir = mkdtempSync(join(tmpdir(), "spendgate-env-"));
    const toml = `${readFileSync(join(REPO, "wrangler.toml"), "utf8")}\n${block}`;
    writeFileSync(join(dir, "wrangler.toml"), toml);
    const w = new World(named(toml, "staging"));
    expect(w.resources.queues).toContain("spendgate-ledger-staging");
    const run = await deploy(w, [
      "--env",
      "staging",
      "--config",
      join(dir, "wrangler.toml"),
      "--yes",
      "--health-wait",
      "1",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(clean()).toBe("");
    expectComplete(w);
    expect(w.account().workers["spendgate-staging"]).toBeDefined();
    expect(run.stdout).toContain("Deploying Worker spendgate-staging");
    // Every command that reads the config gets the environment and the config.
    const argvs = readFileSync(w.log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { at: string; argv?: string[] })
      .filter((c) => c.at === "wrangler" && !c.argv!.includes("--version"));
    for (const { argv } of argvs) expect(argv!.join(" ")).toContain(`--config ${dir}/wrangler.toml --env staging`);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const failures: [fail: string, step: string][] = [
    ["--version", "wrangler"],
    ["whoami", "wrangler"],
    // A list and a create of one step fail alike (`must` throws, the step stops) and leave the account alike
    // (nothing of the step made yet): the create stands for both, since its run also shows the list before it ran.
    // whoami (its own message) and secret list (`run`, "not found" told from failure) have paths of their own.
    ["d1 create", "database"],
    ["queues create", "queues"],
    ["r2 bucket create", "bucket"],
    ["secret list", "secrets"],
    ["secret put", "secrets"],
    ["d1 migrations apply", "migrations"],
    ["deploy", "deploy"],
    ["GET /health", "health"],
    ["/admin/wallets", "wallet"],
  ];
  it.concurrent.each(failures)(
    "a failure at `%s` stops the %s step with the command to rerun; the rerun completes",
    async (fail, step) => {
      const w = new World();
      w.failHealth = step === "health";
      w.failWallet = step === "wallet";
      const args = ["--yes", "--health-wait", "1"];
      const broken = await deploy(
        w,
        args,
        fail.startsWith("/") || fail.startsWith("GET") ? {} : { FAKE_WRANGLER_FAIL: fail },
      );
      expect(broken.code).toBe(1);
      expect(broken.stderr).toContain(`✗ ${step} failed: `);
      expect(broken.stderr).toContain("Fix the cause, then rerun `npm run deploy -- --yes --health-wait 1`");
      // In order, and nothing after the failed command ran.
      const calls = w.calls();
      expect(inOrder(calls), calls.join("\n")).toBe(true);
      expect(rank(calls.at(-1)!), calls.join("\n")).toBe(
        rank(fail.startsWith("/") || fail.startsWith("GET") ? fail : `wrangler ${fail}`),
      );
      if (fail === "whoami") expect(broken.stderr).toContain("not logged in to Cloudflare: run `npx wrangler login`");

      w.failHealth = false;
      w.failWallet = false;
      // As its message says: an ADMIN_TOKEN the failed run generated is given back, so the wallet can be made.
      const token = broken.stdout.match(/ADMIN_TOKEN: generated and set\. .*\n\s+([0-9a-f]{64})/)?.[1];
      const rerun = await deploy(w, args, token ? { ADMIN_TOKEN: token } : {});
      expect(rerun.code, rerun.stderr).toBe(0);
      expectComplete(w);
      expect(w.wallets).toHaveLength(1);
      if (token) expect(broken.stderr).toContain("rerun with ADMIN_TOKEN=<it>");
    },
    60_000,
  );
});
