import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { convertV4MiniflareOptions, Miniflare, type V4MiniflareOptions } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";
import { startFakeProvider } from "../../scripts/fake-provider/server.ts";
import { buildBundle } from "../../scripts/lib/bench-kit.ts";
import { fakeProviderVars, freePort, ROOT } from "../../scripts/lib/stack.ts";
import { checkoutRevision, removeCheckout } from "../../scripts/lib/worktree.ts";

/**
 * Upgrades (docs/deploy.md, "Upgrading"): the deploy applies the new migrations before the new code goes live, and a
 * rollback returns to the old code on the new schema — so the PREVIOUS release must serve correctly against THIS
 * checkout's schema. Here the last release before this phase, built from git as `wrangler deploy` bundles it and
 * served by Miniflare with the bindings of its own wrangler.toml, runs on a D1 database migrated with every
 * migration of this checkout (the `usage_daily` rollup trigger included), and must do its whole job.
 */
const PREVIOUS = "760e1c6";
const ADMIN = "upgrade-admin-token";

let work = "";
let source = "";
let mf: Miniflare | undefined;
let fake: Awaited<ReturnType<typeof startFakeProvider>> | undefined;
let origin = "";
/** The D1 binding as Miniflare hands it to Node. */
type D1 = Awaited<ReturnType<Miniflare["getD1Database"]>>;
let db: D1;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "spendgate-upgrade-"));
  source = checkoutRevision(PREVIOUS, join(work, "previous")).source;
  const bundle = buildBundle(join(work, "dist"), source).file;
  fake = await startFakeProvider(0);
  const port = await freePort();
  mf = await serve(source, bundle, port, {
    ...fakeProviderVars(fake.url),
    ADMIN_TOKEN: ADMIN,
    SPENDGATE_ENV: "development",
  });
  origin = `http://127.0.0.1:${port}`;
  db = await mf.getD1Database("DB");
  await migrate(db, join(ROOT, "migrations"));
}, 120_000);

afterAll(async () => {
  await mf?.dispose();
  await fake?.close();
  if (source) removeCheckout(source);
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * `bundle` served with the bindings `source`'s own wrangler.toml declares in that revision (D1, the Durable Object,
 * its queues, crons, vars), `vars` over them.
 */
async function serve(source: string, bundle: string, port: number, vars: Record<string, string>) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(source, "wrangler.toml")) as unknown as {
    workerOptions: { bindings?: Record<string, unknown> };
  };
  const options = {
    ...workerOptions,
    host: "127.0.0.1",
    port,
    resourcePersistencePath: join(work, "state"),
    modules: [{ type: "ESModule", path: bundle }],
    modulesRoot: dirname(bundle),
    bindings: { ...workerOptions.bindings, ...vars },
  } as unknown as V4MiniflareOptions;
  const served = new Miniflare(convertV4MiniflareOptions(options));
  await served.ready;
  return served;
}

/**
 * Every migration of `dir`, in order, as `wrangler d1 migrations apply` applies one: its statements split by
 * wrangler's own splitter (a `CREATE TRIGGER … BEGIN …; END` stays whole), run as one batch with its row in
 * `d1_migrations`.
 */
async function migrate(d1: D1, dir: string): Promise<void> {
  await d1
    .prepare(
      "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, " +
        "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
    )
    .run();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8")).map((s) => d1.prepare(s));
    await d1.batch([...statements, d1.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file)]);
  }
}

async function api<T = any>(method: string, path: string, auth: string, body?: unknown): Promise<[number, T]> {
  const res = await fetch(origin + path, {
    method,
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return [res.status, (text ? JSON.parse(text) : null) as T];
}

/** A decimal dollar string as nano-dollars. */
const nanos = (usd: string) => {
  const [whole = "0", frac = ""] = usd.split(".");
  return Number(whole) * 1e9 + Number(frac.padEnd(9, "0").slice(0, 9));
};

async function rows<T = Record<string, number>>(sql: string, ...args: unknown[]): Promise<T[]> {
  const { results } = await db
    .prepare(sql)
    .bind(...args)
    .all();
  return results as T[];
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe(`the previous release (${PREVIOUS}) serving against this checkout's schema`, () => {
  let walletKey = "";
  let walletId = "";
  let openai = { key: "", id: "" };
  let anthropic = { key: "", id: "" };
  const costs: number[] = [];

  it("is served on a database with every migration of this checkout, the rollup trigger included", async () => {
    const names = (await rows<{ name: string }>("SELECT name FROM d1_migrations ORDER BY id")).map((r) => r.name);
    expect(names).toEqual(
      readdirSync(join(ROOT, "migrations"))
        .filter((f) => f.endsWith(".sql"))
        .sort(),
    );
    const schema = await rows<{ name: string }>(
      "SELECT name FROM sqlite_master " +
        "WHERE name IN ('usage_daily', 'ledger_days', 'requests_rollup', 'requests_archived')",
    );
    expect(schema.map((r) => r.name).sort()).toEqual([
      "ledger_days",
      "requests_archived",
      "requests_rollup",
      "usage_daily",
    ]);
    const health = await fetch(`${origin}/health`);
    expect(health.status).toBe(200);
  });

  it("creates a wallet and spend keys; proxied requests answer and are metered", async () => {
    const [status, wallet] = await api("POST", "/admin/wallets", ADMIN, { name: "upgrade" });
    expect(status).toBe(201);
    walletKey = wallet.secret_key;
    walletId = wallet.wallet_id;
    const [s1, k1] = await api("POST", "/v1/spend_keys", walletKey, {
      name: "previous-openai",
      spend_limit: { amount: "5.00", cycle: "monthly" },
      allowed_models: ["gpt-4o-mini", "claude-sonnet-4-20250514"],
    });
    expect(s1).toBe(201);
    openai = { key: k1.key, id: k1.spend_key_id };
    const [s2, k2] = await api("POST", "/v1/spend_keys", walletKey, {
      name: "previous-anthropic",
      request_shape: "anthropic",
    });
    expect(s2).toBe(201);
    anthropic = { key: k2.key, id: k2.spend_key_id };

    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${origin}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${openai.key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-4o-mini",
          max_tokens: 20,
          messages: [{ role: "user", content: `hello ${i}` }],
        }),
      });
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(res.status).toBe(200);
      expect(body.choices[0]!.message.content).toContain("Spendgate fake provider");
      const cost = res.headers.get("x-spendgate-cost");
      expect(Number(cost)).toBeGreaterThan(0);
      costs.push(nanos(cost!));
    }
    const stream = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${openai.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        messages: [{ role: "user", content: "stream please" }],
      }),
    });
    expect(stream.status).toBe(200);
    expect(await stream.text()).toContain("data: [DONE]");
    const claude = await fetch(`${origin}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": anthropic.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({
        model: "claude-sonnet-4-20250514",
        max_tokens: 50,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    expect(claude.status).toBe(200);
    expect(((await claude.json()) as { type: string }).type).toBe("message");

    // The key's own view, read from its KeyGuard: four requests counted, the JSON ones charged what they said.
    const [s, live] = await api("GET", "/v1/key", openai.key);
    expect(s).toBe(200);
    expect(live).toMatchObject({ spend_key_id: openai.id, total_requests: 4, in_flight: 0 });
    expect(nanos(live.total_spend)).toBeGreaterThan(costs.reduce((a, b) => a + b, 0));
  });

  it("writes its ledger rows to D1, and the trigger rolls them up into usage_daily exactly", async () => {
    // The old guard flushes its rows to D1 itself, about a second after the requests.
    const ledger = await until("the ledger rows", async () => {
      const [, page] = await api("GET", `/v1/requests?spend_key_id=${openai.id}`, walletKey);
      return page.data.length === 4 ? page.data : undefined;
    });
    expect(ledger.every((r: any) => r.status === "completed" && r.model === "gpt-4o-mini")).toBe(true);
    const json = ledger.filter((r: any) => !r.stream).map((r: any) => nanos(r.cost));
    expect(json.sort()).toEqual([...costs].sort());
    await until("the anthropic row", async () => {
      const [n] = await rows(`SELECT count(*) AS n FROM requests WHERE spend_key_id = ?`, anthropic.id);
      return n!.n === 1 ? true : undefined;
    });

    const sums =
      "count(*) AS requests, sum(input_tokens) AS input, sum(output_tokens) AS output, " +
      "sum(cache_read_tokens) AS cache_read, sum(cache_write_tokens) AS cache_write, " +
      "sum(reasoning_tokens) AS reasoning, sum(media_input_tokens) AS media, sum(units) AS units, " +
      "sum(cost_nanos) AS cost";
    const raw = await rows(
      `SELECT created_at / 86400000 AS day, wallet_id, spend_key_id, model, ${sums} FROM requests ` +
        "GROUP BY 1, 2, 3, 4 ORDER BY 3, 4",
    );
    const rolled = await rows(
      "SELECT day, wallet_id, spend_key_id, model, requests, input_tokens AS input, output_tokens AS output, " +
        "cache_read_tokens AS cache_read, cache_write_tokens AS cache_write, reasoning_tokens AS reasoning, " +
        "media_input_tokens AS media, units, cost_nanos AS cost FROM usage_daily ORDER BY 3, 4",
    );
    expect(raw).toHaveLength(2);
    expect(rolled).toEqual(raw);
    const [days] = await rows("SELECT sum(raw_rows) AS n FROM ledger_days");
    expect(days!.n).toBe(5);

    // What the old code reads of it: usage and the key's D1 counters.
    const [, key] = await api("GET", `/v1/spend_keys/${openai.id}`, walletKey);
    const openaiCost = (raw.find((r) => (r as any).spend_key_id === openai.id) as any).cost as number;
    expect(nanos(key.total_spend)).toBe(openaiCost);
    const start = new Date(Date.now() - 86_400_000).toISOString();
    const [su, usage] = await api("GET", `/v1/usage?start=${start}`, walletKey);
    expect(su).toBe(200);
    expect(usage.totals).toMatchObject({ total_requests: 5, total_cost: expect.any(String) });
    expect(walletId).toMatch(/^wal_/);
  });

  it("manages keys: list, retrieve, update (acting on the next request), revoke", async () => {
    const [sl, list] = await api("GET", "/v1/spend_keys", walletKey);
    expect(sl).toBe(200);
    expect(list.data.map((k: any) => k.spend_key_id).sort()).toEqual([openai.id, anthropic.id].sort());
    const listed = list.data.find((k: any) => k.spend_key_id === openai.id);
    expect(listed).toMatchObject({ name: "previous-openai", total_requests: 4 });

    const [sr, got] = await api("GET", `/v1/spend_keys/${openai.id}`, walletKey);
    expect(sr).toBe(200);
    expect(got).toMatchObject({ spend_limit: { amount: "5.00", cycle: "monthly" }, total_requests: 4 });

    const [su, updated] = await api("PATCH", `/v1/spend_keys/${openai.id}`, walletKey, {
      name: "renamed",
      status: "paused",
    });
    expect(su).toBe(200);
    expect(updated).toMatchObject({ name: "renamed", status: "paused" });
    const chat = () =>
      fetch(`${origin}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${openai.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
      });
    expect((await chat()).status).toBe(403);
    const [, relisted] = await api("GET", "/v1/spend_keys", walletKey);
    expect(relisted.data.find((k: any) => k.spend_key_id === openai.id)).toMatchObject({ name: "renamed" });
    expect((await api("PATCH", `/v1/spend_keys/${openai.id}`, walletKey, { status: "active" }))[0]).toBe(200);
    expect((await chat()).status).toBe(200);

    const [sd] = await api("DELETE", `/v1/spend_keys/${openai.id}`, walletKey);
    expect(sd).toBe(200);
    expect((await chat()).status).toBe(401);
    expect((await api("GET", `/v1/spend_keys/${openai.id}`, walletKey))[0]).toBe(404);
    const [, after] = await api("GET", "/v1/spend_keys", walletKey);
    expect(after.data.map((k: any) => k.spend_key_id)).toEqual([anthropic.id]);
    const [stored] = await rows("SELECT revoked_at IS NOT NULL AS revoked FROM spend_keys WHERE id = ?", openai.id);
    expect(stored!.revoked).toBe(1);
  });

  it("manages webhooks: create, list, retrieve, update, rotate the secret, delete", async () => {
    const [sc, hook] = await api("POST", "/v1/webhooks", walletKey, {
      name: "upgrade",
      url: "https://hooks.example.test/upgrade",
      events: ["spend_key.created"],
    });
    expect(sc).toBe(201);
    expect(hook.webhook_secret).toMatch(/^whsec_/);
    const id = hook.webhook_id as string;
    const [, list] = await api("GET", "/v1/webhooks", walletKey);
    expect(list.data.map((h: any) => h.webhook_id)).toContain(id);
    const [sg, got] = await api("GET", `/v1/webhooks/${id}`, walletKey);
    expect(sg).toBe(200);
    expect(got).toMatchObject({ name: "upgrade", url: "https://hooks.example.test/upgrade", enabled: true });
    const [sp, patched] = await api("PATCH", `/v1/webhooks/${id}`, walletKey, { enabled: false, name: "off" });
    expect(sp).toBe(200);
    expect(patched).toMatchObject({ name: "off", enabled: false });
    const [sr, rotated] = await api("POST", `/v1/webhooks/${id}/rotate_secret`, walletKey);
    expect(sr).toBe(200);
    expect(rotated.webhook_secret).not.toBe(hook.webhook_secret);
    const [sd] = await api("DELETE", `/v1/webhooks/${id}`, walletKey);
    expect(sd).toBe(200);
    expect((await api("GET", `/v1/webhooks/${id}`, walletKey))[0]).toBe(404);
  });
});
