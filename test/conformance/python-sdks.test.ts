import { type ChildProcessWithoutNullStreams, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/**
 * The official `openai` and `anthropic` Python SDKs drive the gateway `wrangler dev` serves, with only their base URL
 * and key changed: JSON, streams (a usage chunk only for a client that asked), Responses, embeddings, models, error
 * classes and which errors they retry, and 20 concurrent async calls. The scripts in `python/` print what they saw;
 * the assertions are here. A virtual environment with both SDKs (pip, from the machine's package index) is kept in
 * node_modules/.cache, so only the first run installs them. Skipped only when python3 is absent. Each script runs
 * as one process serving its checks in turn (`--serve`): importing the SDKs took most of a process per check.
 */
const run = promisify(execFile);
/** What a serving script prints after each check (python/common.py). */
const DONE = "--spendgate-check-done--";
const HERE = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.PYTHON ?? "python3";
const VENV = join(HERE, "..", "..", "node_modules", ".cache", "spendgate-python-sdks");
const venvPython = join(VENV, "bin", "python");
const hasPython = spawnSync(PYTHON, ["--version"]).status === 0;
if (!hasPython) console.warn(`python-sdks.test.ts: skipped, '${PYTHON}' is not installed (set PYTHON to another one)`);

/** The virtual environment, made (or made again, when it no longer imports both SDKs) on first use. */
async function ensureVenv(): Promise<void> {
  // Both packages installed, found without importing them (an import takes seconds; a broken one fails the checks).
  const found = "import importlib.util as u, sys; sys.exit(not (u.find_spec('openai') and u.find_spec('anthropic')))";
  const works = () => spawnSync(venvPython, ["-c", found]).status === 0;
  if (existsSync(venvPython) && works()) return;
  rmSync(VENV, { recursive: true, force: true });
  mkdirSync(dirname(VENV), { recursive: true });
  await run(PYTHON, ["-m", "venv", VENV]);
  // No retries: an index out of reach (no network) is skipped at once for the machine's own.
  const pip = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--retries", "0", "--timeout", "30"];
  await run(venvPython, [...pip, "openai", "anthropic"], { maxBuffer: 16 << 20 });
  if (!works()) throw new Error(`the virtual environment at ${VENV} does not import openai and anthropic`);
}

describe.skipIf(!hasPython)("official Python SDKs through Spendgate", () => {
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    const anthropic = { request_shape: "anthropic" };
    const spec: Record<string, Record<string, unknown>> = {
      openai: { rate_limit: { rpm: 600 } },
      allowedMini: { allowed_models: ["gpt-4o-mini"] },
      spendCapped: { spend_limit: { amount: "0.000001", cycle: "total" } },
      requestCapped: { request_limit: { count: 1, cycle: "daily" } },
      rateLimited: { rate_limit: { rpm: 60, burst: 1 } },
      concurrent: {},
      anthropic,
      anthropicCapped: { ...anthropic, spend_limit: { amount: "0.000001", cycle: "total" } },
      anthropicRateLimited: { ...anthropic, rate_limit: { rpm: 60, burst: 1 } },
      anthropicConcurrent: anthropic,
    };
    const [made] = await Promise.all([
      Promise.all(Object.entries(spec).map(async ([name, body]) => [name, await newSpendKey(body)] as const)),
      ensureVenv(),
    ]);
    for (const [name, key] of made) keys[name] = key.key;
  }, 300_000);

  /** Each script's process (`--serve`), started on its first check. */
  interface Server {
    child: ChildProcessWithoutNullStreams;
    lines: AsyncIterator<string>;
    stderr: string;
  }
  const servers = new Map<string, Server>();
  afterAll(() => {
    for (const { child } of servers.values()) child.kill();
  });

  async function* linesOf(child: ChildProcessWithoutNullStreams): AsyncGenerator<string> {
    let rest = "";
    for await (const chunk of child.stdout) {
      const parts = (rest + String(chunk)).split("\n");
      rest = parts.pop() ?? "";
      yield* parts;
    }
  }

  function serve(script: string): Server {
    const env = { ...process.env, SPENDGATE_URL: gatewayUrl(), SPENDGATE_KEYS: JSON.stringify(keys) };
    const child = spawn(venvPython, [join(HERE, "python", script), "--serve"], { env });
    const server: Server = { child, lines: linesOf(child), stderr: "" };
    child.stderr.on("data", (d: Buffer) => (server.stderr += d));
    child.on("close", (code) => (server.stderr += `\n(exited with ${code})`));
    return server;
  }

  /** Runs one check of a script and answers what it printed (its last line). */
  async function check(script: string, name: string): Promise<any> {
    let server = servers.get(script);
    if (!server) servers.set(script, (server = serve(script)));
    const { child, lines } = server;
    const from = server.stderr.length;
    const failed = () => server.stderr.slice(from);
    child.stdin.write(`${name}\n`);
    const printed: string[] = [];
    const timeout = setTimeout(() => child.kill(), 90_000);
    try {
      for (;;) {
        const next = await lines.next();
        if (next.done) throw new Error(`${script} ${name}: the process ended\n${failed()}`);
        if (next.value === DONE) break;
        if (next.value.startsWith(DONE)) throw new Error(`${script} ${name} failed:\n${failed()}`);
        printed.push(next.value);
      }
    } finally {
      clearTimeout(timeout);
    }
    return JSON.parse(printed.filter((l) => l.trim()).at(-1) ?? "null");
  }

  it("openai: chat completions as JSON", async () => {
    const seen = await check("openai_sdk.py", "chat_json");
    expect(seen.content).toContain("hello");
    expect(seen.usage).toMatchObject({ completion_tokens: 12 });
  });

  it("openai: streams carry a usage chunk only when the client asked for it", async () => {
    const seen = await check("openai_sdk.py", "chat_stream");
    expect(seen.text.split(" ")).toHaveLength(12);
    expect(seen.plain_usage_chunks).toBe(0);
    expect(seen.plain_choiceless_chunks).toBe(0);
    expect(seen.asked_usage).toEqual([12]);
    expect(seen.asked_last_is_usage).toBe(true);
    expect(seen.helper_text.split(" ")).toHaveLength(12);
  });

  it("openai: Responses as JSON, as events and through the stream helper", async () => {
    const seen = await check("openai_sdk.py", "responses");
    expect(seen.text.split(" ")).toHaveLength(12);
    expect(seen.usage).toBe(12);
    expect(seen.events[0]).toBe("response.created");
    expect(seen.events.at(-1)).toBe("response.completed");
    expect(seen.stream_usage).toBe(12);
  });

  it("openai: embeddings and the models list", async () => {
    const seen = await check("openai_sdk.py", "embeddings_and_models");
    expect(seen.vectors).toBe(2);
    expect(seen.models).toContain("gpt-4o-mini");
    expect(seen.one).toBe("gpt-4o-mini");
  });

  it("openai: error classes; a rate limit is retried after retry-after, the spend and request caps not", async () => {
    const seen = await check("openai_sdk.py", "errors");
    expect(seen.auth).toEqual({ status: 401, requests: 1 });
    expect(seen.permission).toEqual({ class: "PermissionDeniedError", status: 403 });
    expect(seen.not_found).toEqual({ class: "NotFoundError", status: 404 });
    expect(seen.spendCapped).toMatchObject({ code: "spend_limit_exceeded", requests: 1 });
    expect(seen.requestCapped).toMatchObject({ code: "request_limit_exceeded", requests: 1 });
    expect(Number(seen.requestCapped.retry_after)).toBeGreaterThan(0);
    expect(seen.rate.first).toBe(200);
    expect(seen.rate.second).toBe(true);
    expect(seen.rate.requests).toBeGreaterThanOrEqual(3);
  });

  it("openai: 20 concurrent calls from the async client", async () => {
    const seen = await check("openai_sdk.py", "concurrent");
    expect(seen.tokens).toEqual(Array(20).fill(12));
    expect(seen.requests).toBe(20);
  });

  it("anthropic: messages as JSON, streamed (text stream and raw events), count_tokens", async () => {
    const seen = await check("anthropic_sdk.py", "messages");
    expect(seen.text).toContain("hello");
    expect(seen.usage.output).toBe(12);
    expect(seen.stream_text.split(" ")).toHaveLength(12);
    expect(seen.stream_usage).toBe(12);
    expect(seen.events[0]).toBe("message_start");
    expect(seen.events.at(-1)).toBe("message_stop");
    expect(seen.count_tokens).toBeGreaterThan(0);
  });

  it("anthropic: the models list in Anthropic's shape", async () => {
    const seen = await check("anthropic_sdk.py", "models");
    expect(seen.first_page).toBe(5);
    expect(seen.type).toBe("model");
    expect(seen.all.some((id: string) => id.startsWith("claude-"))).toBe(true);
    expect(seen.one).toBe(seen.all[0]);
  });

  it("anthropic: error classes; the spend cap (402) is not retried, a rate limit is", async () => {
    const seen = await check("anthropic_sdk.py", "errors");
    expect(seen.auth).toEqual({ status: 401, requests: 1 });
    expect(seen.spendCapped).toEqual({ status: 402, type: "billing_error", requests: 1 });
    expect(seen.rate.requests).toBeGreaterThanOrEqual(3);
  });

  it("anthropic: 20 concurrent calls from the async client", async () => {
    const seen = await check("anthropic_sdk.py", "concurrent");
    expect(seen.tokens).toEqual(Array(20).fill(12));
    expect(seen.requests).toBe(20);
  });
});
