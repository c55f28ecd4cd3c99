import { inject } from "vitest";

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
