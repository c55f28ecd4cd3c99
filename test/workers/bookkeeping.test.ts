import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import {
  booked,
  chat,
  createSpendKey,
  createWallet,
  d1All,
  faultyD1,
  hooks,
  json,
  mgmt,
  settled,
  withD1,
} from "./helpers.ts";

/**
 * The one durable path from the KeyGuards to D1: each guard keeps what D1 must learn in its own storage until the
 * bookkeeping consumer confirms it, and the consumer writes many keys' messages in one D1 transaction.
 */

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
  vi.restoreAllMocks();
});

/** What D1 holds of a key: its row, and its ledger rows' count, distinct ids and cost. */
async function inD1(id: string) {
  const [row] = await d1All(`SELECT * FROM spend_keys WHERE id = '${id}'`);
  const [ledger] = await d1All(
    `SELECT count(*) AS n, count(DISTINCT request_id) AS ids, coalesce(sum(cost_nanos), 0) AS cost
     FROM requests WHERE spend_key_id = '${id}'`,
  );
  return {
    row: row as Record<string, unknown> | undefined,
    ledger: ledger as { n: number; ids: number; cost: number },
  };
}

/** Moves a guard's clock past its resend delay, so its alarm sends again what D1 never confirmed. */
async function pastResend(id: string) {
  await runInDurableObject(keyGuard(env, id), (g: KeyGuard) => {
    const base = g.now();
    g.now = () => base + 31_000 + (Date.now() - base);
  });
}

describe("a D1 outage loses nothing", () => {
  it("requests answer throughout; every 2xx change, row, counter and event is in D1 once it is back", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const wallet = await createWallet();
    const hook = await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "log", url: "https://hooks.example.test/books-outage" }),
      201,
    );
    const limit = { spend_limit: { amount: "50", cycle: "total" } };
    const keys = await Promise.all(
      ["one", "two", "three"].map((name) => createSpendKey(wallet.key, { name, ...limit })),
    );
    const ids: string[] = keys.map((k) => k.spend_key_id);
    // The catalog is cached per isolate: a first request loads it, as any running gateway has.
    for (const k of keys) expect((await chat(k.key)).status).toBe(200);
    for (const id of ids) await booked(id);

    const faulty = faultyD1(env.DB);
    restore = withD1(faulty.db);
    const answered: string[] = [];
    const traffic = async () => {
      // JSON and streamed answers, both settled by the guard while D1 is away.
      const sent = keys.flatMap((k) =>
        Array.from({ length: 8 }, (_, j) => chat(k.key, { stream: j % 2 === 1, max_tokens: 20 })),
      );
      for (const res of await Promise.all(sent)) {
        expect(res.status).toBe(200);
        await res.text();
        answered.push(res.headers.get("x-request-id") ?? "");
      }
    };

    // 1. D1 refuses everything: the gateway's hot path never notices.
    faulty.state.mode = "all";
    await traffic();

    // 2. D1 refuses writes (another process holds its write lock): management changes still land and answer 2xx.
    faulty.state.mode = "writes";
    await traffic();
    const [one, two, three] = ids as [string, string, string];
    const renamed = await mgmt(wallet.key, "PATCH", `/spend_keys/${one}`, { name: "renamed" });
    expect(renamed.status).toBe(200);
    const rotated = await json(await mgmt(wallet.key, "POST", `/spend_keys/${one}/rotate`), 200);
    expect((await mgmt(wallet.key, "PATCH", `/spend_keys/${two}`, { status: "paused" })).status).toBe(200);
    expect((await mgmt(wallet.key, "DELETE", `/spend_keys/${three}`)).status).toBe(200);
    const created = await json(await mgmt(wallet.key, "POST", "/spend_keys", { name: "made in the outage" }), 201);
    // The changes act at once: the revoked key is refused, the old secret of the rotated one too.
    expect((await chat(keys[2].key)).status).toBe(401);
    expect((await chat(keys[0].key)).status).toBe(401);
    expect((await chat(rotated.key)).status).toBe(200);
    expect((await chat(created.key)).status).toBe(200);
    for (const id of ids) await settled(id);
    // Nothing reached D1 meanwhile, though the guards tried (their alarms ran).
    for (const id of [...ids, created.spend_key_id]) await runDurableObjectAlarm(keyGuard(env, id));
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await inD1(one)).row?.name).toBe("one");
    expect((await inD1(created.spend_key_id)).row).toBeUndefined();
    expect(faulty.state.writeTransactions).toBe(0);

    // 3. D1 is back. The guards send again what was never confirmed, and everything lands, each thing once.
    faulty.state.mode = "ok";
    const all = [...ids, created.spend_key_id];
    for (const id of all) await pastResend(id);
    const states = await Promise.all(all.map((id) => booked(id, 20_000)));
    for (const [i, id] of all.entries()) {
      const state = states[i]!;
      const { row, ledger } = await inD1(id);
      // D1's copy is the guard's record…
      expect(row).toMatchObject({
        name: state.record!.name,
        status: state.record!.status,
        key_hash: state.record!.keyHash,
        revoked_at: state.record!.revokedAt,
        config_version: state.record!.configVersion,
      });
      // …every ledger row is there exactly once, and the counters equal the ledger's sums.
      expect(ledger.n).toBe(state.ledger.length);
      expect(ledger.ids).toBe(ledger.n);
      expect(row).toMatchObject({ total_spend_nanos: ledger.cost, total_requests: ledger.n });
    }
    expect((await inD1(one)).row).toMatchObject({ name: "renamed" });
    expect((await inD1(two)).row).toMatchObject({ status: "paused" });
    expect((await inD1(three)).row?.revoked_at).not.toBeNull();
    const ids1 = (await d1All(`SELECT request_id FROM requests WHERE wallet_id = '${wallet.walletId}'`)).map(
      (r) => r.request_id,
    );
    for (const requestId of answered) expect(ids1).toContain(requestId);
    // The lists show what the calls answered.
    const listed = await json(await mgmt(wallet.key, "GET", "/spend_keys?limit=100"), 200);
    expect(listed.data.map((k: { spend_key_id: string }) => k.spend_key_id).sort()).toEqual(
      [one, two, created.spend_key_id].sort(),
    );

    // Every event of every change is delivered, once.
    const want = [
      ...ids.map((id) => `${id}:spend_key.created`),
      `${one}:spend_key.updated`,
      `${one}:spend_key.rotated`,
      `${two}:spend_key.updated`,
      `${two}:spend_key.paused`,
      `${three}:spend_key.revoked`,
      `${created.spend_key_id}:spend_key.created`,
    ];
    const seen = async () => (await hooks()).filter((h) => h.url.endsWith("/books-outage") && h.status === 200);
    const deadline = Date.now() + 20_000;
    while ((await seen()).length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1_000));
    // A POST that succeeded while D1 could not record it is sent again (at least once), under the same
    // `webhook-id`, which is how a receiver drops the repeat: each event has exactly one.
    const byEvent = new Map<string, Set<string>>();
    for (const h of await seen()) {
      const e = JSON.parse(h.body) as { id: string; type: string; data: { spend_key: { spend_key_id: string } } };
      const label = `${e.data.spend_key.spend_key_id}:${e.type}`;
      byEvent.set(label, (byEvent.get(label) ?? new Set()).add(h.headers["webhook-id"] ?? ""));
    }
    expect([...byEvent.keys()].sort()).toEqual(want.sort());
    for (const [label, deliveries] of byEvent) expect(deliveries.size, label).toBe(1);
    const log = await json(await mgmt(wallet.key, "GET", `/webhooks/${hook.webhook_id}/deliveries?limit=100`), 200);
    expect(log.data).toHaveLength(want.length);
  }, 90_000);
});

describe("D1 writes are batched across keys", () => {
  it("thirty keys' bookkeeping lands in a handful of D1 transactions (at most six), not thirty", async () => {
    const wallet = await createWallet();
    const keys = await Promise.all(Array.from({ length: 30 }, () => createSpendKey(wallet.key, { name: "batched" })));
    const ids: string[] = keys.map((k) => k.spend_key_id);
    // The creates' own copies are written at once; what follows goes through the queue only.
    for (const id of ids) await booked(id);
    const faulty = faultyD1(env.DB);
    restore = withD1(faulty.db);
    await Promise.all(keys.map((k, i) => chat(k.key, { stream: i % 2 === 1 }).then((r) => r.text())));
    await Promise.all(ids.map((id) => settled(id)));
    // Every guard hands over at once (as their alarms would, within the same second).
    await Promise.all(ids.map((id) => runDurableObjectAlarm(keyGuard(env, id))));
    await Promise.all(ids.map((id) => booked(id)));
    for (const id of ids) expect((await inD1(id)).ledger.n).toBe(1);
    // One transaction per queue batch (a second's window): a handful even on a loaded machine, never one a key.
    expect(faulty.state.writeTransactions).toBeGreaterThan(0);
    expect(faulty.state.writeTransactions).toBeLessThanOrEqual(ids.length / 5);
  }, 60_000);
});
