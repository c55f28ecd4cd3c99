import { beforeAll, describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { adminRoutes } from "../../src/admin/routes.ts";
import { ErrorBody } from "../../src/lib/api-schemas.ts";
import type { ApiRouter } from "../../src/lib/openapi.ts";
import { childKeyRoutes } from "../../src/management/children.ts";
import { requestRoutes } from "../../src/management/requests.ts";
import { secretKeyRoutes } from "../../src/management/secret-keys.ts";
import { spendKeyRoutes } from "../../src/management/spend-keys.ts";
import { usageRoutes } from "../../src/management/usage.ts";
import { webhookRoutes } from "../../src/webhooks/routes.ts";
import { ADMIN, booked, call, chat, createSpendKey, createWallet, json, mgmt } from "./helpers.ts";

/**
 * The answers of the operator and management API against their documentation. Handlers return untyped
 * `Response`s, so only a real call shows whether an answer matches the schema `/openapi.json` documents for it.
 * Every operation of the document is called through the Worker (the table below says how) and must:
 * - answer its documented success status, with a JSON body that `z.parse` accepts under that status's schema as
 *   documented, and that has no key the schema does not declare (a loose `z.object` strips one silently, so a
 *   field renamed or added in a handler would otherwise pass);
 * - refuse the same call without a credential: 401, with a body the documented 401 schema (`ErrorBody`) accepts.
 * The last test fails if an operation of the document was not exercised.
 *
 * The steps run in order and share one wallet: later steps use what earlier ones created (ids in `w`).
 */

type Spec = ApiRouter["specs"][number];

/** The routers as `src/app.ts` mounts them and documents them. */
const MOUNTS: [prefix: string, router: { specs: Spec[] }][] = [
  ["/admin", adminRoutes],
  ["/v1", spendKeyRoutes],
  ["/v1", childKeyRoutes],
  ["/v1", secretKeyRoutes],
  ["/v1", requestRoutes],
  ["/v1", usageRoutes],
  ["/v1", webhookRoutes],
];
const SPECS = new Map<string, Spec>(
  MOUNTS.flatMap(([prefix, router]) =>
    router.specs.map((spec) => [`${spec.method.toUpperCase()} ${prefix}${spec.path}`, spec] as const),
  ),
);

/** What the steps create and later steps use. */
interface World {
  wallet: { key: string; walletId: string };
  /** a spend key that made one gateway request (the ledger row, usage, webhook events) */
  gateway: { id: string; key: string };
  spendKeyId: string;
  /** a spend key that may mint child keys (authenticates `POST /v1/key/children`) */
  parentKey: string;
  secretKeyId: string;
  requestId: string;
  webhookId: string;
  deliveryId: string;
}
const w = {} as World;

interface Step {
  /** the operation as the document names it: `METHOD /prefix/path` */
  route: string;
  /** the concrete path and query (default: the route's path, when it has no parameters) */
  path?: () => string;
  body?: () => unknown;
  /** setup the call needs, before it is made */
  before?: () => Promise<void>;
  /** checks beyond the schema, and what later steps need from the answer */
  after?: (answer: any) => void;
}

/** A built-in model whose prices are overridden, then restored (no other test prices with it). */
const BUILTIN_MODEL = "gpt-4.1-nano";
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
const nonEmpty = (list: { data: unknown[] }) =>
  expect(list.data.length, "a list to validate its items").toBeGreaterThan(0);

/** Every operation of the document, by family: how to call it, in the order the steps run. */
const TABLE: [family: string, steps: Step[]][] = [
  [
    "operator",
    [
      { route: "POST /admin/wallets", body: () => ({ name: "openapi wallet" }) },
      { route: "GET /admin/wallets", path: () => "/admin/wallets?limit=3", after: nonEmpty },
      {
        route: "PUT /admin/models/{model}",
        path: () => `/admin/models/${BUILTIN_MODEL}`,
        // Every optional field set, so each nullable field of the answer holds a value to check.
        body: () => ({
          provider: "openai",
          input_price: "0.1",
          output_price: "0.4",
          cache_read_price: "0.025",
          cache_write_price: "0.2",
          max_output_tokens: 32_768,
          context_window: 1_047_576,
          prices: { input_mtok: { base: "0.1", tiers: [{ start: 200_000, price: "0.2" }] }, web_searches_kcount: "10" },
          service_tiers: { priority: "1.75", flex: "0.5" },
        }),
        after: (entry) => expect(entry).toMatchObject({ id: BUILTIN_MODEL, overridden: true }),
      },
      {
        route: "DELETE /admin/models/{model}",
        path: () => `/admin/models/${BUILTIN_MODEL}`,
        after: (entry) => expect(entry).toMatchObject({ id: BUILTIN_MODEL, overridden: false }),
      },
      { route: "POST /admin/webhook-secrets/reencrypt", path: () => "/admin/webhook-secrets/reencrypt?limit=10" },
    ],
  ],
  [
    "spend keys",
    [
      {
        route: "POST /v1/spend_keys",
        // Every field set, so each nullable field of the answer holds a value to check.
        body: () => ({
          name: "documented",
          allowed_models: ["gpt-4o-mini"],
          allowed_providers: ["openai"],
          spend_limit: { amount: "5.00", cycle: "monthly" },
          request_limit: { count: 100, cycle: "daily" },
          rate_limit: { rpm: 60, burst: 10 },
          expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString(),
          clamp_output: false,
          alert_thresholds: [0.5, 0.8],
          delegation: { max_depth: 2, max_children: 3 },
        }),
        after: (key) => (w.spendKeyId = key.spend_key_id),
      },
      {
        route: "POST /v1/key/children",
        before: async () => {
          const parent = await createSpendKey(w.wallet.key, {
            spend_limit: { amount: "1.00", cycle: "daily" },
            delegation: { max_depth: 1, max_children: 1 },
          });
          w.parentKey = parent.key;
        },
        body: () => ({ name: "child", spend_limit: { amount: "0.10" } }),
        after: (child) => expect(child.parent_key_id).toMatch(/^spk_/),
      },
      { route: "GET /v1/spend_keys", after: nonEmpty },
      { route: "GET /v1/spend_keys/{id}", path: () => `/v1/spend_keys/${w.spendKeyId}` },
      {
        route: "PUT /v1/spend_keys/{id}",
        path: () => `/v1/spend_keys/${w.spendKeyId}`,
        body: () => ({ name: "renamed" }),
      },
      {
        route: "PATCH /v1/spend_keys/{id}",
        path: () => `/v1/spend_keys/${w.spendKeyId}`,
        body: () => ({ status: "paused" }),
      },
      { route: "POST /v1/spend_keys/{id}/rotate", path: () => `/v1/spend_keys/${w.spendKeyId}/rotate` },
      { route: "DELETE /v1/spend_keys/{id}", path: () => `/v1/spend_keys/${w.spendKeyId}` },
    ],
  ],
  [
    "secret keys",
    [
      {
        route: "POST /v1/secret_keys",
        body: () => ({ name: "second" }),
        after: (key) => (w.secretKeyId = key.secret_key_id),
      },
      { route: "GET /v1/secret_keys", after: nonEmpty },
      // The second key: the wallet keeps its first.
      { route: "DELETE /v1/secret_keys/{id}", path: () => `/v1/secret_keys/${w.secretKeyId}` },
    ],
  ],
  [
    "request ledger",
    [
      {
        route: "GET /v1/requests",
        path: () => `/v1/requests?spend_key_id=${w.gateway.id}`,
        after: (list) => {
          nonEmpty(list);
          w.requestId = list.data[0].request_id;
        },
      },
      { route: "GET /v1/requests/{request_id}", path: () => `/v1/requests/${w.requestId}` },
    ],
  ],
  [
    "usage",
    [
      {
        route: "GET /v1/usage",
        // From yesterday: a whole day from the rollups and today from the raw ledger; per model, so the items
        // carry their optional `model`.
        path: () => `/v1/usage?start=${day(-1)}&group_by=model`,
        after: (usage) => expect(usage.items.length, "items to validate").toBeGreaterThan(0),
      },
    ],
  ],
  [
    "webhooks",
    [
      {
        route: "POST /v1/webhooks",
        body: () => ({ name: "documented", url: "https://hooks.example.test/x" }),
        after: (hook) => (w.webhookId = hook.webhook_id),
      },
      { route: "GET /v1/webhooks", after: nonEmpty },
      { route: "GET /v1/webhooks/{id}", path: () => `/v1/webhooks/${w.webhookId}` },
      {
        route: "PATCH /v1/webhooks/{id}",
        path: () => `/v1/webhooks/${w.webhookId}`,
        // A list of events, so the answer's nullable `events` holds a value to check.
        body: () => ({ events: ["spend_key.updated", "spend_key.paused"] }),
      },
      { route: "POST /v1/webhooks/{id}/rotate_secret", path: () => `/v1/webhooks/${w.webhookId}/rotate_secret` },
      {
        route: "GET /v1/webhooks/{id}/deliveries",
        path: () => `/v1/webhooks/${w.webhookId}/deliveries`,
        before: async () => {
          // A change of a spend key raises `spend_key.updated`; its delivery is logged once the guard hands over.
          await json(await mgmt(w.wallet.key, "PATCH", `/spend_keys/${w.gateway.id}`, { name: "changed" }), 200);
          await booked(w.gateway.id);
          const deadline = Date.now() + 15_000;
          while ((await deliveries()).length === 0) {
            if (Date.now() > deadline) throw new Error("no webhook delivery was logged within 15 s");
            await new Promise((r) => setTimeout(r, 200));
          }
        },
        after: (list) => {
          nonEmpty(list);
          w.deliveryId = list.data[0].delivery_id;
        },
      },
      {
        route: "POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        path: () => `/v1/webhooks/${w.webhookId}/deliveries/${w.deliveryId}/redeliver`,
      },
      { route: "DELETE /v1/webhooks/{id}", path: () => `/v1/webhooks/${w.webhookId}` },
    ],
  ],
];

async function deliveries(): Promise<unknown[]> {
  return (await json(await mgmt(w.wallet.key, "GET", `/webhooks/${w.webhookId}/deliveries`), 200)).data;
}

/** The internals of a zod/mini schema this walk reads (`schema._zod.def`). */
interface Def {
  type: string;
  shape?: Record<string, z.ZodMiniType>;
  catchall?: z.ZodMiniType;
  innerType?: z.ZodMiniType;
  element?: z.ZodMiniType;
  valueType?: z.ZodMiniType;
  options?: z.ZodMiniType[];
  left?: z.ZodMiniType;
  right?: z.ZodMiniType;
  in?: z.ZodMiniType;
  getter?: () => z.ZodMiniType;
}
const defOf = (schema: z.ZodMiniType) => (schema as unknown as { _zod: { def: Def } })._zod.def;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const LEAVES = new Set(["string", "number", "boolean", "bigint", "enum", "literal", "null", "any", "unknown", "never"]);

/**
 * The keys of `value` that `schema` does not declare, as paths (`model_usage.extra`): what `z.parse` drops without
 * a word from a loose `z.object`. `value` is one the schema accepts.
 */
function undeclaredKeys(schema: z.ZodMiniType, value: unknown, at = ""): string[] {
  const def = defOf(schema);
  const inner = (s: z.ZodMiniType | undefined, v: unknown, path = at) => (s ? undeclaredKeys(s, v, path) : []);
  switch (def.type) {
    case "object": {
      if (!isRecord(value)) return [];
      return Object.entries(value).flatMap(([key, v]) => {
        const path = at ? `${at}.${key}` : key;
        const field = def.shape?.[key];
        if (field) return inner(field, v, path);
        // A declared catch-all (`z.looseObject`, `z.catchall`) accepts the key; a strict object refused it already.
        return def.catchall ? [] : [path];
      });
    }
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "nonoptional":
      return value === null || value === undefined ? [] : inner(def.innerType, value);
    case "array":
      return Array.isArray(value) ? value.flatMap((v, i) => inner(def.element, v, `${at}[${i}]`)) : [];
    case "record":
      return isRecord(value) ? Object.entries(value).flatMap(([k, v]) => inner(def.valueType, v, `${at}.${k}`)) : [];
    case "union":
      // The option that accepts the value is the one that describes it.
      return inner(
        def.options?.find((option) => z.safeParse(option, value).success),
        value,
      );
    case "intersection":
      return inner(def.left, value).filter((path) => inner(def.right, value).includes(path));
    case "pipe":
      return inner(def.in, value);
    case "lazy":
      return inner(def.getter?.(), value);
    default:
      if (LEAVES.has(def.type)) return [];
      throw new Error(`undeclaredKeys cannot walk a zod '${def.type}' schema (at '${at}'): teach it to`);
  }
}

/** The documented answer: `z.parse` under the schema as documented, then no key it does not declare. */
function expectDocumented(schema: z.ZodMiniType, answer: unknown, what: string): void {
  const parsed = z.safeParse(schema, answer);
  expect(parsed.success ? [] : parsed.error.issues, `${what}: schema issues`).toEqual([]);
  expect(undeclaredKeys(schema, answer), `${what}: keys the schema does not declare`).toEqual([]);
}

const successStatus = (spec: Spec) => {
  const statuses = Object.keys(spec.responses)
    .map(Number)
    .filter((s) => s >= 200 && s < 300);
  expect(statuses, "one documented success status").toHaveLength(1);
  return statuses[0]!;
};

/** The operations a step called and got the documented answer from. */
const exercised = new Set<string>();

async function exercise(step: Step): Promise<void> {
  const spec = SPECS.get(step.route);
  if (!spec) throw new Error(`${step.route} is not an operation of the routers`);
  const [method, template] = step.route.split(" ") as [string, string];
  const path = step.path?.() ?? template;
  expect(path, "a concrete path").not.toContain("{");
  const body = step.body?.();
  const credential = () =>
    template.startsWith("/admin/")
      ? ADMIN
      : template === "/v1/key/children"
        ? { authorization: `Bearer ${w.parentKey}` }
        : { authorization: `Bearer ${w.wallet.key}` };

  // Refused without a credential, with the documented error body.
  const refused = await call(method, path, { body });
  const error = await json(refused, 401);
  expect(spec.responses[401]?.schema, "the documented 401 schema").toBe(ErrorBody);
  expectDocumented(ErrorBody, error, `${step.route} → 401`);

  await step.before?.();
  const status = successStatus(spec);
  const answer = await json(await call(method, path, { headers: credential(), body }), status);
  const schema = spec.responses[status]?.schema;
  if (!schema) throw new Error(`${step.route} documents no schema for ${status}`);
  // What later steps need first, so one route's mismatch fails that route alone.
  step.after?.(answer);
  expectDocumented(schema, answer, `${step.route} → ${status}`);
  exercised.add(step.route);
}

/** `/openapi.json` as the Worker serves it, and its operations (`METHOD /path`). */
let doc: { paths: Record<string, Record<string, { responses: object }>> };
let operations: string[] = [];

beforeAll(async () => {
  doc = await json(await call("GET", "/openapi.json"), 200);
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
  );
  // Setup the steps share: a wallet, and a spend key with one request booked in the ledger.
  const wallet = await createWallet("openapi");
  w.wallet = { key: wallet.key, walletId: wallet.walletId };
  const created = await createSpendKey(wallet.key, { name: "gateway", spend_limit: { amount: "1", cycle: "daily" } });
  w.gateway = { id: created.spend_key_id, key: created.key };
  const res = await chat(w.gateway.key, {}, { "x-spendgate-metadata": JSON.stringify({ run: "openapi" }) });
  expect(res.status, await res.text()).toBe(200);
  await booked(w.gateway.id);
});

describe("the table and the document", () => {
  it("the table names each operation of /openapi.json once, and each maps to its router's spec", () => {
    const steps = TABLE.flatMap(([, s]) => s.map((step) => step.route));
    expect([...steps].sort()).toEqual([...operations].sort());
    expect([...SPECS.keys()].sort()).toEqual([...operations].sort());
    for (const route of operations) {
      const [method, path] = route.split(" ") as [string, string];
      const documented = Object.keys(doc.paths[path]?.[method.toLowerCase()]?.responses ?? {});
      expect(documented, route).toEqual(Object.keys(SPECS.get(route)!.responses));
    }
  });
});

for (const [family, steps] of TABLE) {
  describe(`${family}: documented answers`, () => {
    for (const step of steps) it(step.route, () => exercise(step));
  });
}

describe("the strict check itself", () => {
  it("names every key a loose schema does not declare, however deep", () => {
    const Item = z.object({ id: z.string(), tags: z.nullable(z.array(z.object({ name: z.string() }))) });
    const Doc = z.object({
      items: z.array(Item),
      counts: z.record(z.string(), z.object({ n: z.number() })),
      rate: z.union([z.string(), z.object({ base: z.string() })]),
      extra: z.optional(z.object({ x: z.number() })),
    });
    const answer = {
      items: [{ id: "a", tags: [{ name: "t", colour: "red" }], renamed: 1 }],
      counts: { a: { n: 1, m: 2 } },
      rate: { base: "1", tiers: [] },
      extra: { x: 1 },
      added: true,
    };
    expect(z.safeParse(Doc, answer).success, "z.parse alone lets them through").toBe(true);
    expect(undeclaredKeys(Doc, answer).sort()).toEqual(
      ["added", "counts.a.m", "items[0].renamed", "items[0].tags[0].colour", "rate.tiers"].sort(),
    );
    expect(undeclaredKeys(Doc, { items: [], counts: {}, rate: "1" })).toEqual([]);
  });
});

describe("answers that take a documented null", () => {
  it("DELETE /admin/models/{model} of a model without a built-in entry answers null, as documented", async () => {
    const spec = SPECS.get("DELETE /admin/models/{model}")!;
    const model = "/admin/models/openapi-custom-model";
    const override = { provider: "openai", input_price: "1", output_price: "2" };
    await json(await call("PUT", model, { headers: ADMIN, body: override }), 200);
    const answer = await json(await call("DELETE", model, { headers: ADMIN }), 200);
    expect(answer).toBeNull();
    expectDocumented(spec.responses[200]!.schema!, answer, "DELETE /admin/models/{model} (override only)");
  });
});

describe("coverage", () => {
  it("every operation of /openapi.json got its documented answer", () => {
    expect(operations.length).toBeGreaterThan(0);
    expect(operations.filter((route) => !exercised.has(route))).toEqual([]);
  });
});
