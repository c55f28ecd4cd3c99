import { createRoute } from "@hono/zod-openapi";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { database } from "../db/client.ts";
import { walletSecretKeys } from "../db/schema.ts";
import { afterCursor, page } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { hashSecret, issueKey, keyPreview } from "../lib/keys.ts";
import { apiRouter } from "../lib/openapi.ts";
import { CreateSecretKey, ErrorBody, IdParam, listOf, Pagination, SecretKey, SecretKeyCreated, SecretKeyDeleted } from "./schemas.ts";

type SecretKeyRow = typeof walletSecretKeys.$inferSelect;

const wire = (r: SecretKeyRow) => ({
  secret_key_id: r.id,
  name: r.name,
  secret_key_hint: r.hint,
  created_at: new Date(r.createdAt).toISOString(),
});

/** Issues a wallet secret key row; the plaintext key is returned to the caller once and never stored. */
export async function newSecretKey(walletId: string, name: string, now = Date.now()) {
  const issued = issueKey("wallet");
  const row: SecretKeyRow = {
    id: issued.id,
    walletId,
    name,
    keyHash: await hashSecret(issued.key),
    hint: keyPreview(issued.key),
    createdAt: now,
    deletedAt: null,
  };
  return { row, key: issued.key, wire: { ...wire(row), secret_key: issued.key } };
}

const tags = ["Secret keys"];
const security = [{ walletKey: [] }];
const json = <T>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = {
  400: json(ErrorBody, "Invalid input"),
  401: json(ErrorBody, "Missing or invalid wallet key"),
  404: json(ErrorBody, "Unknown id (or another wallet's)"),
  409: json(ErrorBody, "Refused: it is the wallet's last key"),
};

export const secretKeyRoutes = apiRouter()
  .openapi(
    createRoute({ method: "get", path: "/secret_keys", tags, security, request: { query: Pagination }, responses: { 200: json(listOf(SecretKey, "SecretKeyList"), "Wallet secret keys, newest first"), ...errors } }),
    async (c) => {
      const { cursor, limit } = c.req.valid("query");
      const rows = await database(c.env.DB)
        .select()
        .from(walletSecretKeys)
        .where(and(eq(walletSecretKeys.walletId, c.get("walletId")), isNull(walletSecretKeys.deletedAt), afterCursor(cursor, walletSecretKeys.createdAt, walletSecretKeys.id)))
        .orderBy(desc(walletSecretKeys.createdAt), desc(walletSecretKeys.id))
        .limit(limit + 1)
        .all();
      return c.json(page(rows, limit, (r) => [r.createdAt, r.id], wire), 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/secret_keys", tags, security, request: { body: { required: true, content: { "application/json": { schema: CreateSecretKey } } } }, responses: { 201: json(SecretKeyCreated, "`secret_key` is shown only now"), ...errors } }),
    async (c) => {
      const created = await newSecretKey(c.get("walletId"), c.req.valid("json").name);
      await database(c.env.DB).insert(walletSecretKeys).values(created.row);
      return c.json(created.wire, 201);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/secret_keys/{id}", tags, security, request: { params: IdParam }, responses: { 200: json(SecretKeyDeleted, "Deleted"), ...errors } }),
    async (c) => {
      const id = c.req.valid("param").id;
      const walletId = c.get("walletId");
      const db = database(c.env.DB);
      const live = and(eq(walletSecretKeys.walletId, walletId), isNull(walletSecretKeys.deletedAt));
      const row = await db.select().from(walletSecretKeys).where(and(live, eq(walletSecretKeys.id, id))).get();
      if (!row) throw new ApiError("not_found", `No secret key with id '${id}'.`, { param: "id" });
      // One conditional statement, so two concurrent deletes cannot remove the last two keys.
      const res = await db
        .update(walletSecretKeys)
        .set({ deletedAt: Date.now() })
        .where(and(eq(walletSecretKeys.id, id), isNull(walletSecretKeys.deletedAt), sql`(SELECT count(*) FROM wallet_secret_keys WHERE wallet_id = ${walletId} AND deleted_at IS NULL) > 1`))
        .run();
      if (res.meta.changes === 0) throw new ApiError("conflict", "Refusing to delete the wallet's last secret key: create another first.");
      return c.json({ id, deleted: true as const }, 200);
    },
  );
