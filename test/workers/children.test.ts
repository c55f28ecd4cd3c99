import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import type { KeyRecord } from "../../src/keys/record.ts";
import { hashSecret, issueKey } from "../../src/lib/keys.ts";
import { booked, call, chat, createSpendKey, createWallet, json, mgmt, settled } from "./helpers.ts";

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
    expect(res.headers.get("x-spendgate-limit")).toBe("carve");
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

  it("delegation bounds: null may not mint, max_children minted a cycle, depth at most 3 below a root", async () => {
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
    // a child ended this cycle still counts: its place frees with the parent's next cycle
    await json(await mgmt(p.wallet.key, "DELETE", `/spend_keys/${c1.spend_key_id}`), 200);
    const again = await json(await mint(p.key, { name: "c3", spend_limit: { amount: "0.1" } }), 409);
    expect(again.error.message).toMatch(/2 child keys this cycle/);
    const { runInDurableObject } = await import("cloudflare:test");
    await runInDurableObject(keyGuard(env, p.id), (g: KeyGuard) => {
      g.now = () => Date.now() + 86_400_000;
    });
    await json(await mint(p.key, { name: "c3", spend_limit: { amount: "0.1" } }), 201);
  });

  it("the wallet may not change a child's carve, nor a parent's cycle or its limit below carves (409)", async () => {
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

describe("child keys: the parent's admission counts its children's carves", () => {
  it("a parent's own request cannot spend what its children's carves reserve", async () => {
    const p = await root({ clamp_output: false });
    const before = await chat(p.key, { max_tokens: 5000 });
    expect(before.status).toBe(200);
    await settled(p.id);
    await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.008" } }), 201);
    // $0.003 of output no longer fits the $0.01 limit less the child's $0.008 carve and the spend so far
    const refused = await json(await chat(p.key, { max_tokens: 5000 }), 429);
    expect(refused.error.code).toBe("spend_limit_exceeded");
    expect((await chat(p.key, { max_tokens: 1000 })).status).toBe(200);
  });

  it("a child's spend reaching its carve is refused as carve_exceeded (429, or 402 for Anthropic)", async () => {
    const p = await root({ clamp_output: false });
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.001" }, clamp_output: false }), 201);
    const res = await chat(c.key, { max_tokens: 5000 });
    expect(res.headers.get("x-should-retry")).toBe("false");
    const body = await json(res, 429);
    expect(body.error).toMatchObject({ code: "carve_exceeded", type: "insufficient_quota" });
    expect(body.error.message).toContain(`carve of its parent ${p.id}`);
    expect(body.details).toMatchObject({ limit: "carve", amount: "0.001", cycle: "daily" });
    // and, as any key reaching its spend limit, it raises spend_key.limit_reached once
    expect((await keyGuard(env, c.spend_key_id).inspect()).counters.limitAlerted).toHaveLength(1);
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
    // Its own status still says active; GET /v1/key says what stops it.
    const seen = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${g.key}` } }), 200);
    expect(seen.status).toBe("active");
    expect(seen.stopped_by).toContain(`ancestor key ${p.id}`);
    // a child paused itself stays paused when the root resumes
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${c.spend_key_id}`, { status: "paused" }), 200);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { status: "active" }), 200);
    expect((await json(await chat(g.key, { max_tokens: 10 }), 403)).error.message).toContain(
      `ancestor key ${c.spend_key_id}`,
    );
    expect((await json(await chat(c.key, { max_tokens: 10 }), 403)).error.message).toMatch(/paused by its owner/);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${c.spend_key_id}`, { status: "active" }), 200);
    expect((await chat(g.key, { max_tokens: 10 })).status).toBe(200);
    const resumed = await json(await call("GET", "/v1/key", { headers: { authorization: `Bearer ${g.key}` } }), 200);
    expect(resumed.stopped_by).toBeNull();
  });

  it("an ancestor's pause stops a child's replaced secret still in its rotation grace period too", async () => {
    const p = await root();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.005" } }), 201);
    const rotate = { grace_period_seconds: 600 };
    const rotated = await json(await mgmt(p.wallet.key, "POST", `/spend_keys/${c.spend_key_id}/rotate`, rotate), 200);
    expect((await chat(c.key, { max_tokens: 10 })).status).toBe(200);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { status: "paused" }), 200);
    // The pause ends the grace (as the child's own would): the replaced secret is no longer the key's at all.
    expect((await json(await chat(c.key, { max_tokens: 10 }), 401)).error.code).toBe("invalid_api_key");
    const current = await json(await chat(rotated.key, { max_tokens: 10 }), 403);
    expect(current.error.message).toContain(`ancestor key ${p.id}`);
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

// ---- the property: random trees, concurrent requests everywhere, revokes mid-flight, cycles rolling over ----

interface Node {
  id: string;
  key: string;
  parent: number | null;
  depth: number;
  limitNanos: number;
}

const DAY = 86_400_000;

describe("child keys: a subtree never spends past its key's limit, and returns balance to the ledger", () => {
  it("holds over random trees, bursts at every node, revokes mid-flight, cycles rolling (property)", async () => {
    const { runDurableObjectAlarm, runInDurableObject } = await import("cloudflare:test");
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3_000_000, max: 8_000_000 }),
        fc.array(fc.record({ parent: fc.nat(), share: fc.integer({ min: 5, max: 45 }) }), {
          minLength: 2,
          maxLength: 6,
        }),
        fc.array(
          fc.record({
            burst: fc.integer({ min: 2, max: 4 }),
            tokens: fc.array(fc.integer({ min: 300, max: 3000 }), { minLength: 4, maxLength: 4 }),
            revoke: fc.option(fc.nat(), { nil: null }),
            rollOver: fc.boolean(),
          }),
          { minLength: 2, maxLength: 3 },
        ),
        async (rootLimit, mints, rounds) => {
          let now = Date.UTC(2031, 4, 6, 12);
          const wallet = await createWallet();
          const rootKey = await createSpendKey(wallet.key, {
            spend_limit: { amount: (rootLimit / 1e9).toFixed(9), cycle: "daily" },
            delegation: { max_depth: 3, max_children: 3 },
          });
          const nodes: Node[] = [
            { id: rootKey.spend_key_id, key: rootKey.key, parent: null, depth: 0, limitNanos: rootLimit },
          ];
          const setClock = (n: Node) =>
            runInDurableObject(keyGuard(env, n.id), (g: KeyGuard) => {
              g.now = () => now;
            });
          await setClock(nodes[0]!);
          for (const m of mints) {
            const candidates = nodes.filter((n) => n.depth < 3);
            const parent = candidates[m.parent % candidates.length]!;
            const carve = Math.floor((parent.limitNanos * m.share) / 100);
            const depth = parent.depth + 1;
            const res = await mint(parent.key, {
              name: `n${nodes.length}`,
              spend_limit: { amount: (carve / 1e9).toFixed(9) },
              ...(depth < 3 ? { delegation: { max_depth: 3 - depth, max_children: 3 } } : {}),
            });
            // What does not fit (the parent's other carves took it) is refused, and nothing is minted.
            if (res.status === 409) continue;
            const child = await json(res, 201);
            const node = {
              id: child.spend_key_id,
              key: child.key,
              parent: nodes.indexOf(parent),
              depth,
              limitNanos: carve,
            };
            nodes.push(node);
            await setClock(node);
          }
          const rows = new Map<string, { key: string; cost: number; at: number }>();
          const collect = async () => {
            for (const n of nodes) {
              for (const r of (await settled(n.id)).ledger) {
                rows.set(r.requestId, { key: n.id, cost: r.costNanos, at: r.createdAt as number });
              }
            }
          };
          const subtree = (i: number): number[] => [i, ...nodes.flatMap((n, j) => (n.parent === i ? subtree(j) : []))];
          const spentIn = (i: number, period: number) => {
            const ids = new Set(subtree(i).map((j) => nodes[j]!.id));
            let total = 0;
            for (const r of rows.values()) if (ids.has(r.key) && r.at - (r.at % DAY) === period) total += r.cost;
            return total;
          };
          const revoked = new Set<number>();
          for (const round of rounds) {
            const victim = round.revoke === null || nodes.length < 2 ? null : 1 + (round.revoke % (nodes.length - 1));
            // Every node sends a burst at once, mostly billed at its worst case (the fake provider's [[fault:worst]]).
            const work: Promise<unknown>[] = nodes.flatMap((n, i) =>
              Array.from({ length: round.burst }, async (_, j) => {
                const worst = (i + j) % 3 !== 0;
                const content = worst ? "[[fault:worst]] go" : "Say hello";
                const max_tokens = round.tokens[(i + j) % 4];
                const res = await chat(n.key, { max_tokens, messages: [{ role: "user", content }] });
                statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
                await res.arrayBuffer();
              }),
            );
            if (victim !== null) {
              work.splice(
                Math.floor(work.length / 2),
                0,
                mgmt(wallet.key, "DELETE", `/spend_keys/${nodes[victim]!.id}`),
              );
              for (const j of subtree(victim)) revoked.add(j);
            }
            await Promise.all(work);
            // Everything settles: holds closed, every ended key's report acknowledged by its parent.
            await collect();
            for (let pass = 0; pass < 5; pass++) {
              for (const n of nodes) await runDurableObjectAlarm(keyGuard(env, n.id));
            }
            await collect();
            const period = now - (now % DAY);
            for (const [i, n] of nodes.entries()) {
              // No key's subtree ever spent past its limit, in any cycle seen so far.
              const periods = new Set([...rows.values()].map((r) => r.at - (r.at % DAY)));
              for (const p of periods) expect(spentIn(i, p), `${n.id} in ${p}`).toBeLessThanOrEqual(n.limitNanos);
              const guard = keyGuard(env, n.id);
              const family = await guard.familyState();
              if (n.parent !== null && revoked.has(i)) expect(family.report?.acked, `${n.id} report acked`).toBe(true);
              // own spend, live carves and returned amounts balance exactly to the ledger
              const own = new Set([n.id]);
              let ownSpend = 0;
              for (const r of rows.values()) if (own.has(r.key) && r.at - (r.at % DAY) === period) ownSpend += r.cost;
              expect((await guard.snapshot()).currentSpendNanos, `${n.id} own spend`).toBe(ownSpend);
              let expected = 0;
              for (const [j, c] of nodes.entries()) {
                if (c.parent !== i) continue;
                const ret = family.returned[c.id];
                if (family.live[c.id] !== undefined) {
                  expect(family.live[c.id]).toBe(c.limitNanos);
                  expect(revoked.has(j)).toBe(false);
                  expected += c.limitNanos;
                } else if (ret && ret.period === period) {
                  expect(ret, `${c.id} returned`).toMatchObject({ amount: spentIn(j, period), final: true });
                  expected += ret.amount;
                } else {
                  expect(revoked.has(j), `${c.id} neither live nor returned`).toBe(true);
                }
              }
              expect(family.carvedNanos, `${n.id} carved`).toBe(expected);
            }
            if (round.rollOver) {
              now += DAY;
              for (const n of nodes) await setClock(n);
            }
          }
        },
      ),
      { numRuns: 10 },
    );
    // The runs reached the limits: some requests were refused by a spend limit or a carve, most were served.
    console.log("statuses", JSON.stringify([...statuses]));
    expect(statuses.get(429) ?? 0).toBeGreaterThan(0);
  });
});

describe("child keys: expiry returns the carve", () => {
  it("a child past its expiry returns its carve from its alarm, its spend still counted", async () => {
    const { runDurableObjectAlarm, runInDurableObject } = await import("cloudflare:test");
    const p = await root();
    const expires_at = new Date(Date.now() + 3_600_000).toISOString();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.005" }, expires_at }), 201);
    expect((await chat(c.key, { max_tokens: 50 })).status).toBe(200);
    const spent = (await settled(c.spend_key_id)).counters.currentSpendNanos;
    expect((await keyGuard(env, p.id).familyState()).carvedNanos).toBe(5_000_000);
    await runInDurableObject(keyGuard(env, c.spend_key_id), (g: KeyGuard) => {
      g.now = () => Date.now() + 3_700_000;
    });
    await runDurableObjectAlarm(keyGuard(env, c.spend_key_id));
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({});
    expect(family.returned[c.spend_key_id]).toMatchObject({ amount: spent, final: true });
    expect(family.carvedNanos).toBe(spent);
  });
});

describe("child keys: a mint interrupted between the parent's reservation and the child's creation", () => {
  /** The two steps of the mint route, run by hand: the parent's reservation, then (maybe) the child's creation. */
  async function reserve(p: { id: string; key: string }) {
    const issued = issueKey("spend");
    const minted = await keyGuard(env, p.id).mintChild(await hashSecret(p.key), {
      childId: issued.id,
      fields: {},
      carveNanos: 2_000_000,
      cycle: null,
    });
    if (!minted.ok) throw new Error("not minted");
    const now = Date.now();
    const record: KeyRecord = {
      ...(await keyGuard(env, p.id).inspect()).record!,
      ...minted.fields,
      id: issued.id,
      name: "child",
      keyHash: await hashSecret(issued.key),
      keyPreview: "sk-sg-…",
      createdAt: now,
      updatedAt: now,
      configVersion: 1,
      parentKeyId: p.id,
    };
    return { issued, record, family: minted.family };
  }

  it("a Worker lost mid-mint: the parent's alarm seals the child's guard, takes the carve back", async () => {
    const { runDurableObjectAlarm, runInDurableObject } = await import("cloudflare:test");
    const p = await root();
    const { record, family } = await reserve(p);
    expect((await keyGuard(env, p.id).familyState()).carvedNanos).toBe(2_000_000);
    await runInDurableObject(keyGuard(env, p.id), (g: KeyGuard) => {
      g.now = () => Date.now() + 61_000;
    });
    await runDurableObjectAlarm(keyGuard(env, p.id));
    const after = await keyGuard(env, p.id).familyState();
    expect(after.live).toEqual({});
    expect(after.carvedNanos).toBe(0);
    // a create arriving after that fails: no child exists without its reservation
    expect(await keyGuard(env, record.id).create(record, family)).toBeNull();
  });

  it("a pause pushed between the reservation and the creation still stops the child", async () => {
    const p = await root();
    const { issued, record, family } = await reserve(p);
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { status: "paused" }), 200);
    expect(await keyGuard(env, record.id).create(record, family)).not.toBeNull();
    const refused = await json(await chat(issued.key, { max_tokens: 10 }), 403);
    expect(refused.error.message).toContain(`ancestor key ${p.id} is paused`);
  });
});

describe("child keys through the @lavapayments/nodejs SDK", () => {
  it("lists, retrieves and updates a child key with its new fields (the SDK's calls unchanged)", async () => {
    const { Lava } = await import("@lavapayments/nodejs");
    const p = await root();
    const child = await json(await mint(p.key, { name: "sub", spend_limit: { amount: "0.004" } }), 201);
    await booked(p.id);
    // The SDK calls the global fetch: route it to the Worker, as a client over HTTP would reach it.
    const realFetch = globalThis.fetch;
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
      exports.default.fetch(new Request(input, init))) as typeof fetch;
    try {
      const lava = new Lava(p.wallet.key, { baseUrl: "http://gateway.test/v1/" });
      const list = await lava.spendKeys.list({ limit: 10 });
      const listed = list.data.find((k) => k.spend_key_id === child.spend_key_id) as unknown as Record<string, unknown>;
      expect(listed).toMatchObject({
        parent_key_id: p.id,
        delegation: null,
        spend_limit: { amount: "0.004", cycle: "daily" },
      });
      const parent = list.data.find((k) => k.spend_key_id === p.id) as unknown as Record<string, unknown>;
      // lists read D1, where the parent's carved_spend arrives with its bookkeeping
      expect(parent).toMatchObject({
        parent_key_id: null,
        delegation: { max_depth: 3, max_children: 5 },
        carved_spend: "0.004",
      });
      const got = (await lava.spendKeys.retrieve(child.spend_key_id)) as unknown as Record<string, unknown>;
      expect(got).toMatchObject({ parent_key_id: p.id, carved_spend: "0.00" });
      const updated = (await lava.spendKeys.update(child.spend_key_id, {
        name: "renamed",
        status: "paused",
      })) as unknown as Record<string, unknown>;
      expect(updated).toMatchObject({ name: "renamed", status: "paused", parent_key_id: p.id });
      await expect(
        lava.spendKeys.update(child.spend_key_id, { spend_limit: { amount: "0.005", cycle: "daily" } }),
      ).rejects.toThrow(/409.*carve/);
      const parentView = (await lava.spendKeys.retrieve(p.id)) as unknown as Record<string, unknown>;
      expect(parentView.carved_spend).toBe("0.004");
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});

describe("child keys: a child whose time ends has ended for good", () => {
  it("an expired child is revoked as of its expiry: extending it revives nothing, its carve stays back", async () => {
    const { runDurableObjectAlarm, runInDurableObject } = await import("cloudflare:test");
    const p = await root();
    const expiresAt = Date.now() + 3_600_000;
    const expires_at = new Date(expiresAt).toISOString();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.005" }, expires_at }), 201);
    expect((await chat(c.key, { max_tokens: 50 })).status).toBe(200);
    const spent = (await settled(c.spend_key_id)).counters.currentSpendNanos;
    await runInDurableObject(keyGuard(env, c.spend_key_id), (g: KeyGuard) => {
      g.now = () => expiresAt + 100_000;
    });
    await runDurableObjectAlarm(keyGuard(env, c.spend_key_id));
    const later = new Date(expiresAt + 86_400_000).toISOString();
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${c.spend_key_id}`, { expires_at: later }), 404);
    await json(await mgmt(p.wallet.key, "GET", `/spend_keys/${c.spend_key_id}`), 404);
    const refused = await json(await chat(c.key, { max_tokens: 10 }), 401);
    expect(refused.error.code).toBe("key_expired");
    const record = (await keyGuard(env, c.spend_key_id).inspect()).record;
    expect(record?.revokedAt).toBe(expiresAt);
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({});
    expect(family.carvedNanos).toBe(spent);
  });

  it("an ancestor's expiry passed, then cleared: its descendants stay ended (revoked), the root lives on", async () => {
    const { runInDurableObject } = await import("cloudflare:test");
    const p = await root();
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.005" } }), 201);
    const soon = Date.now() + 60_000;
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { expires_at: new Date(soon).toISOString() }));
    await runInDurableObject(keyGuard(env, c.spend_key_id), (g: KeyGuard) => {
      g.now = () => soon + 60_000;
    });
    expect((await json(await chat(c.key, { max_tokens: 10 }), 401)).error.code).toBe("key_expired");
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { expires_at: null }), 200);
    expect((await chat(p.key, { max_tokens: 10 })).status).toBe(200);
    const still = await json(await chat(c.key, { max_tokens: 10 }), 401);
    expect(still.error.message).toContain(`ancestor key ${p.id}`);
    await json(await mgmt(p.wallet.key, "GET", `/spend_keys/${c.spend_key_id}`), 404);
    expect((await keyGuard(env, c.spend_key_id).inspect()).record?.revokedAt).toBe(soon);
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({});
    expect(family.carvedNanos).toBe(0);
  });
});

describe("child keys: a create that throws after committing", () => {
  it("keeps the parent's reservation for the child that exists; a create that made nothing gives it back", async () => {
    const { createChild } = await import("../../src/management/children.ts");
    const p = await root();
    const parent = keyGuard(env, p.id);
    const issued = issueKey("spend");
    const minted = await parent.mintChild(await hashSecret(p.key), {
      childId: issued.id,
      fields: {},
      carveNanos: 2_000_000,
      cycle: null,
    });
    if (!minted.ok) throw new Error("not minted");
    const record: KeyRecord = {
      ...(await parent.inspect()).record!,
      ...minted.fields,
      id: issued.id,
      keyHash: await hashSecret(issued.key),
      configVersion: 1,
      parentKeyId: p.id,
    };
    const real = keyGuard(env, issued.id);
    // The child's create commits, then its answer is lost on the way back.
    const lost = {
      create: async (r: KeyRecord, f: Parameters<typeof real.create>[1]) => {
        await real.create(r, f);
        throw new Error("connection lost");
      },
      read: (walletId: string) => real.read(walletId),
      sealIfUncreated: () => real.sealIfUncreated(),
    } as unknown as typeof real;
    const created = await createChild(parent, lost, record, minted.family);
    expect(created?.record.id).toBe(issued.id);
    expect((await parent.familyState()).live).toEqual({ [issued.id]: 2_000_000 });
    expect((await chat(issued.key, { max_tokens: 10 })).status).toBe(200);

    const other = issueKey("spend");
    const again = await parent.mintChild(await hashSecret(p.key), {
      childId: other.id,
      fields: {},
      carveNanos: 1_000_000,
      cycle: null,
    });
    if (!again.ok) throw new Error("not minted");
    const failing = { ...lost, create: async () => Promise.reject(new Error("never reached")) } as typeof real;
    const none = keyGuard(env, other.id);
    const sealing = Object.assign(failing, { sealIfUncreated: () => none.sealIfUncreated() });
    expect(await createChild(parent, sealing, { ...record, id: other.id }, again.family)).toBeNull();
    expect((await parent.familyState()).live).toEqual({ [issued.id]: 2_000_000 });
    expect(await none.create({ ...record, id: other.id }, again.family)).toBeNull();
  });
});

describe("child keys: mint refusals", () => {
  it("speak the parent's dialect, name the limit, and tell a revoked or expired parent so", async () => {
    const a = await root({ request_shape: "anthropic", delegation: { max_depth: 1, max_children: 1 } });
    const looser = await mint(a.key, { name: "c3", spend_limit: { amount: "0.001" }, request_shape: "openai" });
    expect((await json(looser, 400)).type).toBe("error");
    expect(looser.headers.get("x-spendgate-limit")).toBe("parent");
    await json(await mint(a.key, { name: "c1", spend_limit: { amount: "0.001" } }), 201);
    const full = await mint(a.key, { name: "c2", spend_limit: { amount: "0.001" } });
    expect(full.headers.get("x-spendgate-limit")).toBe("carve");
    expect(full.headers.get("request-id")).not.toBeNull();
    expect((await json(full, 409)).error).toMatchObject({ type: "billing_error", code: "carve_exceeded" });
    await json(await mgmt(a.wallet.key, "PATCH", `/spend_keys/${a.id}`, { status: "paused" }), 200);
    const paused = await mint(a.key, { name: "c4", spend_limit: { amount: "0.001" } });
    expect((await json(paused, 403)).error).toMatchObject({ type: "permission_error", code: "key_paused" });
    expect(paused.headers.get("x-spendgate-limit")).toBe("paused");

    const wallet = await createWallet();
    const plain = await createSpendKey(wallet.key, { spend_limit: { amount: "1.00", cycle: "daily" } });
    const none = await mint(plain.key, { name: "x", spend_limit: { amount: "0.1" } });
    expect((await json(none, 403)).error.code).toBe("forbidden");
    expect(none.headers.get("x-spendgate-limit")).toBe("delegation");

    const r = await root();
    const c = await json(await mint(r.key, { name: "c", delegation: { max_depth: 1, max_children: 1 } }), 400);
    expect(c.error.param).toBe("spend_limit");
    const child = await json(
      await mint(r.key, { name: "c", spend_limit: { amount: "0.005" }, delegation: { max_depth: 1, max_children: 1 } }),
      201,
    );
    await json(await mgmt(r.wallet.key, "DELETE", `/spend_keys/${r.id}`), 200);
    for (const [key, message] of [
      [r.key, /revoked by its owner/],
      [child.key, new RegExp(`ancestor key ${r.id}`)],
    ] as const) {
      const revoked = await mint(key, { name: "g", spend_limit: { amount: "0.001" } });
      expect((await json(revoked, 401)).error).toMatchObject({
        code: "key_revoked",
        message: expect.stringMatching(message),
      });
      expect(revoked.headers.get("x-spendgate-limit")).toBe("revoked");
    }
    const wrong = await mint(`${r.key.slice(0, -4)}AAAA`, { name: "g", spend_limit: { amount: "0.001" } });
    expect((await json(wrong, 401)).error.code).toBe("invalid_api_key");
    expect(wrong.headers.get("x-spendgate-limit")).toBe("key");
  });
});

describe("child keys: max_children bounds the children minted in a cycle, not only the live ones", () => {
  it("short-lived children cannot be minted without end: ended ones count until the cycle ends", async () => {
    const { runDurableObjectAlarm, runInDurableObject } = await import("cloudflare:test");
    const p = await root({ delegation: { max_depth: 1, max_children: 3 } });
    const expiresAt = Date.now() + 1_000;
    const minted: string[] = [];
    for (const name of ["a", "b", "c"]) {
      const body = { name, spend_limit: { amount: "0.000000001" }, expires_at: new Date(expiresAt).toISOString() };
      minted.push((await json(await mint(p.key, body), 201)).spend_key_id);
    }
    for (const id of minted) {
      await runInDurableObject(keyGuard(env, id), (g: KeyGuard) => {
        g.now = () => expiresAt + 1;
      });
      await runDurableObjectAlarm(keyGuard(env, id));
    }
    const family = await keyGuard(env, p.id).familyState();
    expect(family.live).toEqual({});
    expect(Object.keys(family.returned)).toHaveLength(3);
    const refused = await mint(p.key, { name: "d", spend_limit: { amount: "0.000000001" } });
    expect((await json(refused, 409)).error.code).toBe("carve_exceeded");
    expect(Object.keys((await keyGuard(env, p.id).familyState()).returned)).toHaveLength(3);
  });
});

describe("child keys: a tightened delegation reaches the whole subtree", () => {
  it("an ancestor's delegation made null or smaller bounds what its descendants may still mint", async () => {
    const p = await root({ spend_limit: { amount: "1.00", cycle: "daily" } });
    const deep = { delegation: { max_depth: 2, max_children: 5 } };
    const c = await json(await mint(p.key, { name: "c", spend_limit: { amount: "0.5" }, ...deep }), 201);
    const small = { delegation: { max_depth: 3, max_children: 1 } };
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, small), 200);
    await json(await mint(c.key, { name: "g1", spend_limit: { amount: "0.01" } }), 201);
    const second = await json(await mint(c.key, { name: "g2", spend_limit: { amount: "0.01" } }), 409);
    expect(second.error.message).toMatch(/at most 1/);
    const shallow = { delegation: { max_depth: 1, max_children: 5 } };
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, shallow), 200);
    const tooDeep = await mint(c.key, { name: "g3", spend_limit: { amount: "0.01" } });
    expect((await json(tooDeep, 403)).error.message).toContain(`ancestor key ${p.id}`);
    expect(tooDeep.headers.get("x-spendgate-limit")).toBe("delegation");
    await json(await mgmt(p.wallet.key, "PATCH", `/spend_keys/${p.id}`, { delegation: null }), 200);
    expect((await json(await mint(c.key, { name: "g4", spend_limit: { amount: "0.01" } }), 403)).error.code).toBe(
      "forbidden",
    );
  });
});

describe("child keys: spend refusals name the output the request asked", () => {
  it("a request for 100 output tokens is not told that even 1024 do not fit (carve and run spend)", async () => {
    const p = await root();
    const tiny = { amount: "0.000000001" };
    const c = await json(await mint(p.key, { name: "c", spend_limit: tiny }), 201);
    const carve = await json(await chat(c.key, { max_tokens: 100 }), 429);
    expect(carve.error.code).toBe("carve_exceeded");
    expect(carve.error.message).toContain("Even 100 output tokens do not fit");
    const r = await json(
      await mint(p.key, { name: "r", spend_limit: { amount: "0.005" }, run_limit: { spend: "0.000000001" } }),
      201,
    );
    const run = await json(await chat(r.key, { max_tokens: 100 }, { "x-spendgate-run": "task-1" }), 429);
    expect(run.error.code).toBe("run_spend_limit_exceeded");
    expect(run.error.message).toContain("Even 100 output tokens do not fit");
  });
});
