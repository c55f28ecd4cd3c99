import { createRoute } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { builtinModel, getCatalog, invalidateCatalog, type ModelEntry } from "../catalog/catalog.ts";
import { database } from "../db/client.ts";
import { modelOverrides, wallets, walletSecretKeys } from "../db/schema.ts";
import type { AppEnv } from "../env.ts";
import { afterCursor, page } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { hashesEqual, hashSecret, keyKindOf, newId } from "../lib/keys.ts";
import { formatUsd, parseUsd } from "../lib/money.ts";
import { apiRouter } from "../lib/openapi.ts";
import { bearer } from "../management/auth.ts";
import { newSecretKey } from "../management/secret-keys.ts";
import { CreateWallet, ErrorBody, ModelParam, listOf, ModelEntryWire, Pagination, PutModel, Wallet, WalletCreated } from "../management/schemas.ts";

const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) {
    throw new ApiError(
      "admin_disabled",
      "The operator API is disabled because ADMIN_TOKEN is not set. Set it with `wrangler secret put ADMIN_TOKEN` (deployed) or in .dev.vars / the environment (local).",
    );
  }
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new ApiError("unauthorized", "The operator API needs `Authorization: Bearer <ADMIN_TOKEN>`.");
  if (keyKindOf(token)) throw new ApiError("forbidden", "Spend keys and wallet keys cannot call the operator API.");
  // Hash both sides first so the comparison is constant-time whatever the lengths.
  if (!hashesEqual(await hashSecret(token), await hashSecret(expected))) throw new ApiError("unauthorized", "Invalid ADMIN_TOKEN.");
  await next();
});

export function serializeModel(m: ModelEntry) {
  const p = m.prices;
  return {
    id: m.id,
    provider: m.provider,
    input_price: p ? formatUsd(p.input) : null,
    output_price: p ? formatUsd(p.output) : null,
    cache_read_price: p ? formatUsd(p.cacheRead) : null,
    cache_write_price: p ? formatUsd(p.cacheWrite) : null,
    max_output_tokens: m.maxOutputTokens,
    overridden: m.overridden,
  };
}

const tags = ["Operator"];
const security = [{ adminToken: [] }];
const json = <T>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = {
  400: json(ErrorBody, "Invalid input"),
  401: json(ErrorBody, "Missing or invalid ADMIN_TOKEN"),
  404: json(ErrorBody, "Not found"),
  503: json(ErrorBody, "ADMIN_TOKEN is not set"),
};

export const adminRoutes = apiRouter();
adminRoutes.use("*", requireAdmin);
adminRoutes
  .openapi(
    createRoute({ method: "post", path: "/wallets", tags, security, request: { body: { required: true, content: { "application/json": { schema: CreateWallet } } } }, responses: { 201: json(WalletCreated, "The wallet and its first secret key (shown only now)"), ...errors } }),
    async (c) => {
      const now = Date.now();
      const wallet = { id: newId("wal"), name: c.req.valid("json").name, createdAt: now };
      const secret = await newSecretKey(wallet.id, "default", now);
      const db = database(c.env.DB);
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
  .openapi(
    createRoute({ method: "get", path: "/wallets", tags, security, request: { query: Pagination }, responses: { 200: json(listOf(Wallet, "WalletList"), "Wallets, newest first"), ...errors } }),
    async (c) => {
      const { cursor, limit } = c.req.valid("query");
      const rows = await database(c.env.DB)
        .select()
        .from(wallets)
        .where(afterCursor(cursor, wallets.createdAt, wallets.id))
        .orderBy(desc(wallets.createdAt), desc(wallets.id))
        .limit(limit + 1)
        .all();
      return c.json(
        page(rows, limit, (r) => [r.createdAt, r.id], (r) => ({ wallet_id: r.id, name: r.name, created_at: new Date(r.createdAt).toISOString() })),
        200,
      );
    },
  )
  .openapi(
    createRoute({ method: "put", path: "/models/{model}", tags, security, request: { params: ModelParam, body: { required: true, content: { "application/json": { schema: PutModel } } } }, responses: { 200: json(ModelEntryWire, "The effective catalog entry"), ...errors } }),
    async (c) => {
      const model = c.req.valid("param").model;
      const b = c.req.valid("json");
      const input = parseUsd(b.input_price)!;
      const row = {
        model,
        provider: b.provider,
        inputPrice: input,
        outputPrice: parseUsd(b.output_price)!,
        cacheReadPrice: b.cache_read_price === undefined ? null : parseUsd(b.cache_read_price),
        cacheWritePrice: b.cache_write_price === undefined ? null : parseUsd(b.cache_write_price),
        maxOutputTokens: b.max_output_tokens ?? null,
        updatedAt: Date.now(),
      };
      await database(c.env.DB).insert(modelOverrides).values(row).onConflictDoUpdate({ target: modelOverrides.model, set: row });
      invalidateCatalog();
      const entry = (await getCatalog(c.env.DB)).get(model)!;
      return c.json(serializeModel(entry), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/models/{model}", tags, security, request: { params: ModelParam }, responses: { 200: json(ModelEntryWire.nullable(), "The built-in entry now in force, or null"), ...errors } }),
    async (c) => {
      const model = c.req.valid("param").model;
      const res = await database(c.env.DB).delete(modelOverrides).where(eq(modelOverrides.model, model)).run();
      if (res.meta.changes === 0) throw new ApiError("not_found", `No override for model '${model}'.`, { param: "model" });
      invalidateCatalog();
      const builtin = builtinModel(model);
      return c.json(builtin ? serializeModel(builtin) : null, 200);
    },
  );
