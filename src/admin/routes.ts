import { eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import * as z from "zod/mini";
import { builtinCatalog, getCatalog, invalidateCatalog } from "../catalog/catalog.ts";
import type { Rate } from "../catalog/pricing.ts";
import { serializeModel } from "../catalog/wire.ts";
import { gatewayConfig } from "../config.ts";
import { controlD1, database } from "../db/client.ts";
import { modelOverrides, walletSecretKeys, wallets } from "../db/schema.ts";
import type { AppEnv } from "../env.ts";
import { ERRORS, listOf, Pagination } from "../lib/api-schemas.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { hashesEqual, hashSecret, keyKindOf, newId } from "../lib/keys.ts";
import { parseUsd } from "../lib/money.ts";
import { ApiRouter, named } from "../lib/openapi.ts";
import { newSecretKey } from "../wallets/secret-keys.ts";
import { reencryptSecrets } from "../webhooks/secrets.ts";
import { CreateWallet, ModelEntryWire, ModelParam, PutModel, Wallet, WalletCreated } from "./schemas.ts";

const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = gatewayConfig(c.env).adminToken;
  if (!expected) {
    throw new ApiError(
      "admin_disabled",
      "The operator API is disabled because ADMIN_TOKEN is not set. Set it with " +
        "`wrangler secret put ADMIN_TOKEN` (deployed) or in .dev.vars / the environment (local).",
    );
  }
  // Exactly one `Bearer ` and the token as sent: nothing trimmed, nothing else tolerated.
  const header = c.req.header("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
  if (!token) throw new ApiError("unauthorized", "The operator API needs `Authorization: Bearer <ADMIN_TOKEN>`.");
  if (keyKindOf(token)) throw new ApiError("forbidden", "Spend keys and wallet keys cannot call the operator API.");
  // Hash both sides first so the comparison is constant-time whatever the lengths.
  if (!hashesEqual(await hashSecret(token), await hashSecret(expected)))
    throw new ApiError("unauthorized", "Invalid ADMIN_TOKEN.");
  await next();
});

/** A price the schema has already validated, as nano-dollars per 1M tokens. */
function price(text: string): number {
  const nanos = parseUsd(text);
  if (nanos === null) throw new ApiError("invalid_request", `Not a USD amount: '${text}'.`);
  return nanos;
}

const tags = ["Operator"];
const security = "adminToken" as const;
const ReencryptStep = named(
  "ReencryptStep",
  z.object({
    reencrypted: z.int(),
    unreadable: z.array(z.string()),
    remaining: z.int(),
    next_cursor: z.nullable(z.string()),
  }),
);
const ADMIN_ERRORS = { ...ERRORS, 503: { description: "ADMIN_TOKEN is not set", schema: ERRORS[400].schema } };

export const adminRoutes = new ApiRouter<AppEnv>();
adminRoutes.app.use("*", requireAdmin);
adminRoutes
  .route(
    {
      method: "post",
      path: "/wallets",
      summary: "Create a wallet and its first secret key",
      tags,
      security,
      body: CreateWallet,
      responses: {
        201: { description: "The wallet and its first secret key (shown only now)", schema: WalletCreated },
        ...ADMIN_ERRORS,
      },
    },
    async (c, { body }) => {
      const now = Date.now();
      const wallet = { id: newId("wal"), name: body.name, createdAt: now };
      const secret = await newSecretKey(wallet.id, "default", now);
      const db = database(controlD1(c.env));
      await db.batch([db.insert(wallets).values(wallet), db.insert(walletSecretKeys).values(secret.row)]);
      return c.json(
        {
          wallet_id: wallet.id,
          name: wallet.name,
          created_at: new Date(now).toISOString(),
          secret_key_id: secret.row.id,
          secret_key_hint: secret.row.hint,
          secret_key: secret.key,
        },
        201,
      );
    },
  )
  .route(
    {
      method: "get",
      path: "/wallets",
      summary: "List wallets, newest first",
      tags,
      security,
      query: Pagination,
      responses: { 200: { description: "Wallets", schema: listOf("WalletList", Wallet) }, ...ADMIN_ERRORS },
    },
    async (c, { query }) => {
      const wire = (r: typeof wallets.$inferSelect) => ({
        wallet_id: r.id,
        name: r.name,
        created_at: new Date(r.createdAt).toISOString(),
      });
      return c.json(await listPage(controlD1(c.env), wallets, wallets.id, undefined, query, wire));
    },
  )
  .route(
    {
      method: "put",
      path: "/models/{model}",
      summary: "Override or add a model's prices (USD per 1M tokens)",
      tags,
      security,
      params: ModelParam,
      body: PutModel,
      responses: { 200: { description: "The effective catalog entry", schema: ModelEntryWire }, ...ADMIN_ERRORS },
    },
    async (c, { params: { model }, body: b }) => {
      const row = {
        model,
        provider: b.provider,
        inputPrice: price(b.input_price),
        outputPrice: price(b.output_price),
        cacheReadPrice: b.cache_read_price === undefined ? null : price(b.cache_read_price),
        cacheWritePrice: b.cache_write_price === undefined ? null : price(b.cache_write_price),
        maxOutputTokens: b.max_output_tokens ?? null,
        contextWindow: b.context_window ?? null,
        rates: b.prices
          ? Object.fromEntries(
              Object.entries(b.prices).flatMap(([k, v]): [string, Rate][] =>
                v === undefined
                  ? []
                  : [
                      [
                        k,
                        typeof v === "string"
                          ? price(v)
                          : { base: price(v.base), tiers: v.tiers.map((t) => [t.start, price(t.price)] as const) },
                      ],
                    ],
              ),
            )
          : null,
        serviceTiers: b.service_tiers ?? null,
        updatedAt: Date.now(),
      };
      await database(controlD1(c.env))
        .insert(modelOverrides)
        .values(row)
        .onConflictDoUpdate({ target: modelOverrides.model, set: row });
      invalidateCatalog();
      const entry = (await getCatalog(controlD1(c.env))).entries.get(model);
      if (!entry) throw new ApiError("internal_error", "The override was saved but could not be read back.");
      return c.json(serializeModel(entry));
    },
  )
  .route(
    {
      method: "delete",
      path: "/models/{model}",
      summary: "Remove a model's override",
      tags,
      security,
      params: ModelParam,
      responses: {
        200: {
          description: "The built-in entry now in force, or null when the model has none",
          schema: z.nullable(ModelEntryWire),
        },
        ...ADMIN_ERRORS,
      },
    },
    async (c, { params: { model } }) => {
      const res = await database(controlD1(c.env)).delete(modelOverrides).where(eq(modelOverrides.model, model)).run();
      if (res.meta.changes === 0)
        throw new ApiError("not_found", `No override for model '${model}'.`, { param: "model" });
      invalidateCatalog();
      const builtin = builtinCatalog.resolve(model)?.entry;
      return c.json(builtin ? serializeModel(builtin) : null);
    },
  )
  .route(
    {
      method: "post",
      path: "/webhook-secrets/reencrypt",
      summary:
        "Rotating WEBHOOK_SECRET_KEY: seal up to `limit` stored webhook secrets again under the current key " +
        "(call again with `next_cursor` until it is null; `remaining` 0 means WEBHOOK_SECRET_KEY_PREVIOUS can go)",
      tags,
      security,
      query: Pagination,
      responses: { 200: { description: "What this step did", schema: ReencryptStep }, ...ADMIN_ERRORS },
    },
    async (c, { query }) => c.json(await reencryptSecrets(c.env, { cursor: query.cursor, limit: query.limit })),
  );
