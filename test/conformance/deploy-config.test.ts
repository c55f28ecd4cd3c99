import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/stack.ts";

/** What `wrangler deploy` ships: checked on the config file itself. */
describe("deploy configuration", () => {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  it("restricts the Worker's fetch to public addresses and https providers in production", () => {
    expect(toml).toMatch(/^compatibility_flags = \[.*"global_fetch_strictly_public".*\]$/m);
    expect(toml).toMatch(/^SPENDGATE_ENV = "production"$/m);
    for (const line of toml.split("\n").filter((l) => /_BASE_URL = /.test(l))) expect(line).toMatch(/= "https:\/\//);
  });
  it("does not send metrics and binds D1 and the KeyGuard class", () => {
    expect(toml).toMatch(/^send_metrics = false$/m);
    expect(toml).toMatch(/binding = "DB"/);
    expect(toml).toMatch(/name = "KEY_GUARD"\s*\nclass_name = "KeyGuard"/);
    expect(toml).toMatch(/new_sqlite_classes = \["KeyGuard"\]/);
  });
});

describe("the Worker bundle", () => {
  it("stays at most 150 KiB gzipped with the compiled price catalog and the dashboard", () => {
    const out = mkdtempSync(join(tmpdir(), "spendgate-bundle-"));
    try {
      execFileSync(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", out], {
        cwd: ROOT,
        stdio: "pipe",
      });
      const bundle = readFileSync(join(out, "index.js"));
      expect(gzipSync(bundle).byteLength).toBeLessThanOrEqual(150 * 1024);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
