import { describe, expect, it } from "vitest";
import { ADMIN, call, chat, json, messages, setupKey } from "./helpers.ts";

/**
 * A key's model list is exactly what it may call (docs/api.md › allowed_models): every id `GET /v1/models` lists,
 * in either dialect, is admitted by the gateway's chat/messages routes, and ids outside the key's scope are
 * refused with the scope refusal. An allowed id admits every id that names the same priced model, both ways
 * (aliases ⇄ dated snapshots, `provider/model`).
 */

type Shape = "openai" | "anthropic";

const SCOPE_REFUSAL = /^This spend key may not use the model '/;

const headers = (shape: Shape, key: string): Record<string, string> =>
  shape === "openai" ? { authorization: `Bearer ${key}` } : { "x-api-key": key, "anthropic-version": "2023-06-01" };

/** The ids a key lists; an Anthropic-shaped key's list is read page by page (5 a page), as its SDK pages. */
async function listed(shape: Shape, key: string): Promise<string[]> {
  if (shape === "openai") {
    const body = await json(await call("GET", "/v1/models", { headers: headers(shape, key) }), 200);
    expect(body.object).toBe("list");
    return body.data.map((m: { id: string }) => m.id);
  }
  const ids: string[] = [];
  let after = "";
  for (;;) {
    const path = `/v1/models?limit=5${after ? `&after_id=${encodeURIComponent(after)}` : ""}`;
    const page = await json(await call("GET", path, { headers: headers(shape, key) }), 200);
    ids.push(...page.data.map((m: { type: string; id: string }) => (expect(m.type).toBe("model"), m.id)));
    if (!page.has_more) return ids;
    after = page.last_id;
  }
}

/** One request for `model` through the key's own route (chat completions or messages), against the fake. */
async function callModel(shape: Shape, key: string, model: string) {
  const res = shape === "openai" ? await chat(key, { model, max_tokens: 5 }) : await messages(key, { model });
  const text = await res.text();
  const message: string = res.status === 200 ? "" : (JSON.parse(text).error?.message ?? text);
  return { status: res.status, message };
}

/** Calls every id with a few requests in flight at a time; answers the ones that were not a plain 200. */
async function callAll(shape: Shape, key: string, ids: string[]) {
  const failed: { model: string; status: number; message: string }[] = [];
  for (let i = 0; i < ids.length; i += 6) {
    const batch = ids.slice(i, i + 6);
    const results = await Promise.all(batch.map((model) => callModel(shape, key, model)));
    batch.forEach((model, j) => {
      const r = results[j];
      if (r && r.status !== 200) failed.push({ model, ...r });
    });
  }
  return failed;
}

const retrieve = (shape: Shape, key: string, id: string) =>
  call("GET", `/v1/models/${encodeURIComponent(id)}`, { headers: headers(shape, key) });

/** Every kind of `allowed_models`, in both dialects, and what each key lists (null: everything its shape can call). */
const SCOPES: [string, Shape, string[] | null, string[] | null][] = [
  [
    "aliases",
    "openai",
    ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"],
    ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"],
  ],
  // The README's first key: dated snapshots list (and admit) the models they are snapshots of.
  [
    "snapshots",
    "openai",
    ["gpt-4o-mini-2024-07-18", "claude-sonnet-4-20250514", "gpt-4.1-2025-04-14"],
    ["gpt-4.1", "gpt-4o-mini", "claude-sonnet-4-0"],
  ],
  [
    "provider/model",
    "openai",
    ["anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini", "mistral/mistral-small-latest"],
    ["gpt-4.1-mini", "claude-haiku-4-5", "mistral-small-latest"],
  ],
  // Ids with a slash that is not a provider prefix (Together's, and Fireworks' as Fireworks names its models).
  [
    "slashed ids",
    "openai",
    ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "accounts/fireworks/models/kimi-k3"],
    ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "accounts/fireworks/models/kimi-k3"],
  ],
  [
    "mixed",
    "openai",
    ["gpt-4o-mini", "claude-sonnet-4-5-20250929", "anthropic/claude-opus-4-5", "text-embedding-3-small", "dall-e-3"],
    ["dall-e-3", "gpt-4o-mini", "text-embedding-3-small", "claude-opus-4-5", "claude-sonnet-4-5"],
  ],
  ["none", "openai", null, null],
  [
    "aliases",
    "anthropic",
    ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"],
    ["claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4-5"],
  ],
  [
    "snapshots",
    "anthropic",
    ["claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"],
    ["claude-3-5-haiku-latest", "claude-sonnet-4-0", "claude-sonnet-4-5"],
  ],
  [
    "provider/model",
    "anthropic",
    ["anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-5-20251101"],
    ["claude-haiku-4-5", "claude-opus-4-5"],
  ],
  // An OpenAI model in an Anthropic-shaped key's scope is not listed: /v1/messages does not serve it.
  [
    "mixed",
    "anthropic",
    ["claude-opus-4-5", "anthropic/claude-haiku-4-5-20251001", "claude-3-7-sonnet-20250219", "gpt-4o"],
    ["claude-3-7-sonnet-latest", "claude-haiku-4-5", "claude-opus-4-5"],
  ],
  ["none", "anthropic", null, null],
];

/** Every model the gateway lists to a key with no scope, in each dialect (the universe scoped lists come from). */
const everything: Partial<Record<Shape, Promise<string[]>>> = {};
const all = (shape: Shape) => {
  everything[shape] ??= setupKey({ request_shape: shape }).then(({ key }) => listed(shape, key));
  return everything[shape];
};

describe("a key lists exactly the models it may call", () => {
  for (const [kind, shape, allowed, lists] of SCOPES) {
    it(`${shape} key, allowed_models: ${kind}`, async () => {
      const { key } = await setupKey({ request_shape: shape, allowed_models: allowed });
      const ids = await listed(shape, key);
      if (lists) expect(ids).toEqual(lists);
      else expect(ids.length).toBeGreaterThan(shape === "openai" ? 300 : 20);
      expect(new Set(ids).size).toBe(ids.length);

      // Every listed id is admitted: the fake answers each with 200.
      expect(await callAll(shape, key, ids)).toEqual([]);
      for (const id of ids.slice(0, 12)) expect((await retrieve(shape, key, id)).status, id).toBe(200);

      // A sample of the catalog outside the list is refused, and not retrievable.
      const outside = (await all(shape)).filter((id) => !ids.includes(id));
      if (allowed === null) expect(outside).toEqual([]);
      const sample = outside.filter((_, i) => i % 9 === 0);
      for (const model of sample) {
        const r = await callModel(shape, key, model);
        expect({ model, status: r.status }).toEqual({ model, status: 403 });
        expect(r.message).toMatch(SCOPE_REFUSAL);
        expect((await retrieve(shape, key, model)).status, model).toBe(404);
      }
    });
  }
});

describe("an allowed id admits every id of the same priced model, both ways", () => {
  const SAME: [Shape, string, string[]][] = [
    ["openai", "claude-sonnet-4-20250514", ["claude-sonnet-4-0", "claude-sonnet-4", "claude-4-sonnet-20250514"]],
    ["anthropic", "claude-sonnet-4-5-20250929", ["claude-sonnet-4-5"]],
    ["anthropic", "claude-sonnet-4-5", ["claude-sonnet-4-5-20250929"]],
    ["openai", "gpt-4o-mini-2024-07-18", ["gpt-4o-mini", "openai/gpt-4o-mini"]],
    ["openai", "gpt-4o-mini", ["gpt-4o-mini-2024-07-18"]],
    ["openai", "anthropic/claude-haiku-4-5", ["claude-haiku-4-5", "claude-haiku-4-5-20251001"]],
    ["anthropic", "claude-haiku-4-5-20251001", ["claude-haiku-4-5", "anthropic/claude-haiku-4-5"]],
  ];
  for (const [shape, allowed, others] of SAME) {
    it(`${allowed} (${shape}) admits ${others.join(", ")}`, async () => {
      const { key } = await setupKey({ request_shape: shape, allowed_models: [allowed] });
      for (const model of [allowed, ...others])
        expect({ model, ...(await callModel(shape, key, model)) }).toEqual({
          model,
          status: 200,
          message: "",
        });
      const ids = await listed(shape, key);
      expect(ids).toHaveLength(1);
      expect((await callModel(shape, key, ids[0] as string)).status).toBe(200);
    });
  }

  it("a model of another priced entry stays refused (a dated id does not widen to its family)", async () => {
    const { key } = await setupKey({ allowed_models: ["claude-sonnet-4-20250514"] });
    for (const model of ["claude-sonnet-4-5", "claude-opus-4-0", "gpt-4o-mini"]) {
      expect((await callModel("openai", key, model)).message).toMatch(SCOPE_REFUSAL);
    }
  });
});

describe("the catalog lists model ids, never match patterns", () => {
  it("no listed id is a fine-tune prefix or a reseller's variant, and each names its own model", async () => {
    const ids: string[] = (await json(await call("GET", "/v1/models"), 200)).data.map((m: { id: string }) => m.id);
    for (const pattern of ["ft:gpt-3.5-turbo-", "ft:gpt-4o", "gpt-4o-mini-2024-07-18.ft-", "gpt-4o:extended"]) {
      expect(ids).not.toContain(pattern);
    }
    expect(ids.filter((id) => id.includes(":") || /[-._/@]$/.test(id))).toEqual([]);
    // Every id retrieves as itself (it resolves to the model it is listed as).
    const unknown: string[] = [];
    for (const id of ids)
      if ((await call("GET", `/v1/models/${encodeURIComponent(id)}`)).status !== 200) unknown.push(id);
    expect(unknown).toEqual([]);
  });
});

describe("fine-tunes, families priced by a pattern, and operator overrides", () => {
  const FT = "ft:gpt-4o-mini-2024-07-18:acme::x1";

  it("a fine-tune is a model of its own: listed as written, its siblings refused", async () => {
    const { key } = await setupKey({ allowed_models: [FT, "magistral-small-2509"] });
    const ids = await listed("openai", key);
    expect(ids).toEqual([FT, "magistral-small-2509"]);
    expect(await callAll("openai", key, ids)).toEqual([]);
    expect((await retrieve("openai", key, FT)).status).toBe(200);
    for (const sibling of ["ft:gpt-4o-mini-2024-07-18:acme::y2", "magistral-small-2506"]) {
      expect((await callModel("openai", key, sibling)).message).toMatch(SCOPE_REFUSAL);
    }
  });

  it("an override reprices a model without changing any key's scope", async () => {
    const put = (model: string) =>
      call("PUT", `/admin/models/${encodeURIComponent(model)}`, {
        headers: ADMIN,
        body: { provider: "openai", input_price: "1", output_price: "2", max_output_tokens: 1000 },
      });
    const own = "ft:gpt-4o-mini-2024-07-18:acme::z3";
    for (const model of [own, "gpt-4o-2024-08-06"]) expect((await put(model)).status).toBe(200);
    try {
      // The operator's own model is listed to everyone; a key scoped to it lists it alone.
      expect((await json(await call("GET", "/v1/models"), 200)).data.map((m: { id: string }) => m.id)).toContain(own);
      const scoped = await setupKey({ allowed_models: [own] });
      expect(await listed("openai", scoped.key)).toEqual([own]);
      expect(await callAll("openai", scoped.key, [own])).toEqual([]);
      // A snapshot priced apart is still gpt-4o to a key allowed gpt-4o, listed and admitted.
      const gpt4o = await setupKey({ allowed_models: ["gpt-4o"] });
      const ids = await listed("openai", gpt4o.key);
      expect(ids).toEqual(["gpt-4o", "gpt-4o-2024-08-06"]);
      expect(await callAll("openai", gpt4o.key, [...ids, "gpt-4o-2024-11-20"])).toEqual([]);
    } finally {
      for (const model of [own, "gpt-4o-2024-08-06"]) {
        await call("DELETE", `/admin/models/${encodeURIComponent(model)}`, { headers: ADMIN });
      }
    }
  });
});

describe("the dashboard's models page", () => {
  it("shows DALL·E's prices per picture, and which keys may use a model by the same rule", async () => {
    const { wallet, id } = await setupKey({ name: "readme key", allowed_models: ["claude-sonnet-4-20250514"] });
    const signin = await call("POST", "/signin", {
      headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" },
      body: new URLSearchParams({ secret_key: wallet.key }).toString(),
    });
    const cookie = (signin.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const page = async (path: string) => (await call("GET", path, { headers: { cookie } })).text();
    const dalle = await page("/models?q=dall-e-3");
    expect(dalle).toContain("standard 1024x1024 $0.04 per picture");
    expect(dalle).toContain("hd 1792x1024 $0.12 per picture");
    expect(await page("/models?q=dall-e-2")).toContain("256x256 $0.016 per picture");
    const sonnet = await page("/models?q=claude-sonnet-4-0");
    // A count per model (not every key's name on every row), and a key's own models on choosing it.
    expect(sonnet).toMatch(/<code>claude-sonnet-4-0<\/code>[\s\S]*all 1/);
    expect(await page(`/models?key=${id}&q=claude-sonnet-4-0`)).toContain("<code>claude-sonnet-4-0</code>");
    expect(await page(`/models?key=${id}&q=gpt-4o-mini`)).not.toContain("<code>gpt-4o-mini</code>");
    expect(await page("/models?q=ft%3A")).not.toContain("<code>ft:");
  });
});
