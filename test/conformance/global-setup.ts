import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { type Stack, startStack } from "../../scripts/lib/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    gatewayUrl: string;
    adminToken: string;
    /** the fake provider the gateway forwards to (to compare answers with the provider's own) */
    fakeUrl: string;
  }
}

let stack: Stack | undefined;
let dir: string | undefined;

/** The Worker served by `wrangler dev` exactly as `npm run dev` serves it, with its own local state. */
export async function setup(project: TestProject) {
  dir = mkdtempSync(join(tmpdir(), "spendgate-conformance-"));
  stack = await startStack({
    persistTo: dir,
    fake: true,
    quiet: true,
    vars: { ADMIN_TOKEN: "conformance-admin-token", GROQ_BASE_URL: "http://127.0.0.1:9/v1" },
  });
  project.provide("gatewayUrl", stack.url);
  project.provide("adminToken", stack.adminToken);
  project.provide("fakeUrl", stack.fakeUrl ?? "");
}

export async function teardown() {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
