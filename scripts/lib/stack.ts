import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NUMERIC_VARS } from "../../src/config.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";
import { startFakeProvider } from "../fake-provider/server.ts";
import { wranglerOutputFilter } from "./wrangler-output.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");

/**
 * Where each provider's fake lives on the fake server: `/<id>` + the path of its official base URL
 * (`/openai/v1`, `/anthropic`, `/google/v1beta/openai`, …), from the provider registry.
 */
export const FAKE_PATHS = Object.values(PROVIDERS).map((p) => ({
  provider: p,
  path: `/${p.id}${new URL(p.defaultBaseUrl).pathname.replace(/\/$/, "")}`,
}));

/** Every provider pointed at the fake provider at `fakeUrl`, each with a placeholder key. */
export function fakeProviderVars(fakeUrl: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const { provider, path } of FAKE_PATHS) {
    vars[provider.baseUrlVar] = fakeUrl + path;
    vars[provider.apiKeyVar] = `fake-${provider.id}-key`;
  }
  return vars;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** KEY=VALUE lines of a .dev.vars file (quotes stripped). */
export function readDevVars(path = join(ROOT, ".dev.vars")): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith("#")) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

export interface StackOptions {
  port?: number;
  /** a separate local state folder (tests, bench); default: wrangler's own .wrangler/state */
  persistTo?: string;
  /** force the fake provider even if provider keys are configured */
  fake?: boolean;
  fakeLatencyMs?: number;
  /** extra vars for the Worker */
  vars?: Record<string, string>;
  quiet?: boolean;
}

export interface Stack {
  url: string;
  adminToken: string;
  fakeUrl: string | null;
  usingFake: boolean;
  stop(): Promise<void>;
}

/**
 * Starts the gateway the way `npm run dev` does: local D1 migrations applied, the fake provider when no
 * provider key is configured, then `wrangler dev` on 127.0.0.1. Settings from the environment beat .dev.vars,
 * which beats the defaults.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const configured = { ...readDevVars(), ...pick(process.env) };
  const providerKeys = Object.values(PROVIDERS).filter((p) => configured[p.apiKeyVar]);
  const usingFake = opts.fake ?? providerKeys.length === 0;
  const vars: Record<string, string> = { SPENDGATE_ENV: "development", ...configured, ...(opts.vars ?? {}) };
  // Empty counts as unset (.dev.vars.example lists ADMIN_TOKEN empty, for the Deploy to Cloudflare button).
  vars.ADMIN_TOKEN ||= "dev-admin-token";

  let fake: Awaited<ReturnType<typeof startFakeProvider>> | null = null;
  if (usingFake) {
    fake = await startFakeProvider(0, { latencyMs: opts.fakeLatencyMs ?? 0 });
    Object.assign(vars, fakeProviderVars(fake.url), opts.vars ?? {});
  }

  const persist = opts.persistTo ? ["--persist-to", opts.persistTo] : [];
  const migrate = spawnSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", ...persist], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (migrate.status !== 0) throw new Error(`D1 migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);

  const port = opts.port ?? (await freePort());
  // Settings reach the Worker through a private env file (mode 600), never the command line, where `ps`
  // would show provider keys.
  const envDir = mkdtempSync(join(tmpdir(), "spendgate-dev-"));
  const envFile = join(envDir, "worker.env");
  const lines = Object.entries(vars)
    .filter(([k]) => isWorkerVar(k))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  writeFileSync(envFile, `${lines.join("\n")}\n`, { mode: 0o600 });
  const args = [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--show-interactive-dev-session=false",
    "--log-level",
    opts.quiet ? "error" : "warn",
    "--env-file",
    envFile,
    ...persist,
  ];
  const child: ChildProcess = spawn(WRANGLER, args, {
    cwd: ROOT,
    stdio: opts.quiet ? ["ignore", "ignore", "pipe"] : ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    // Its own process group, so stopping it stops wrangler and every workerd it started, all at once.
    detached: true,
  });
  const stopWrangler = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise((r) => child.once("exit", r));
    const group = -child.pid;
    try {
      process.kill(group, "SIGTERM");
    } catch {
      return; // already gone
    }
    const timeout = new Promise((r) => setTimeout(r, 5_000, "timeout"));
    if ((await Promise.race([exited, timeout])) === "timeout") {
      try {
        process.kill(group, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  };
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  if (!opts.quiet) {
    child.stdout?.on(
      "data",
      wranglerOutputFilter((line) => process.stdout.write(`${line}\n`)),
    );
    child.stderr?.on(
      "data",
      wranglerOutputFilter((line) => process.stderr.write(`${line}\n`)),
    );
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${stderr}`);
    try {
      const res = await fetch(`${url}/v1/models`);
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stopWrangler();
      rmSync(envDir, { recursive: true, force: true });
      throw new Error(`wrangler dev did not answer on ${url} within 60 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return {
    url,
    adminToken: vars.ADMIN_TOKEN,
    fakeUrl: fake?.url ?? null,
    usingFake,
    async stop() {
      await stopWrangler();
      await fake?.close();
      rmSync(envDir, { recursive: true, force: true });
    },
  };
}

function pick(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && isWorkerVar(k)) out[k] = v;
  return out;
}

/** The vars the Worker reads: its settings (src/config.ts) and each provider's key and base URL. */
function isWorkerVar(name: string): boolean {
  return (
    name === "ADMIN_TOKEN" ||
    name === "SPENDGATE_ENV" ||
    Object.hasOwn(NUMERIC_VARS, name) ||
    Object.values(PROVIDERS).some((p) => name === p.apiKeyVar || name === p.baseUrlVar)
  );
}
