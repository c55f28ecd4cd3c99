import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { controlD1, database } from "../db/client.ts";
import { walletSecretKeys } from "../db/schema.ts";
import type { WalletEnv } from "../env.ts";
import { bearer } from "../lib/credentials.ts";
import { ApiError } from "../lib/errors.ts";
import { hashesEqual, hashSecret, keyKindOf, parseKey, randomBase62 } from "../lib/keys.ts";

/**
 * The dashboard's in-process calls to the management API stand for a signed-in session's wallet with this
 * isolate's own random token, which never leaves the isolate (a request from outside cannot carry it). It lives
 * here, with the check that accepts it.
 */
export const INTERNAL_HEADER = "x-spendgate-internal";
export const INTERNAL_WALLET_HEADER = "x-spendgate-internal-wallet";
let token: string | undefined;
/** Made on first use: a Worker may not draw random values at global scope. */
export function internalToken(): string {
  token ??= randomBase62(40);
  return token;
}

const WALLET_KEY_REQUIRED = "A wallet secret key is required: send `Authorization: Bearer sgw_…`.";

/** Resolves the wallet of a wallet secret key, or null; garbage is refused before any I/O. */
export async function walletOf(d1: D1Database, key: string): Promise<string | null> {
  const id = parseKey("wallet", key);
  if (!id) return null;
  const row = await database(d1)
    .select({ walletId: walletSecretKeys.walletId, keyHash: walletSecretKeys.keyHash })
    .from(walletSecretKeys)
    .where(and(eq(walletSecretKeys.id, id), isNull(walletSecretKeys.deletedAt)))
    .get();
  if (!row) return null;
  return hashesEqual(row.keyHash, await hashSecret(key)) ? row.walletId : null;
}

export const requireWallet = createMiddleware<WalletEnv>(async (c, next) => {
  // The dashboard's in-process calls for a signed-in session (dashboard/api.ts sends them).
  const internal = c.req.header(INTERNAL_HEADER);
  const wallet = c.req.header(INTERNAL_WALLET_HEADER);
  if (internal !== undefined) {
    if (!wallet || !hashesEqual(await hashSecret(internal), await hashSecret(internalToken()))) {
      throw new ApiError("unauthorized", WALLET_KEY_REQUIRED);
    }
    c.set("walletId", wallet);
    return next();
  }
  const key = bearer(c.req.header("authorization"));
  if (!key) throw new ApiError("unauthorized", WALLET_KEY_REQUIRED);
  if (keyKindOf(key) === "spend") {
    throw new ApiError("forbidden", "Spend keys cannot call the management API; use a wallet secret key.");
  }
  const walletId = await walletOf(controlD1(c.env), key);
  if (!walletId) throw new ApiError("unauthorized", "Invalid wallet secret key.");
  c.set("walletId", walletId);
  await next();
});
