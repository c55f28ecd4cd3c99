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
