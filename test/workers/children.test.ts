import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, chat, createSpendKey, createWallet, json, mgmt, settled } from "./helpers.ts";

/** `POST /v1/key/children` as an orchestrator agent calls it: with its own spend key. */
function mint(parentKey: string, body: Record<string, unknown>) {
  return call("POST", "/v1/key/children", { headers: { authorization: `Bearer ${parentKey}` }, body });
}

const DELEGATE = { delegation: { max_depth: 3, max_children: 5 } };

async function root(body: Record<string, unknown> = {}) {
  const wallet = await createWallet();
  const created = await createSpendKey(wallet.key, {
    spend_limit: { amount: "0.01", cycle: "daily" },
    ...DELEGATE,
    ...body,
  });
  return { wallet, key: created.key as string, id: created.spend_key_id as string, created };
}

describe("child keys: minting", () => {
  it("mints a child carved from the parent's cycle, a normal spend key everywhere", async () => {
    const p = await root({ allowed_models: ["gpt-4o-mini", "gpt-4o"], rate_limit: { rpm: 100, burst: 10 } });
    const res = await mint(p.key, { name: "sub-agent", spend_limit: { amount: "0.004" } });
    const child = await json(res, 201);
    expect(child).toMatchObject({
      parent_key_id: p.id,
      spend_limit: { amount: "0.004", cycle: "daily" },
      allowed_models: ["gpt-4o-mini", "gpt-4o"],
      rate_limit: { rpm: 100, burst: 10 },
      delegation: null,
      carved_spend: "0.00",
    });
    expect(child.key).toMatch(/^sk-/);
    // the parent now counts the carve
    const parentView = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${p.key}` } }), 200);
    expect(parentView.carved_spend).toBe("0.004");
    expect(parentView.remaining.spend).toBe("0.006");
    // the child works through the gateway, and its ledger row names its parent
    const answer = await chat(child.key, { max_tokens: 20 });
    expect(answer.status).toBe(200);
    const state = await settled(child.spend_key_id);
    expect(state.ledger[0]?.parentKeyId).toBe(p.id);
    // the wallet sees it: retrieve, and the list filtered by parent
    const got = await json(await mgmt(p.wallet.key, "GET", `/spend_keys/${child.spend_key_id}`), 200);
    expect(got.parent_key_id).toBe(p.id);
    const list = await json(await mgmt(p.wallet.key, "GET", `/spend_keys?parent_key_id=${p.id}`), 200);
    expect(list.data.map((k: { spend_key_id: string }) => k.spend_key_id)).toEqual([child.spend_key_id]);
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({ [child.spend_key_id]: 4_000_000 });
  });
});

const keyView = async (key: string) =>
  json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } }), 200);

describe("child keys: what does not fit is refused, and nothing is minted", () => {
  it("a carve larger than limit − spend − holds − carves: 409 carve_exceeded", async () => {
    const p = await root();
    await json(await mint(p.key, { name: "a", spend_limit: { amount: "0.007" } }), 201);
    const res = await mint(p.key, { name: "b", spend_limit: { amount: "0.0031" } });
    const body = await json(res, 409);
    expect(body.error.code).toBe("carve_exceeded");
    expect(body.error.message).toMatch(/\$0\.003 of \$0\.01/);
    const list = await json(await mgmt(p.wallet.key, "GET", `/spend_keys?parent_key_id=${p.id}`), 200);
    expect(list.data).toHaveLength(1);
    expect(Object.keys((await keyGuard(env, p.id).familyState()).live)).toHaveLength(1);
    // exactly what is left still fits
    await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.003" } }), 201);
  });

  it("scope and limits looser than the parent's: 400 naming the field", async () => {
    const p = await root({
      allowed_models: ["gpt-4o-mini"],
      allowed_providers: ["openai"],
      rate_limit: { rpm: 60, burst: 5 },
      request_limit: { count: 100, cycle: "daily" },
      expires_at: "2099-01-01T00:00:00Z",
    });
    const cases: [Record<string, unknown>, string][] = [
      [{ allowed_models: ["gpt-4o"] }, "allowed_models"],
      [{ allowed_providers: ["anthropic"] }, "allowed_providers"],
      [{ rate_limit: { rpm: 61 } }, "rate_limit"],
      [{ rate_limit: { rpm: 10, burst: 6 } }, "rate_limit"],
      [{ request_limit: { count: 101, cycle: "daily" } }, "request_limit"],
      [{ request_limit: { count: 10, cycle: "monthly" } }, "request_limit"],
      [{ expires_at: "2099-06-01T00:00:00Z" }, "expires_at"],
      [{ request_shape: "anthropic" }, "request_shape"],
      [{ spend_limit: { amount: "0.001", cycle: "monthly" } }, "spend_limit"],
      [{ spend_limit: null }, "spend_limit"],
      [{ spend_limit: { amount: "0.001" }, delegation: { max_depth: 3, max_children: 1 } }, "delegation"],
      [{ spend_limit: { amount: "0.001" }, delegation: { max_depth: 1, max_children: 6 } }, "delegation"],
    ];
    for (const [extra, param] of cases) {
      const body = await json(await mint(p.key, { name: "x", spend_limit: { amount: "0.001" }, ...extra }), 400);
      expect(body.error.param, JSON.stringify(extra)).toBe(param);
    }
    // the same model by another id of it is within scope; what is left out is inherited
    const child = await json(
      await mint(p.key, { name: "ok", allowed_models: ["gpt-4o-mini-2024-07-18"], spend_limit: { amount: "0.001" } }),
      201,
    );
    expect(child).toMatchObject({
      allowed_providers: ["openai"],
      request_limit: { count: 100, cycle: "daily" },
      expires_at: "2099-01-01T00:00:00.000Z",
    });
    expect(Object.keys((await keyGuard(env, p.id).familyState()).live)).toHaveLength(1);
  });

  it("delegation bounds: null may not mint, max_children live children, depth at most 3 below a root", async () => {
    const wallet = await createWallet();
    const plain = await createSpendKey(wallet.key, { spend_limit: { amount: "1.00", cycle: "daily" } });
    expect((await json(await mint(plain.key, { name: "x", spend_limit: { amount: "0.1" } }), 403)).error.code).toBe(
      "forbidden",
    );
    const p = await root({
      spend_limit: { amount: "1.00", cycle: "daily" },
      delegation: { max_depth: 3, max_children: 2 },
    });
    const d = (max_depth: number) => ({ delegation: { max_depth, max_children: 2 } });
    const c1 = await json(await mint(p.key, { name: "c1", spend_limit: { amount: "0.1" }, ...d(2) }), 201);
    await json(await mint(p.key, { name: "c2", spend_limit: { amount: "0.1" } }), 201);
    const third = await json(await mint(p.key, { name: "c3", spend_limit: { amount: "0.1" } }), 409);
    expect(third.error.code).toBe("carve_exceeded");
    const g = await json(await mint(c1.key, { name: "g", spend_limit: { amount: "0.05" }, ...d(1) }), 201);
    const gg = await json(await mint(g.key, { name: "gg", spend_limit: { amount: "0.01" } }), 201);
    expect(gg.delegation).toBeNull();
    expect((await json(await mint(gg.key, { name: "ggg", spend_limit: { amount: "0.001" } }), 403)).error.code).toBe(
      "forbidden",
    );
    // a child's carve fits its own parent's carve, not the root's budget
    expect((await json(await mint(g.key, { name: "big", spend_limit: { amount: "0.05" } }), 409)).error.code).toBe(
      "carve_exceeded",
    );
    // revoking a child frees its place among the live children
    await json(await mgmt(p.wallet.key, "DELETE", `/spend_keys/${c1.spend_key_id}`), 200);
    await json(await mint(p.key, { name: "c3", spend_limit: { amount: "0.1" } }), 201);
  });

  it("the wallet may not change a child's carve, nor a parent's cycle or its limit below live carves (409)", async () => {
    const p = await root();
    const child = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.004" } }), 201);
    const carve = await json(
      await mgmt(p.wallet.key, "PATCH", `/spend_keys/${child.spend_key_id}`, {
        spend_limit: { amount: "0.005", cycle: "daily" },
      }),
      409,
    );
    expect(carve.error.message).toMatch(/carve/);
    const cycle = await json(
      await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { spend_limit: { amount: "0.01", cycle: "weekly" } }),
      409,
    );
    expect(cycle.error.message).toMatch(/cycle/);
    await json(
      await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { spend_limit: { amount: "0.0039", cycle: "daily" } }),
      409,
    );
    await json(
      await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { spend_limit: { amount: "0.004", cycle: "daily" } }),
      200,
    );
    // the child's other fields stay the wallet's to change
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${child.spend_key_id}`, { name: "renamed" }), 200);
  });
});

describe("child keys: a key's state reaches its whole subtree", () => {
  it("pausing the root stops a grandchild's next request (naming the ancestor); resuming restores it", async () => {
    const p = await root();
    const c = await json(
      await mint(p.key, { name: "c", spend_limit: { amount: "0.005" }, delegation: { max_depth: 1, max_children: 2 } }),
      201,
    );
    const g = await json(await mint(c.key, { name: "g", spend_limit: { amount: "0.002" } }), 201);
    expect((await chat(g.key, { max_tokens: 10 })).status).toBe(200);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { status: "paused" }), 200);
    const refused = await chat(g.key, { max_tokens: 10 });
    const body = await json(refused, 403);
    expect(body.error.code).toBe("key_paused");
    expect(body.error.message).toContain(`ancestor key ${p.id}`);
    // a child paused itself stays paused when the root resumes
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${c.spend_key_id}`, { status: "paused" }), 200);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { status: "active" }), 200);
    expect((await json(await chat(g.key, { max_tokens: 10 }), 403)).error.message).toContain(
      `ancestor key ${c.spend_key_id}`,
    );
    expect((await json(await chat(c.key, { max_tokens: 10 }), 403)).error.message).toMatch(/paused by its owner/);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${c.spend_key_id}`, { status: "active" }), 200);
    expect((await chat(g.key, { max_tokens: 10 })).status).toBe(200);
  });

  it("an earlier expiry of the root expires its subtree; revoking the root revokes it", async () => {
    const p = await root();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.005" } }), 201);
    expect(c.expires_at).toBeNull();
    const soon = new Date(Date.now() + 60_000).toISOString();
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { expires_at: soon }), 200);
    const { runInDurableObject } = await import("cloudflare:test");
    await runInDurableObject(keyGuard(env, c.spend_key_id), (g: import("../../src/guard/key-guard.ts").KeyGuard) => {
      g.now = () => Date.now() + 120_000;
    });
    const expired = await json(await chat(c.key, { max_tokens: 10 }), 401);
    expect(expired.error).toMatchObject({ code: "key_expired" });
    expect(expired.error.message).toContain(`ancestor key ${p.id}`);

    const q = await root();
    const d = await json(await mint(q.key, { name: "d", spend_limit: { amount: "0.005" } }), 201);
    await json(await mgmt(q.wallet.key, "DELETE", `/spend_keys/${q.id}`), 200);
    const revoked = await json(await chat(d.key, { max_tokens: 10 }), 401);
    expect(revoked.error.code).toBe("key_revoked");
    expect(revoked.error.message).toContain(`ancestor key ${q.id}`);
    await json(await mgmt(q.wallet.key, "GET", `/spend_keys/${d.spend_key_id}`), 404);
  });

  it("revoking a child returns its carve: its spend stays counted, the rest frees at once", async () => {
    const p = await root();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.006" } }), 201);
    expect((await chat(c.key, { max_tokens: 50 })).status).toBe(200);
    const spent = (await settled(c.spend_key_id)).counters.currentSpendNanos;
    expect(spent).toBeGreaterThan(0);
    expect((await keyView(p.key)).remaining.spend).toBe("0.004");
    await json(await mgmt(p.wallet.key, "DELETE", `/spend_keys/${c.spend_key_id}`), 200);
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({});
    expect(family.returned[c.spend_key_id]).toMatchObject({ amount: spent, final: true });
    expect(family.carvedNanos).toBe(spent);
    const view = await keyView(p.key);
    expect(view.carved_spend).toBe((spent / 1e9).toFixed(9).replace(/0+$/, ""));
  });
});
