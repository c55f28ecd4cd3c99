import { existsSync } from "node:fs";
import { inject } from "vitest";

/**
 * Debian's chromium-headless-shell, which playwright-core drives in the browser tests. Without it those tests
 * are skipped, unless REQUIRE_BROWSER is set (CI sets it).
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium-headless-shell";
export const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable && process.env.REQUIRE_BROWSER) {
  throw new Error(`REQUIRE_BROWSER is set but ${CHROMIUM} is missing: apt-get install -y chromium-headless-shell`);
}

export const gatewayUrl = () => inject("gatewayUrl");

export async function newWallet(name = "conformance"): Promise<{ wallet_id: string; secret_key: string }> {
  const res = await fetch(`${gatewayUrl()}/admin/wallets`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("adminToken")}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`wallet: ${res.status} ${await res.text()}`);
  return (await res.json()) as { wallet_id: string; secret_key: string };
}

/** A fresh wallet and one spend key in it, created through the management API. */
export async function newSpendKey(body: Record<string, unknown> = {}) {
  const wallet = await newWallet();
  const res = await fetch(`${gatewayUrl()}/v1/spend_keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${wallet.secret_key}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "conformance", ...body }),
  });
  if (res.status !== 201) throw new Error(`spend key: ${res.status} ${await res.text()}`);
  const created = (await res.json()) as { key: string; spend_key_id: string };
  return { key: created.key, id: created.spend_key_id, walletKey: wallet.secret_key };
}
