import { and, eq, isNull, sql } from "drizzle-orm";
import { controlD1, database } from "../db/client.ts";
import { walletSecretKeys } from "../db/schema.ts";
import { ERRORS, IdParam, listOf, Pagination } from "../lib/api-schemas.ts";
import { listPage } from "../lib/cursor.ts";
import { ApiError } from "../lib/errors.ts";
import { ApiRouter } from "../lib/openapi.ts";
import { newSecretKey, secretKeyWire as wire } from "../wallets/secret-keys.ts";
import { CreateSecretKey, SecretKey, SecretKeyCreated, SecretKeyDeleted } from "./schemas.ts";

const tags = ["Secret keys"];
const security = "walletKey" as const;
const ERRORS_409 = {
  ...ERRORS,
  409: { description: "Refused: it is the wallet's last key", schema: ERRORS[400].schema },
};

export const secretKeyRoutes = new ApiRouter()
  .route(
    {
      method: "get",
      path: "/secret_keys",
      summary: "List wallet secret keys",
      tags,
      security,
      query: Pagination,
      responses: {
        200: {
          description: "Wallet secret keys (hints only), newest first",
          schema: listOf("SecretKeyList", SecretKey),
        },
        ...ERRORS,
      },
    },
    async (c, { query }) => {
      const t = walletSecretKeys;
      const mine = and(eq(t.walletId, c.get("walletId")), isNull(t.deletedAt));
      return c.json(await listPage(controlD1(c.env), t, t.id, mine, query, wire));
    },
  )
  .route(
    {
      method: "post",
      path: "/secret_keys",
      summary: "Create a wallet secret key",
      tags,
      security,
      body: CreateSecretKey,
      responses: { 201: { description: "`secret_key` is shown only now", schema: SecretKeyCreated }, ...ERRORS },
    },
    async (c, { body }) => {
      const created = await newSecretKey(c.get("walletId"), body.name);
      await database(controlD1(c.env)).insert(walletSecretKeys).values(created.row);
      return c.json(created.wire, 201);
    },
  )
  .route(
    {
      method: "delete",
      path: "/secret_keys/{id}",
      summary: "Delete a wallet secret key",
      tags,
      security,
      params: IdParam,
      responses: { 200: { description: "Deleted", schema: SecretKeyDeleted }, ...ERRORS_409 },
    },
    async (c, { params: { id } }) => {
      const walletId = c.get("walletId");
      const db = database(controlD1(c.env));
      const row = await db
        .select({ id: walletSecretKeys.id })
        .from(walletSecretKeys)
        .where(
          and(eq(walletSecretKeys.walletId, walletId), isNull(walletSecretKeys.deletedAt), eq(walletSecretKeys.id, id)),
        )
        .get();
      if (!row) throw new ApiError("not_found", `No secret key with id '${id}'.`, { param: "id" });
      // One conditional statement, so two concurrent deletes cannot remove the last two keys.
      const res = await db
        .update(walletSecretKeys)
        .set({ deletedAt: Date.now() })
        .where(
          and(
            eq(walletSecretKeys.id, id),
            isNull(walletSecretKeys.deletedAt),
            sql`(SELECT count(*) FROM wallet_secret_keys WHERE wallet_id = ${walletId} AND deleted_at IS NULL) > 1`,
          ),
        )
        .run();
      if (res.meta.changes === 0)
        throw new ApiError("conflict", "Refusing to delete the wallet's last secret key: create another first.");
      return c.json({ id, deleted: true });
    },
  );
