/**
 * `npm run dev`: the whole gateway locally with no accounts and no network — local D1 and Durable Objects,
 * the bundled fake provider when no provider key is configured, and a dev wallet created once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT, startStack } from "./lib/stack.ts";

const port = Number(process.env.PORT ?? 8787);
// SPENDGATE_STATE_DIR: keep local D1 and Durable Object state somewhere else than wrangler's .wrangler/state.
const stateDir = process.env.SPENDGATE_STATE_DIR;
const stack = await startStack({ port, ...(stateDir ? { persistTo: stateDir } : {}) });
const walletFile = join(stateDir ?? join(ROOT, ".wrangler"), "spendgate-dev-wallet.json");

interface DevWallet {
  wallet_id: string;
  secret_key: string;
}

async function devWallet(): Promise<DevWallet> {
  // The dev wallet's key is kept in .wrangler/ (git-ignored local state, next to the local D1 itself) so
  // a restart can print it again. A deployed gateway never writes a key anywhere.
  if (existsSync(walletFile)) {
    const saved = JSON.parse(readFileSync(walletFile, "utf8")) as DevWallet;
    const check = await fetch(`${stack.url}/v1/spend_keys?limit=1`, {
      headers: { authorization: `Bearer ${saved.secret_key}` },
    });
    if (check.ok) return saved;
  }
  const res = await fetch(`${stack.url}/admin/wallets`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "dev wallet" }),
  });
  if (!res.ok) throw new Error(`could not create the dev wallet: ${res.status} ${await res.text()}`);
  const created = (await res.json()) as DevWallet;
  mkdirSync(dirname(walletFile), { recursive: true });
  writeFileSync(walletFile, JSON.stringify({ wallet_id: created.wallet_id, secret_key: created.secret_key }, null, 2), {
    mode: 0o600,
  });
  return created;
}

const wallet = await devWallet();
const line = "─".repeat(72);
const providerLine = stack.usingFake
  ? ` Provider: the bundled FAKE provider (${stack.fakeUrl}) — responses are fake.\n` +
    " Set OPENAI_API_KEY / ANTHROPIC_API_KEY (environment or .dev.vars) for real ones."
  : " Provider: real providers with the keys you configured.";
console.log(`
${line}
 Spendgate is running at ${stack.url}
${providerLine}
 Operator token (ADMIN_TOKEN): ${stack.adminToken}
 Dev wallet ${wallet.wallet_id}; its secret key, ready to paste into another shell:

   export WALLET=${wallet.secret_key}

 Then create a spend key:
   curl -s ${stack.url}/v1/spend_keys -H "authorization: Bearer $WALLET" \\
     -H "content-type: application/json" -d '{"name":"my agent","spend_limit":{"amount":"5.00","cycle":"daily"}}'
 Dashboard: ${stack.url}   OpenAPI: ${stack.url}/openapi.json   Demo: npm run demo   Stop: Ctrl-C
 The cron (webhook sweeper, ledger retention) runs only when asked: curl ${stack.url}/cdn-cgi/local/scheduled
${line}
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.on("SIGHUP", stop);
// A process manager may signal only `npm`, whose shell does not pass the signal on: when our parent is gone,
// stop too rather than leave wrangler and workerd running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop();
}, 500);
await new Promise(() => undefined);
