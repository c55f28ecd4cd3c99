import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, chat, json, messages, mgmt, setupKey } from "./helpers.ts";

/**
 * Rotation with a grace period: the replaced secret keeps working until the grace ends and not one request after;
 * pause and revoke end it at once. The guard's clock is moved to the edges of the grace period.
 */

const setClock = (id: string, at: number) =>
  runInDurableObject(keyGuard(env, id), (g: KeyGuard) => {
    g.now = () => at;
  });

async function rotate(walletKey: string, id: string, body?: unknown) {
  return json(await mgmt(walletKey, "POST", `/spend_keys/${id}/rotate`, body), 200);
}

describe("rotate with grace_period_seconds", () => {
  it("keeps the old secret working until the grace ends, and not one millisecond after", async () => {
    const { wallet, id, key: old } = await setupKey();
    const before = Date.now();
    const rotated = await rotate(wallet.key, id, { grace_period_seconds: 600 });
    const after = Date.now();
    const until = Date.parse(rotated.previous_secret_expires_at);
    expect(until).toBeGreaterThanOrEqual(before + 600_000);
    expect(until).toBeLessThanOrEqual(after + 600_000);
    expect(rotated.key).not.toBe(old);

    expect((await chat(old)).status).toBe(200);
    expect((await chat(rotated.key)).status).toBe(200);
    // The old secret reads the key too, and sees when it stops working.
    const seen = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${old}` } }), 200);
    expect(seen.previous_secret_expires_at).toBe(rotated.previous_secret_expires_at);

    await setClock(id, until - 1);
    expect((await chat(old)).status).toBe(200);
    await setClock(id, until);
    const refused = await chat(old);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("x-spendgate-limit")).toBe("key");
    expect((await json(refused)).error.code).toBe("invalid_api_key");
    expect((await chat(rotated.key)).status).toBe(200);
  });

  it("revoke during the grace stops both secrets at once", async () => {
    const { wallet, id, key: old } = await setupKey({ request_shape: "anthropic" });
    const rotated = await rotate(wallet.key, id, { grace_period_seconds: 3600 });
    expect((await messages(old)).status).toBe(200);
    await json(await mgmt(wallet.key, "DELETE", `/spend_keys/${id}`), 200);
    const fresh = await messages(rotated.key);
    expect(fresh.status).toBe(401);
    expect(fresh.headers.get("x-spendgate-limit")).toBe("revoked");
    expect((await json(fresh)).error.type).toBe("authentication_error");
    // The replaced secret is no longer the key's at all: it reads like any bad key.
    const stale = await messages(old);
    expect(stale.status).toBe(401);
    expect(stale.headers.get("x-spendgate-limit")).toBe("key");
  });

  it("pause ends the grace: after resuming only the new secret works", async () => {
    const { wallet, id, key: old } = await setupKey();
    const rotated = await rotate(wallet.key, id, { grace_period_seconds: 3600 });
    const paused = await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    expect(paused.previous_secret_expires_at).toBeNull();
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active" }), 200);
    expect((await chat(old)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
  });

  it("a second rotation during the grace stops the first secret at once", async () => {
    const { wallet, id, key: first } = await setupKey();
    const second = await rotate(wallet.key, id, { grace_period_seconds: 3600 });
    const third = await rotate(wallet.key, id, { grace_period_seconds: 3600 });
    expect((await chat(first)).status).toBe(401);
    expect((await chat(second.key)).status).toBe(200);
    expect((await chat(third.key)).status).toBe(200);
  });

  it("without a body (as the Lava SDK calls it) the old secret fails at once; bad graces change nothing", async () => {
    const { wallet, id, key: old } = await setupKey();
    for (const bad of [{ grace_period_seconds: 86_401 }, { grace_period_seconds: -1 }, { grace: 5 }]) {
      const res = await mgmt(wallet.key, "POST", `/spend_keys/${id}/rotate`, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json(res)).error.type).toBe("invalid_request_error");
    }
    expect((await chat(old)).status).toBe(200);
    const rotated = await rotate(wallet.key, id);
    expect(rotated.previous_secret_expires_at).toBeNull();
    expect((await chat(old)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
  });
});

describe("rotation grace and child keys", () => {
  it("a rotated-out secret in its grace period still calls, but cannot mint child keys", async () => {
    const {
      wallet,
      id,
      key: old,
    } = await setupKey({
      spend_limit: { amount: "1.00", cycle: "daily" },
      delegation: { max_depth: 1, max_children: 5 },
    });
    const rotated = await rotate(wallet.key, id, { grace_period_seconds: 600 });
    const mint = (key: string) =>
      call("POST", "/v1/key/children", {
        headers: { authorization: `Bearer ${key}` },
        body: { name: "c", spend_limit: { amount: "0.1" } },
      });
    expect((await chat(old)).status).toBe(200);
    const refused = await mint(old);
    expect((await json(refused, 401)).error.code).toBe("invalid_api_key");
    expect(refused.headers.get("x-spendgate-limit")).toBe("key");
    await json(await mint(rotated.key), 201);
  });
});

describe("rotation grace and pauses", () => {
  it("a rotation while the key is paused gives no grace: after resuming only the new secret works", async () => {
    const { wallet, id, key: old } = await setupKey();
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    const rotated = await rotate(wallet.key, id, { grace_period_seconds: 3600 });
    expect(rotated.previous_secret_expires_at).toBeNull();
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active" }), 200);
    expect((await chat(old)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
  });

  it("an ancestor's pause ends a child's grace as its own would; a rotation under it gives none", async () => {
    const {
      wallet,
      id,
      key: parentKey,
    } = await setupKey({
      spend_limit: { amount: "1.00", cycle: "daily" },
      delegation: { max_depth: 1, max_children: 5 },
    });
    const mint = async (name: string) =>
      json(
        await call("POST", "/v1/key/children", {
          headers: { authorization: `Bearer ${parentKey}` },
          body: { name, spend_limit: { amount: "0.1" } },
        }),
        201,
      );
    const c = await mint("c");
    const rotated = await rotate(wallet.key, c.spend_key_id, { grace_period_seconds: 3600 });
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    const d = await mint("d").catch(() => null);
    expect(d).toBeNull();
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active" }), 200);
    expect((await chat(c.key)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
    const seen = await json(await mgmt(wallet.key, "GET", `/spend_keys/${c.spend_key_id}`), 200);
    expect(seen.previous_secret_expires_at).toBeNull();

    const e = await mint("e");
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "paused" }), 200);
    const under = await rotate(wallet.key, e.spend_key_id, { grace_period_seconds: 3600 });
    expect(under.previous_secret_expires_at).toBeNull();
    await json(await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { status: "active" }), 200);
    expect((await chat(e.key)).status).toBe(401);
    expect((await chat(under.key)).status).toBe(200);
  });
});
