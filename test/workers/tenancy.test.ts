import { describe, expect, it } from "vitest";
import { ADMIN, call, chat, createSpendKey, createWallet, d1All, json, mgmt } from "./helpers.ts";

/**
 * OWASP API1/API2/API5 as one shared table: every management and operator route, tried with no credential,
 * a spend key, a wallet key where an admin token is needed, and another wallet's key / ids. Each must be refused
 * (401/403/404) and change nothing.
 */

interface Route {
  method: string;
  path: string; // {spend_key}, {secret_key}, {request}, {model} are filled in
  body?: unknown;
  family: "management" | "operator";
}

const ROUTES: Route[] = [
  { method: "POST", path: "/v1/spend_keys", body: { name: "x" }, family: "management" },
  { method: "GET", path: "/v1/spend_keys", family: "management" },
  { method: "GET", path: "/v1/spend_keys/{spend_key}", family: "management" },
  { method: "PUT", path: "/v1/spend_keys/{spend_key}", body: { name: "hijacked" }, family: "management" },
  { method: "PATCH", path: "/v1/spend_keys/{spend_key}", body: { status: "paused" }, family: "management" },
  { method: "POST", path: "/v1/spend_keys/{spend_key}/rotate", family: "management" },
  { method: "DELETE", path: "/v1/spend_keys/{spend_key}", family: "management" },
  { method: "GET", path: "/v1/secret_keys", family: "management" },
  { method: "POST", path: "/v1/secret_keys", body: { name: "x" }, family: "management" },
  { method: "DELETE", path: "/v1/secret_keys/{secret_key}", family: "management" },
  { method: "GET", path: "/v1/requests", family: "management" },
  { method: "GET", path: "/v1/requests/{request}", family: "management" },
  { method: "POST", path: "/admin/wallets", body: { name: "x" }, family: "operator" },
  { method: "GET", path: "/admin/wallets", family: "operator" },
  {
    method: "PUT",
    path: "/admin/models/{model}",
    body: { provider: "openai", input_price: "0", output_price: "0" },
    family: "operator",
  },
  { method: "DELETE", path: "/admin/models/{model}", family: "operator" },
];

async function victim() {
  const wallet = await createWallet("victim");
  const extra = await json(await mgmt(wallet.key, "POST", "/secret_keys", { name: "second" }), 201);
  const key = await createSpendKey(wallet.key, { spend_limit: { amount: "1", cycle: "daily" } });
  const res = await chat(key.key);
  await res.text();
  const requestId = res.headers.get("x-request-id")!;
  await call("PUT", "/admin/models/tenancy-model", {
    headers: ADMIN,
    body: { provider: "openai", input_price: "1", output_price: "2" },
  });
  return { wallet, spendKey: key, secretKeyId: extra.secret_key_id as string, requestId };
}

async function snapshot(walletId: string): Promise<string> {
  const rows = await Promise.all([
    d1All(`SELECT id, name FROM wallets ORDER BY id`),
    d1All(`SELECT id, wallet_id, name, key_hash, deleted_at FROM wallet_secret_keys WHERE wallet_id = '${walletId}'`),
    d1All(
      "SELECT id, name, status, key_hash, spend_limit_nanos, revoked_at, updated_at FROM spend_keys " +
        `WHERE wallet_id = '${walletId}'`,
    ),
    d1All(`SELECT * FROM model_overrides WHERE model = 'tenancy-model'`),
  ]);
  return JSON.stringify(rows);
}

describe("tenancy: every management and operator route refuses the wrong caller and changes nothing", () => {
  it("runs the shared table", async () => {
    const v = await victim();
    const attacker = await createWallet("attacker");
    const attackerKey = await createSpendKey(attacker.key);
    const fill = (path: string) =>
      path
        .replace("{spend_key}", v.spendKey.spend_key_id)
        .replace("{secret_key}", v.secretKeyId)
        .replace("{request}", v.requestId)
        .replace("{model}", "tenancy-model");
    const before = await snapshot(v.wallet.walletId);
    const outcomes: string[] = [];
    for (const route of ROUTES) {
      const path = fill(route.path);
      const callers: [string, Record<string, string>, number[]][] = [
        ["no credential", {}, [401]],
        ["garbage", { authorization: "Bearer sgw_nope" }, [401, 403]],
        ["a spend key (the victim's own)", { authorization: `Bearer ${v.spendKey.key}` }, [401, 403]],
        ["a spend key as x-api-key", { "x-api-key": v.spendKey.key }, [401]],
        ["the key in the query string", {}, [401]],
      ];
      if (route.family === "operator") {
        callers.push(["the victim's wallet key", { authorization: `Bearer ${v.wallet.key}` }, [401, 403]]);
      } else if (route.path.includes("{")) {
        // another wallet's key on the victim's ids: indistinguishable from unknown ids
        callers.push(["another wallet's key", { authorization: `Bearer ${attacker.key}` }, [404]]);
      }
      for (const [who, headers, allowed] of callers) {
        const url =
          who === "the key in the query string" ? `${path}?key=${v.wallet.key}&api_key=${v.wallet.key}` : path;
        const res = await call(route.method, url, { headers, body: route.body });
        const text = await res.text();
        if (!allowed.includes(res.status))
          outcomes.push(`${route.method} ${route.path} with ${who}: ${res.status} ${text}`);
        expect(text).not.toContain(v.spendKey.key);
      }
    }
    expect(outcomes).toEqual([]);
    expect(await snapshot(v.wallet.walletId)).toBe(before);
    // lists with another wallet's key show none of the victim's rows
    for (const path of [
      "/spend_keys",
      "/secret_keys",
      "/requests",
      `/requests?spend_key_id=${v.spendKey.spend_key_id}`,
    ]) {
      const body = await json(await mgmt(attacker.key, "GET", path), 200);
      expect(JSON.stringify(body)).not.toContain(v.wallet.walletId);
      expect(JSON.stringify(body)).not.toContain(v.spendKey.spend_key_id);
    }
    expect(attackerKey.wallet_id).toBe(attacker.walletId);
  });

  it("spend keys reach only the gateway; wallet keys and admin tokens never act as spend keys", async () => {
    const wallet = await createWallet();
    for (const key of [wallet.key, "test-admin-token"]) {
      expect((await chat(key)).status).toBe(401);
      expect((await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    }
  });
});
