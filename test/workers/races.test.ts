import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { call, createSpendKey, createWallet, d1All, mgmt } from "./helpers.ts";

/**
 * Management writes racing each other. Every pair is sent at the same moment, in both orders, many rounds;
 * whatever interleaving the runtime picks, the promises below must hold.
 */
type Op = "revoke" | "rotate" | "rename" | "pause" | "rate" | "limit";

const send = (walletKey: string, id: string, op: Op) => {
  switch (op) {
    case "revoke":
      return mgmt(walletKey, "DELETE", `/spend_keys/${id}`);
    case "rotate":
      return mgmt(walletKey, "POST", `/spend_keys/${id}/rotate`);
    case "rename":
      return mgmt(walletKey, "PATCH", `/spend_keys/${id}`, { name: "renamed" });
    case "pause":
      return mgmt(walletKey, "PATCH", `/spend_keys/${id}`, { status: "paused" });
    case "rate":
      return mgmt(walletKey, "PUT", `/spend_keys/${id}`, { rate_limit: { rpm: 77 } });
    case "limit":
      return mgmt(walletKey, "PUT", `/spend_keys/${id}`, { spend_limit: { amount: "3", cycle: "daily" } });
  }
};

const keyWorks = async (key: string) =>
  (await call("GET", "/v1/key", { headers: { authorization: `Bearer ${key}` } })).status;

const PAIRS: [Op, Op][] = [
  ["revoke", "rename"],
  ["revoke", "rate"],
  ["rotate", "rename"],
  ["rotate", "limit"],
  ["revoke", "rotate"],
  ["pause", "rate"],
  ["pause", "rename"],
];
const ROUNDS = 16; // × 7 pairs × 2 orders = 224 rounds

describe("racing management writes", () => {
  it("revoke is final, a 200 rotate's key works, different fields both apply; guard, D1 and GET agree", async () => {
    const wallet = await createWallet();
    for (const [a, b] of PAIRS) {
      for (let round = 0; round < ROUNDS * 2; round++) {
        const [first, second] = round % 2 ? [b, a] : [a, b];
        const created = await createSpendKey(wallet.key, { name: "race" });
        const id: string = created.spend_key_id;
        const responses = await Promise.all([send(wallet.key, id, first), send(wallet.key, id, second)]);
        const answers = new Map<Op, { status: number; body: any }>();
        for (const [i, res] of responses.entries())
          answers.set([first, second][i]!, { status: res.status, body: await res.json() });
        const ctx = `${first} ‖ ${second}, round ${round}`;

        const revoked = answers.get("revoke")?.status === 200;
        const rotated = answers.get("rotate")?.status === 200 ? (answers.get("rotate")!.body.key as string) : null;
        const get = await mgmt(wallet.key, "GET", `/spend_keys/${id}`);
        const [row] = await d1All(`SELECT * FROM spend_keys WHERE id = '${id}'`);
        const record = (await keyGuard(env, id).inspect()).record!;

        // The guard and D1 hold the same record.
        expect(row!.key_hash, ctx).toBe(record.keyHash);
        expect(row!.revoked_at, ctx).toBe(record.revokedAt);
        expect(row!.updated_at, ctx).toBe(record.updatedAt);
        expect(row!.config_version, ctx).toBe(record.configVersion);
        // Created at version 1, then exactly one version per write that applied.
        const applied = [...answers.values()].filter((a) => a.status === 200).length;
        expect(record.configVersion, ctx).toBe(1 + applied);
        expect(row!.name, ctx).toBe(record.name);
        expect(row!.status, ctx).toBe(record.status);
        expect(row!.rate_limit_rpm, ctx).toBe(record.rateLimitRpm);

        if (revoked) {
          // Revoked is terminal: no key works, the id is gone from reads and lists, and stays gone.
          expect(await keyWorks(created.key), ctx).toBe(401);
          if (rotated) expect(await keyWorks(rotated), ctx).toBe(401);
          expect(get.status, ctx).toBe(404);
          expect(record.revokedAt, ctx).not.toBeNull();
          const list = (await (await mgmt(wallet.key, "GET", "/spend_keys?limit=100")).json()) as {
            data: { spend_key_id: string }[];
          };
          expect(
            list.data.some((k) => k.spend_key_id === id),
            ctx,
          ).toBe(false);
          // A write after the revoke cannot bring it back.
          expect((await send(wallet.key, id, "rename")).status, ctx).toBe(404);
          expect(await keyWorks(created.key), ctx).toBe(401);
          continue;
        }
        // Without a successful revoke, every write answered 200 and applied.
        for (const [op, answer] of answers) expect(answer.status, `${ctx}: ${op}`).toBe(200);
        const view = (await get.json()) as any;
        expect(get.status, ctx).toBe(200);
        expect(view.updated_at, ctx).toBe(new Date(record.updatedAt).toISOString());
        if (rotated) {
          expect(await keyWorks(rotated), ctx).toBe(answers.has("pause") ? 403 : 200);
          expect(await keyWorks(created.key), ctx).toBe(401);
        }
        if (answers.has("rename")) expect(view.name, ctx).toBe("renamed");
        if (answers.has("pause")) expect(view.status, ctx).toBe("paused");
        if (answers.has("rate")) expect(view.rate_limit, ctx).toEqual({ rpm: 77, burst: 77 });
        if (answers.has("limit")) expect(view.spend_limit, ctx).toEqual({ amount: "3.00", cycle: "daily" });
      }
    }
  }, 120_000);
});
