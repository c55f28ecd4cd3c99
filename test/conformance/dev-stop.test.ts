import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { freePort, ROOT } from "../../scripts/lib/stack.ts";

/** Processes whose command line names this port: wrangler and the workerd serving it. */
const onPort = (port: number) =>
  spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((line) => line.includes(`${port}`) && /wrangler|workerd/.test(line));

it("`npm run dev` stopped with SIGTERM (as a process manager does) leaves no wrangler or workerd behind", async () => {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "spendgate-dev-stop-"));
  const npm = spawn("npm", ["run", "dev"], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), SPENDGATE_STATE_DIR: state },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  npm.stdout.on("data", (d: Buffer) => (out += d.toString()));
  npm.stderr.on("data", (d: Buffer) => (out += d.toString()));
  try {
    const deadline = Date.now() + 90_000;
    while (!out.includes("Spendgate is running")) {
      if (Date.now() > deadline || npm.exitCode !== null) throw new Error(`npm run dev did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(onPort(port).length).toBeGreaterThan(0);
    npm.kill("SIGTERM");
    const gone = Date.now() + 15_000;
    while (onPort(port).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 250));
    expect(onPort(port)).toEqual([]);
  } finally {
    for (const line of onPort(port)) process.kill(Number(line.trim().split(/\s+/)[0]), "SIGKILL");
    rmSync(state, { recursive: true, force: true });
  }
}, 120_000);
