import type { walletSecretKeys } from "../db/schema.ts";
import { hashSecret, issueKey, keyPreview } from "../lib/keys.ts";

export type SecretKeyRow = typeof walletSecretKeys.$inferSelect;

/** A wallet secret key on the wire (never the key itself, only its hint). */
export const secretKeyWire = (r: SecretKeyRow) => ({
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
  return { row, key: issued.key, wire: { ...secretKeyWire(row), secret_key: issued.key } };
}
