import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { writeToD1 } from "../../src/bookkeeping/write.ts";
import type { BooksMessage } from "../../src/guard/books.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import type { Counters, GuardState } from "../../src/guard/types.ts";
import type { KeyRecord } from "../../src/keys/record.ts";
import { booked, call, chat, createSpendKey, createWallet, d1All, mgmt, withD1 } from "./helpers.ts";

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

/**
 * D1 learns a key's record two ways — the Worker's direct copy after each change (`copyToD1`) and the guard's
 * bookkeeping message through the queue (`writeToD1`) — and counters the second way only. Whichever of two writes
 * lands last, D1 must end with the newer: a record only over an older `config_version`, counters only over an
 * older snapshot version.
 */
describe("D1's two writes of a key changed twice land in either order", () => {
  /** D1's row of the key: the record's fields these tests change, and its counter snapshot. */
  const d1Row = async (id: string) => {
    const row = await env.DB.prepare(
      "SELECT config_version, name, rate_limit_rpm, current_spend_nanos, total_spend_nanos, current_requests, " +
        "total_requests, last_used_at, snapshot_at FROM spend_keys WHERE id = ?",
    )
      .bind(id)
      .first();
    expect(row, `D1 has no row for ${id}`).not.toBeNull();
    return row!;
  };
  /** What D1's row must read once it holds `state` (the guard's record and counters at one moment). */
  const rowOf = (state: GuardState) => ({
    config_version: state.record!.configVersion,
    name: state.record!.name,
    rate_limit_rpm: state.record!.rateLimitRpm,
    current_spend_nanos: state.counters.currentSpendNanos,
    total_spend_nanos: state.counters.totalSpendNanos,
    current_requests: state.counters.currentRequests,
    total_requests: state.counters.totalRequests,
    last_used_at: state.counters.lastUsedAt,
    snapshot_at: state.counters.version,
  });
  /** The bookkeeping message a guard hands to the queue: its record and counters (no rows, no events). */
  const messageOf = (record: KeyRecord, counters: Counters | null): BooksMessage => ({
    v: 1,
    keyId: record.id,
    walletId: record.walletId,
    rows: "[]",
    rowIds: "[]",
    record,
    counters,
    events: [],
  });
  const messageAt = (state: GuardState) => messageOf(state.record!, state.counters);

  /**
   * A key used once, then changed twice with a request after each change, every step booked to D1: the guard's
   * state after each (the "before", version n and version n+1).
   */
  async function changedTwice() {
    const wallet = await createWallet();
    const created = await createSpendKey(wallet.key, { name: "before" });
    const id: string = created.spend_key_id;
    const use = async () => expect((await chat(created.key)).status).toBe(200);
    const change = async (body: Record<string, unknown>) =>
      expect((await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, body)).status).toBe(200);
    await use();
    const before = await booked(id);
    await change({ name: "version n", rate_limit: { rpm: 10 } });
    await use();
    const n = await booked(id);
    await change({ name: "version n+1", rate_limit: { rpm: 20 } });
    await use();
    const n1 = await booked(id);
    expect(n1.record!.configVersion).toBe(n.record!.configVersion + 1);
    expect(n1.counters.version).toBeGreaterThan(n.counters.version);
    return { wallet, id, before, n, n1 };
  }

  it("the queue's messages of versions n and n+1: D1 ends at n+1, record and counters, in either order", async () => {
    const { id, before, n, n1 } = await changedTwice();
    const orders: [string, BooksMessage[][]][] = [
      ["n, then n+1", [[messageAt(n)], [messageAt(n1)]]],
      ["n+1, then n", [[messageAt(n1)], [messageAt(n)]]],
      ["both in one batch, n first", [[messageAt(n), messageAt(n1)]]],
      ["both in one batch, n+1 first", [[messageAt(n1), messageAt(n)]]],
    ];
    for (const [order, writes] of orders) {
      // Wind D1 back to the key before both changes: versions zeroed so the "before" message lands over them.
      await env.DB.prepare("UPDATE spend_keys SET config_version = 0, snapshot_at = 0 WHERE id = ?").bind(id).run();
      await writeToD1(env.DB, [messageAt(before)], Date.now());
      expect(await d1Row(id), `${order}: wound back`).toEqual(rowOf(before));
      // D1's two writes, in this order, each its own transaction (or one batch).
      for (const messages of writes) await writeToD1(env.DB, messages, Date.now());
      expect(await d1Row(id), order).toEqual(rowOf(n1));
    }
  });

  /**
   * The real D1, except that the Worker's direct copies of a spend key (drizzle's `update "spend_keys"`) follow
   * `plan`, one entry per copy: "hold" waits until `release()`, "fail" throws as a D1 outage would, "pass" runs.
   * Every other statement (the bookkeeping consumer's included) goes straight through.
   */
  function copiesD1(plan: ("hold" | "fail" | "pass")[]) {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const held = new Promise<void>((resolve) => (reached = resolve));
    const real = env.DB;
    const db = new Proxy(real, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "prepare") return typeof value === "function" ? value.bind(target) : value;
        return (sql: string) => {
          const stmt = target.prepare(sql);
          if (!/^update "spend_keys"/i.test(sql)) return stmt;
          return {
            bind: (...args: unknown[]) => ({
              run: async () => {
                const step = plan.shift() ?? "pass";
                if (step === "fail") throw new Error("D1_ERROR: injected");
                if (step === "hold") {
                  reached();
                  await released;
                }
                return stmt.bind(...args).run();
              },
            }),
          };
        };
      },
    });
    return { db, held, release };
  }

  it("the Worker's direct copies: n's landing after n+1's (copy or queue) leaves D1 at n+1", async () => {
    const wallet = await createWallet();
    for (const order of ["in order", "n's copy after n+1's copy", "n's copy after n+1's queue message"] as const) {
      const created = await createSpendKey(wallet.key, { name: "before" });
      const id: string = created.spend_key_id;
      await booked(id);
      const patch = (name: string, rpm: number) =>
        mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { name, rate_limit: { rpm } });
      const gate = copiesD1(
        order === "in order" ? [] : order === "n's copy after n+1's copy" ? ["hold", "pass"] : ["hold", "fail"],
      );
      const restore = withD1(gate.db);
      try {
        if (order === "in order") {
          expect((await patch("version n", 10)).status).toBe(200);
          expect((await patch("version n+1", 20)).status).toBe(200);
        } else {
          // Change n is applied by the guard; its copy to D1 is held back on its way.
          const first = patch("version n", 10);
          await gate.held;
          const n = (await keyGuard(env, id).inspect()).record!;
          // Change n+1 answers; D1 gets it by its own copy, or (that copy failing) by the guard's queue message.
          expect((await patch("version n+1", 20)).status).toBe(200);
          if (order === "n's copy after n+1's queue message") await booked(id);
          expect((await d1Row(id)).config_version, order).toBe(n.configVersion + 1);
          // Now n's copy lands, last.
          gate.release();
          expect((await first).status).toBe(200);
          // And a queue message of n arriving later still is refused too.
          await writeToD1(env.DB, [messageOf(n, null)], Date.now());
        }
      } finally {
        restore();
      }
      const guard = (await keyGuard(env, id).inspect()).record!;
      expect(guard.name, order).toBe("version n+1");
      expect(await d1Row(id), order).toMatchObject({
        config_version: guard.configVersion,
        name: "version n+1",
        rate_limit_rpm: 20,
      });
    }
  });
});
